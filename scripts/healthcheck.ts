/**
 * Docker HEALTHCHECK: `node dist/scripts/healthcheck.js` exits 0 when this container's
 * dcounter answers `GET /health` with 200, else 1. It finds the address the same way
 * dcounter does: the command line of the container's main process (PID 1, when it runs
 * bin/dcounter.js) and the `DCOUNTER_*` environment, through the real CLI parser. A
 * wildcard listen address (0.0.0.0, ::) is checked on the loopback address.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Duration, Effect } from "effect"
import { readFileSync } from "node:fs"
import { parse } from "../src/cli/Invocation.js"
import { httpGet } from "./lib/Processes.js"

/** The arguments of PID 1 after `bin/dcounter.js`, when PID 1 is dcounter. */
const mainProcessArgs = (): ReadonlyArray<string> => {
  try {
    const argv = readFileSync("/proc/1/cmdline", "utf8").split("\0").filter((a) => a !== "")
    const i = argv.findIndex((a) => a.endsWith("bin/dcounter.js") || a.endsWith("dist/src/main.js"))
    return i < 0 ? [] : argv.slice(i + 1)
  } catch {
    return []
  }
}

/** The `host:port` to probe for an invocation's role. */
export const healthAddr = (addr: string): string => {
  const i = addr.lastIndexOf(":")
  const host = addr.slice(0, i)
  const port = addr.slice(i + 1)
  return host === "0.0.0.0" || host === "[::]" || host === "::" ? `127.0.0.1:${port}` : addr
}

const program = Effect.gen(function*() {
  const invocation = yield* parse(mainProcessArgs(), process.env)
  const addr = invocation._tag === "Node"
    ? invocation.config.httpAddr
    : invocation._tag === "Discovery" || invocation._tag === "Gateway"
    ? invocation.config.addr
    : undefined
  if (addr === undefined) return yield* Effect.fail(`not a server role (${invocation._tag})`)
  const url = `http://${healthAddr(addr)}/health`
  const answer = yield* httpGet(url, Duration.seconds(3))
  if (answer?.status !== 200) {
    return yield* Effect.fail(`${url}: ${answer === undefined ? "no answer" : `HTTP ${answer.status} ${answer.body.slice(0, 200)}`}`)
  }
  process.stdout.write(`healthy: ${url}\n`)
})

program.pipe(
  Effect.catchAll((error) =>
    Effect.sync(() => {
      process.stderr.write(`unhealthy: ${typeof error === "string" ? error : error.message}\n`)
      process.exitCode = 1
    })
  ),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
