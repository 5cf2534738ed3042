/**
 * `npm start`: a whole cluster on this machine with the contract's default ports:
 * discovery on 127.0.0.1:8000, five nodes (gossip 127.0.0.1:9000..9004, HTTP
 * 127.0.0.1:8010..8014, data under ./data) and the gateway with its dashboard on
 * 127.0.0.1:8080. Every line the processes log is shown, prefixed with its name.
 * Ctrl-C (or SIGTERM) stops the gateway, then the nodes, then discovery, each with SIGTERM
 * (SIGKILL after 10s), and exits 0. If a process fails to start (a port already in use),
 * everything started so far is stopped and the exit status is 1.
 *
 *     npm start                      # build first with `npm run build` (npm ci does it)
 *     DCOUNTER_LOG_LEVEL=warn npm start
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import type { Scope } from "effect"
import { Duration, Effect } from "effect"
import * as path from "node:path"
import type { Child } from "./lib/Processes.js"
import * as Processes from "./lib/Processes.js"

const HOST = "127.0.0.1"
const DISCOVERY = `${HOST}:8000`
const GATEWAY = `${HOST}:8080`
const NODES = [0, 1, 2, 3, 4].map((i) => ({ name: `node-${i}`, addr: `${HOST}:${9000 + i}`, http: `${HOST}:${8010 + i}` }))
const START_TIMEOUT = Duration.seconds(30)

const useColor = process.stdout.isTTY === true && process.env["NO_COLOR"] === undefined
const palette = [36, 33, 35, 32, 34, 91, 96]
const paint = (code: number, text: string) => (useColor ? `\u001b[${code}m${text}\u001b[0m` : text)
const bold = (text: string) => (useColor ? `\u001b[1m${text}\u001b[0m` : text)

const printer = (name: string, index: number) => (line: string) =>
  process.stdout.write(`${paint(palette[index % palette.length]!, name.padEnd(9))} | ${line}\n`)

const logLevel = process.env["DCOUNTER_LOG_LEVEL"] ?? "info"
const common = ["--log-level", logLevel, "--log-format", "pretty"]

const start = (name: string, index: number, args: ReadonlyArray<string>): Effect.Effect<Child, never, Scope.Scope> =>
  Processes.dcounter(name, [...args, ...common], { cwd: process.cwd(), onLine: printer(name, index) })

const program = Effect.gen(function*() {
  const dataDir = path.join(process.cwd(), "data")
  const discovery = yield* start("discovery", 0, ["--role", "discovery", "--addr", DISCOVERY])
  yield* Processes.waitForHttp(`http://${DISCOVERY}/health`, { timeout: START_TIMEOUT, child: discovery })

  const nodes = yield* Effect.acquireRelease(
    Effect.forEach(NODES, (node, i) =>
      Processes.spawnUnscoped(
        node.name,
        Processes.dcounterBin,
        [
          "--role", "node",
          "--addr", node.addr,
          "--http-addr", node.http,
          "--discovery", DISCOVERY,
          "--data-dir", path.join(dataDir, node.addr.replace(":", "_")),
          ...common
        ],
        { cwd: process.cwd(), onLine: printer(node.name, i + 1) }
      )),
    (children) => Effect.forEach(children, (child) => Processes.stop(child), { concurrency: "unbounded", discard: true })
  )
  yield* Effect.forEach(
    nodes,
    (child, i) => Processes.waitForHttp(`http://${NODES[i]!.http}/health`, { timeout: START_TIMEOUT, child }),
    { concurrency: "unbounded", discard: true }
  )

  const gateway = yield* start("gateway", 6, ["--role", "gateway", "--addr", GATEWAY, "--discovery", DISCOVERY, "--refresh-interval", "1s"])
  yield* Processes.waitForHttp(`http://${GATEWAY}/health`, { timeout: START_TIMEOUT, child: gateway })

  process.stdout.write(
    [
      "",
      bold("dcounter is up: discovery + 5 nodes + gateway"),
      `  gateway    http://${GATEWAY}         curl -X POST localhost:8080/increment`,
      `  dashboard  http://${GATEWAY}/        open it in a browser`,
      `  nodes      http://${HOST}:8010 .. 8014   curl localhost:8010/counter`,
      `  discovery  http://${DISCOVERY}/peers`,
      `  data       ${dataDir}`,
      "  Ctrl-C stops everything.",
      ""
    ].join("\n") + "\n"
  )

  // keep running until interrupted; a process that dies meanwhile is reported and ends the run
  const everyone = [discovery, ...nodes, gateway]
  const first = yield* Effect.raceAll(everyone.map((child) => Effect.map(child.exited, (info) => ({ child, info }))))
  return yield* Effect.fail(
    new Processes.ProcessFailed({
      name: first.child.name,
      message: `${first.child.name} exited unexpectedly (code ${first.info.code ?? first.info.signal}); stopping the others`
    })
  )
})

// a closed terminal stops the cluster like Ctrl-C (the children have their own process group)
process.on("SIGHUP", () => process.kill(process.pid, "SIGTERM"))

program.pipe(
  Effect.onInterrupt(() => Effect.sync(() => process.stdout.write("\nstopping the gateway, then the nodes, then discovery...\n"))),
  Effect.tapError((error) => Effect.sync(() => process.stderr.write(`npm start: ${error.message}\n`))),
  Effect.scoped,
  Effect.ensuring(Effect.sync(() => process.stdout.write("every process is stopped.\n"))),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
