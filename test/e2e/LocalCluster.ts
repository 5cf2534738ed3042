/**
 * A real cluster for end-to-end tests: discovery, N nodes and a gateway, each a
 * `node bin/dcounter.js` process on free ports with its data in a temporary directory,
 * stopped when the test's scope closes.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { Scope } from "effect"
import { Duration, Effect } from "effect"
import type { Child } from "../../scripts/lib/Processes.js"
import * as Processes from "../../scripts/lib/Processes.js"

export interface NodeProcess {
  readonly name: string
  readonly addr: string
  readonly http: string
  readonly dataDir: string
  child: Child
}

export interface LocalCluster {
  readonly discovery: string
  readonly gateway: string
  readonly nodes: ReadonlyArray<NodeProcess>
  readonly dir: string
  /** starts node `i` again with the same settings (after a kill) and waits until it is healthy */
  readonly restart: (i: number) => Effect.Effect<void, Processes.ProcessFailed, Scope.Scope>
}

const START_TIMEOUT = Duration.seconds(60)

/** A temporary directory, removed with the scope. */
export const tempDir = (prefix: string) =>
  Effect.acquireRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), prefix))),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  )

const quiet = ["--log-level", "warn"]

export const start = (options: {
  readonly nodes: number
  readonly gateway?: boolean
  /** extra arguments of node `i` (e.g. its `--resp-addr`) */
  readonly nodeArgs?: (i: number) => ReadonlyArray<string>
}) =>
  Effect.gen(function*() {
    const dir = yield* tempDir("dcounter-e2e-")
    const discoveryAddr = `127.0.0.1:${yield* Processes.freePort}`
    const discovery = yield* Processes.dcounter("discovery", ["--role", "discovery", "--addr", discoveryAddr, ...quiet])
    yield* Processes.waitForHttp(`http://${discoveryAddr}/health`, { timeout: START_TIMEOUT, child: discovery })

    const nodes: Array<NodeProcess> = []
    for (let i = 0; i < options.nodes; i++) {
      const addr = `127.0.0.1:${yield* Processes.freePort}`
      const http = `127.0.0.1:${yield* Processes.freePort}`
      nodes.push({ name: `node-${i}`, addr, http, dataDir: path.join(dir, `node-${i}`), child: undefined as never })
    }
    const argsOf = (node: NodeProcess) => [
      "--role", "node",
      "--addr", node.addr,
      "--http-addr", node.http,
      "--discovery", discoveryAddr,
      "--data-dir", node.dataDir,
      "--sync-interval", "500ms",
      "--heartbeat-interval", "500ms",
      ...quiet,
      ...(options.nodeArgs?.(nodes.indexOf(node)) ?? [])
    ]
    const launch = (node: NodeProcess) =>
      Effect.gen(function*() {
        node.child = yield* Processes.dcounter(node.name, argsOf(node))
        yield* Processes.waitForHttp(`http://${node.http}/health`, { timeout: START_TIMEOUT, child: node.child })
      })
    yield* Effect.forEach(nodes, launch, { concurrency: "unbounded", discard: true })

    let gateway = ""
    if (options.gateway !== false) {
      const addr = `127.0.0.1:${yield* Processes.freePort}`
      const child = yield* Processes.dcounter("gateway", [
        "--role", "gateway", "--addr", addr, "--discovery", discoveryAddr, "--refresh-interval", "500ms", ...quiet
      ])
      gateway = `http://${addr}`
      yield* Processes.waitForHttp(`${gateway}/health`, { timeout: START_TIMEOUT, child })
      // every node is in the gateway's pool
      yield* waitUntil(
        Effect.map(json(`${gateway}/nodes`), (body) =>
          ((body as { nodes: ReadonlyArray<{ healthy: boolean }> }).nodes ?? []).filter((n) => n.healthy).length ===
            options.nodes),
        START_TIMEOUT,
        "every node healthy in the gateway"
      )
    }
    return {
      discovery: `http://${discoveryAddr}`,
      gateway,
      nodes,
      dir,
      restart: (i: number) => launch(nodes[i]!)
    } satisfies LocalCluster
  })

/** GET `url` as JSON (undefined when nothing or no JSON answered). */
export const json = (url: string) =>
  Effect.map(Processes.httpGet(url), (answer): unknown => {
    if (answer === undefined) return undefined
    try {
      return JSON.parse(answer.body)
    } catch {
      return undefined
    }
  })

/** POST `{"by": by}` to `url`; the status (0 when no answer) and body. */
export const post = (url: string, by = 1) =>
  Effect.promise(async () => {
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ by }),
        signal: AbortSignal.timeout(15_000)
      })
      const text = await res.text()
      let body: Record<string, unknown> = {}
      try {
        body = JSON.parse(text) as Record<string, unknown>
      } catch {
        body = { text }
      }
      return { status: res.status, body }
    } catch (error) {
      return { status: 0, body: { error: String(error) } }
    }
  })

/** The value of the default counter on every node (undefined for a node that does not answer). */
export const values = (nodes: ReadonlyArray<NodeProcess>) =>
  Effect.forEach(nodes, (node) =>
    Effect.map(json(`http://${node.http}/counter`), (body) => (body as { value?: number } | undefined)?.value))

/** Polls `condition` every 100ms until it holds, failing after `timeout`. */
export const waitUntil = (condition: Effect.Effect<boolean>, timeout: Duration.DurationInput, what: string) =>
  Effect.gen(function*() {
    const deadline = Date.now() + Duration.toMillis(timeout)
    while (Date.now() < deadline) {
      if (yield* condition) return
      yield* Effect.sleep(Duration.millis(100))
    }
    return yield* Effect.die(new Error(`timed out after ${Duration.format(timeout)} waiting for ${what}`))
  })

/** Waits until every node reports the same value, and returns it. */
export const converged = (nodes: ReadonlyArray<NodeProcess>, timeout: Duration.DurationInput = Duration.seconds(30)) =>
  Effect.gen(function*() {
    let last: ReadonlyArray<number | undefined> = []
    yield* waitUntil(
      Effect.map(values(nodes), (vs) => {
        last = vs
        return vs.every((v) => v !== undefined && v === vs[0])
      }),
      timeout,
      "every node to report the same value"
    ).pipe(Effect.catchAllDefect((e) => Effect.die(new Error(`${String(e)}; last values ${JSON.stringify(last)}`))))
    return last[0]!
  })
