/**
 * `npm start`: a whole cluster on this machine with the contract's default ports:
 * discovery on 127.0.0.1:8000, five nodes (gossip 127.0.0.1:9000..9004, HTTP
 * 127.0.0.1:8010..8014, data under ./data) and the gateway with its dashboard on
 * 127.0.0.1:8080. Every line the processes log is shown, prefixed with its name.
 *
 *     npm start                                  # build first with `npm run build` (npm ci does it)
 *     DCOUNTER_LOG_LEVEL=warn npm start
 *     npm start -- --host 127.0.0.2 --data-dir /tmp/dc   # another loopback address, other data
 *
 * Lifecycle (the design, see docs/operations.md):
 * - Before anything starts, every port is tried (bind, then release); a taken port is
 *   reported by number and nothing starts (exit 1).
 * - The children run in their own process groups, so a terminal's Ctrl-C reaches only this
 *   script, which then stops them in order: the gateway, then the nodes, then discovery,
 *   each with SIGTERM and SIGKILL after a short grace, all within 5 s.
 * - SIGINT, SIGTERM and SIGHUP (the terminal closing) stop everything the same way.
 * - npm may die without passing a signal on (`kill -TERM <npm pid>` makes npm exit at once):
 *   this script watches its parent process and stops everything as soon as it is gone.
 * - This script may die without stopping anything (SIGKILL, a crash): a watchdog process
 *   (scripts/startWatchdog.ts) holds a pipe from it and the children's pids, and stops them
 *   when the pipe closes. So whatever stops `npm start`, no dcounter process outlives it.
 * - A node that dies is reported and restarted after a pause (a few attempts, then it stays
 *   down); the other processes keep serving meanwhile. The gateway and discovery are
 *   reported too but not restarted: the run ends only when stopped.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Deferred, Duration, Effect, Fiber, Scope } from "effect"
import * as fs from "node:fs"
import * as Net from "node:net"
import * as path from "node:path"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import type { Child } from "./lib/Processes.js"
import * as Processes from "./lib/Processes.js"

const usage = "usage: npm start [-- --host 127.0.0.1] [--data-dir ./data]"
const parsed = (() => {
  try {
    return parseArgs({
      args: process.argv.slice(2),
      options: { host: { type: "string" }, "data-dir": { type: "string" }, help: { type: "boolean", short: "h" } },
      strict: true
    }).values
  } catch (e) {
    process.stderr.write(`npm start: ${e instanceof Error ? e.message : String(e)}\n${usage}\n`)
    process.exit(2)
  }
})()
if (parsed.help === true) {
  process.stdout.write(`${usage}\n`)
  process.exit(0)
}

const HOST = parsed.host ?? "127.0.0.1"
if (Net.isIPv4(HOST) === false) {
  process.stderr.write(`npm start: --host must be an IPv4 address, got ${JSON.stringify(HOST)}\n`)
  process.exit(2)
}
const DATA_DIR = path.resolve(parsed["data-dir"] ?? path.join(process.cwd(), "data"))
const DISCOVERY = `${HOST}:8000`
const GATEWAY = `${HOST}:8080`
const NODES = [0, 1, 2, 3, 4].map((i) => ({ name: `node-${i}`, addr: `${HOST}:${9000 + i}`, http: `${HOST}:${8010 + i}` }))
const START_TIMEOUT = Duration.seconds(30)
/** SIGTERM grace per stage (gateway, nodes together, discovery): 1.5 + 2 + 1 < 5 s in all */
const STOP_GATEWAY = Duration.millis(1500)
const STOP_NODES = Duration.seconds(2)
const STOP_DISCOVERY = Duration.seconds(1)
const RESTART_DELAY = Duration.seconds(2)
/** restarts of one node in a row that fail to come up before it is left down */
const RESTART_ATTEMPTS = 5

const useColor = process.stdout.isTTY === true && process.env["NO_COLOR"] === undefined
const palette = [36, 33, 35, 32, 34, 91, 96]
const paint = (code: number, text: string) => (useColor ? `\u001b[${code}m${text}\u001b[0m` : text)
const bold = (text: string) => (useColor ? `\u001b[1m${text}\u001b[0m` : text)

// A closed terminal makes writes fail (EIO, EPIPE); that must not end this script before it
// has stopped its children.
process.stdout.on("error", () => undefined)
process.stderr.on("error", () => undefined)
const say = (text: string) => Effect.sync(() => process.stdout.write(`${text}\n`))

const printer = (name: string, index: number) => (line: string) =>
  process.stdout.write(`${paint(palette[index % palette.length]!, name.padEnd(9))} | ${line}\n`)

const logLevel = process.env["DCOUNTER_LOG_LEVEL"] ?? "info"
const common = ["--log-level", logLevel, "--log-format", "pretty"]

/**
 * The watchdog (scripts/startWatchdog.ts), started before the first child: told every
 * child's pid, it stops them if this script dies without doing so. Not waited for, and a
 * watchdog that failed or went away only loses that safety net (its pipe's errors are
 * ignored).
 */
const watchdog = (() => {
  let pipe: NodeJS.WritableStream | undefined
  const tell = (line: string) => {
    if (pipe === undefined) return
    pipe.write(`${line}\n`)
  }
  return {
    start: () => {
      const child = spawn(process.execPath, [fileURLToPath(new URL("./startWatchdog.js", import.meta.url))], {
        detached: true,
        stdio: ["pipe", "ignore", "ignore"]
      })
      child.on("error", () => (pipe = undefined))
      child.stdin.on("error", () => (pipe = undefined))
      child.unref()
      ;(child.stdin as unknown as Net.Socket).unref()
      pipe = child.stdin
    },
    child: (pid: number) => tell(String(pid)),
    done: () => tell("done")
  }
})()

const start = (name: string, index: number, args: ReadonlyArray<string>, stopTimeout: Duration.Duration) =>
  Effect.tap(
    Processes.dcounter(name, [...args, ...common], { cwd: process.cwd(), onLine: printer(name, index), stopTimeout }),
    (child) => Effect.sync(() => watchdog.child(child.pid))
  )

const describeExit = (info: Processes.ExitInfo) => info.signal !== null ? `signal ${info.signal}` : `code ${info.code}`

/** Every port this cluster needs, with what it is for. */
const ports = [
  { port: 8000, what: "discovery" },
  { port: 8080, what: "gateway" },
  ...NODES.flatMap((n, i) => [{ port: 8010 + i, what: `${n.name} HTTP` }, { port: 9000 + i, what: `${n.name} gossip` }])
]

/** Whether `HOST:port` can be bound right now (bound, then released at once). */
const canBind = (port: number) =>
  Effect.async<boolean>((resume) => {
    const server = Net.createServer()
    server.once("error", () => resume(Effect.succeed(false)))
    server.listen({ host: HOST, port, exclusive: true }, () => server.close(() => resume(Effect.succeed(true))))
  })

const checkPorts = Effect.gen(function*() {
  const taken = yield* Effect.filter(ports, ({ port }) => Effect.map(canBind(port), (free) => !free))
  if (taken.length === 0) return
  return yield* new Processes.ProcessFailed({
    name: "ports",
    message: taken.map(({ port, what }) => `port ${port} on ${HOST} (${what}) is already in use`).join("\n") +
      "\nnothing was started. Is another cluster running? (`npm start` in another terminal, scripts/run-cluster.sh, docker)"
  })
})

/**
 * Runs node `i` until interrupted: starts it, reports when it dies and starts it again after
 * a pause. `ready` is completed when the first start answers /health (or failed if it
 * does not). Interrupting the fiber stops the running child.
 */
const superviseNode = (i: number, ready: Deferred.Deferred<void, Processes.ProcessFailed>) =>
  Effect.gen(function*() {
    const node = NODES[i]!
    const args = [
      "--role", "node",
      "--addr", node.addr,
      "--http-addr", node.http,
      "--discovery", DISCOVERY,
      "--data-dir", path.join(DATA_DIR, node.addr.replace(":", "_"))
    ]
    let failures = 0
    let first = true
    while (failures < RESTART_ATTEMPTS) {
      const outcome = yield* Effect.scoped(Effect.gen(function*() {
        const child = yield* start(node.name, i + 1, args, STOP_NODES)
        const up = yield* Effect.either(
          Processes.waitForHttp(`http://${node.http}/health`, { timeout: START_TIMEOUT, child })
        )
        if (first) {
          first = false
          yield* Deferred.complete(ready, up)
          if (up._tag === "Left") return yield* Effect.never
        }
        if (up._tag === "Left") return { up: false, info: yield* child.exited, child }
        return { up: true, info: yield* child.exited, child }
      }))
      failures = outcome.up ? 0 : failures + 1
      yield* say(
        `${bold(node.name)} ${outcome.up ? "exited" : "did not come up"} (${describeExit(outcome.info)}); ` +
          `the other processes keep serving. ` +
          (failures < RESTART_ATTEMPTS ? `Restarting it in ${Duration.format(RESTART_DELAY)}.` : "")
      )
      if (failures < RESTART_ATTEMPTS) yield* Effect.sleep(RESTART_DELAY)
    }
    yield* say(`${bold(node.name)} failed to start ${RESTART_ATTEMPTS} times in a row; it stays down.`)
  })

/** Reports when `child` (the gateway or discovery) exits; they are not restarted. */
const reportExit = (child: Child) =>
  Effect.flatMap(child.exited, (info) =>
    say(`${bold(child.name)} exited (${describeExit(info)}); it is not restarted (stop with Ctrl-C and start again).`))

/** whether anything was started (so there is something to report stopped) */
let started = false

const program = Effect.gen(function*() {
  yield* checkPorts
  started = true
  watchdog.start()
  fs.mkdirSync(DATA_DIR, { recursive: true })
  // Scope finalizers run in reverse: the gateway stops first, then the nodes, then discovery.
  const discovery = yield* start("discovery", 0, ["--role", "discovery", "--addr", DISCOVERY], STOP_DISCOVERY)
  yield* Processes.waitForHttp(`http://${DISCOVERY}/health`, { timeout: START_TIMEOUT, child: discovery })

  const ready = yield* Effect.forEach(NODES, () => Deferred.make<void, Processes.ProcessFailed>())
  const scope = yield* Effect.scope
  const supervisors = yield* Effect.forEach(NODES, (_, i) => Effect.forkIn(superviseNode(i, ready[i]!), scope))
  // stopping the supervisors stops their nodes, all together
  yield* Scope.addFinalizer(scope, Fiber.interruptAll(supervisors))
  yield* Effect.forEach(ready, Deferred.await, { concurrency: "unbounded", discard: true })

  const gateway = yield* start(
    "gateway",
    6,
    ["--role", "gateway", "--addr", GATEWAY, "--discovery", DISCOVERY, "--refresh-interval", "1s"],
    STOP_GATEWAY
  )
  yield* Processes.waitForHttp(`http://${GATEWAY}/health`, { timeout: START_TIMEOUT, child: gateway })

  const local = (port: number) => HOST === "127.0.0.1" ? `localhost:${port}` : `${HOST}:${port}`
  yield* say(
    [
      "",
      bold("dcounter is up: discovery + 5 nodes + gateway"),
      `  gateway    http://${GATEWAY}         curl -X POST ${local(8080)}/increment`,
      `  dashboard  http://${GATEWAY}/        open it in a browser`,
      `  nodes      http://${HOST}:8010 .. 8014   curl ${local(8010)}/counter`,
      `  discovery  http://${DISCOVERY}/peers`,
      `  data       ${DATA_DIR}`,
      "  Ctrl-C stops everything. A node that dies is restarted.",
      ""
    ].join("\n")
  )
  yield* Effect.forkIn(reportExit(discovery), scope)
  yield* Effect.forkIn(reportExit(gateway), scope)
  return yield* Effect.never
})

/** The parent's pid now, from /proc (process.ppid is read once at start-up). */
const currentParent = (): number | undefined => {
  try {
    const stat = fs.readFileSync("/proc/self/stat", "latin1")
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])
  } catch {
    return undefined
  }
}

// The parent (npm) gone means whoever ran it wants everything stopped: stop like SIGTERM.
const parent = process.ppid
const parentGone = () => {
  const now = currentParent()
  if (now !== undefined) return now !== parent
  try {
    process.kill(parent, 0)
    return false
  } catch {
    return true
  }
}
// The runtime interrupts the program on the first SIGINT or SIGTERM and then stops
// listening; these listeners stay, so a second Ctrl-C cannot kill this script halfway
// through stopping its children (which would leave them running).
let stopping = false
const announce = (why: string) => {
  if (stopping) return
  stopping = true
  process.stdout.write(`\n${why}: stopping the gateway, then the nodes, then discovery...\n`)
}
const stopAll = (why: string) => {
  announce(why)
  process.kill(process.pid, "SIGTERM")
}
setInterval(() => {
  if (parentGone()) stopAll("npm is gone")
}, 200).unref()
process.on("SIGHUP", () => stopAll("the terminal closed"))
process.on("SIGINT", () => announce("Ctrl-C"))
process.on("SIGTERM", () => announce("SIGTERM"))

program.pipe(
  Effect.tapError((error) => Effect.sync(() => process.stderr.write(`npm start: ${error.message}\n`))),
  Effect.scoped,
  Effect.ensuring(Effect.suspend(() => started ? Effect.zipRight(Effect.sync(watchdog.done), say("every process is stopped.")) : Effect.void)),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
