/**
 * Running dcounter processes from a script or a test: spawn `node bin/dcounter.js ...` as a
 * child in the current scope (stopped with SIGTERM when the scope closes, SIGKILL after a
 * grace period), capture its output lines, and wait for an HTTP endpoint to answer 200.
 * Used by `npm start` (scripts/start.ts) and the end-to-end tests.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Http from "node:http"
import * as Net from "node:net"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import type { Scope } from "effect"
import { Data, Deferred, Duration, Effect } from "effect"

const here = path.dirname(fileURLToPath(import.meta.url))
/** The repository root: this file is dist/scripts/lib/Processes.js or scripts/lib/Processes.ts. */
export const repoRoot = path.basename(path.resolve(here, "../..")) === "dist"
  ? path.resolve(here, "../../..")
  : path.resolve(here, "../..")

/** `bin/dcounter.js` of this repository. */
export const dcounterBin = path.join(repoRoot, "bin", "dcounter.js")

export interface ExitInfo {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export interface Child {
  readonly name: string
  readonly pid: number
  /** resolves when the process has exited */
  readonly exited: Effect.Effect<ExitInfo>
  readonly hasExited: () => boolean
  /** sends a signal (no-op once exited) */
  readonly kill: (signal: NodeJS.Signals) => void
  /** the last output lines (stdout and stderr), for error reports */
  readonly recentOutput: () => ReadonlyArray<string>
}

export class ProcessFailed extends Data.TaggedError("ProcessFailed")<{
  readonly name: string
  readonly message: string
}> {}

export interface SpawnOptions {
  readonly cwd?: string
  /** extra environment; `DCOUNTER_*` variables of the caller are not passed on */
  readonly env?: Readonly<Record<string, string>>
  /** each output line, as it comes */
  readonly onLine?: (line: string) => void
  /** own process group, so a terminal's Ctrl-C reaches only the parent (default true) */
  readonly detached?: boolean
  /** how long SIGTERM may take before SIGKILL, when the scope closes (default 10s) */
  readonly stopTimeout?: Duration.DurationInput
}

const RECENT_LINES = 40

/** The caller's environment without `DCOUNTER_*`, so children only get what they are given. */
const cleanEnv = (): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("DCOUNTER_")) out[k] = v
  return out
}

/** Starts `node <script> ...args` without a scope: the caller stops it (see `stop`). */
export const spawnUnscoped = (name: string, script: string, args: ReadonlyArray<string>, options: SpawnOptions = {}): Effect.Effect<Child> =>
  Effect.gen(function*() {
    const exit = yield* Deferred.make<ExitInfo>()
    const recent: Array<string> = []
    const child: ChildProcess = spawn(process.execPath, [script, ...args], {
      cwd: options.cwd ?? repoRoot,
      env: { ...cleanEnv(), ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
      detached: options.detached ?? true
    })
    let exited = false
    const onData = (buffer: { pending: string }) => (chunk: Buffer) => {
      buffer.pending += chunk.toString("utf8")
      let i: number
      while ((i = buffer.pending.indexOf("\n")) >= 0) {
        const line = buffer.pending.slice(0, i)
        buffer.pending = buffer.pending.slice(i + 1)
        recent.push(line)
        if (recent.length > RECENT_LINES) recent.shift()
        options.onLine?.(line)
      }
    }
    child.stdout?.on("data", onData({ pending: "" }))
    child.stderr?.on("data", onData({ pending: "" }))
    child.on("exit", (code, signal) => {
      exited = true
      Deferred.unsafeDone(exit, Effect.succeed({ code, signal }))
    })
    child.on("error", (error) => {
      recent.push(`spawn failed: ${error.message}`)
      exited = true
      Deferred.unsafeDone(exit, Effect.succeed({ code: 127, signal: null }))
    })
    return {
      name,
      pid: child.pid ?? -1,
      exited: Deferred.await(exit),
      hasExited: () => exited,
      kill: (signal) => {
        if (!exited) child.kill(signal)
      },
      recentOutput: () => [...recent]
    }
  })

/** SIGTERM, wait up to `timeout`, then SIGKILL; resolves once the process is gone. */
export const stop = (child: Child, timeout: Duration.DurationInput = Duration.seconds(10)): Effect.Effect<ExitInfo> =>
  Effect.gen(function*() {
    if (child.hasExited()) return yield* child.exited
    child.kill("SIGTERM")
    const graceful = yield* Effect.timeout(child.exited, timeout).pipe(Effect.option)
    if (graceful._tag === "Some") return graceful.value
    child.kill("SIGKILL")
    return yield* child.exited
  })

/** Starts a child in the current scope; closing the scope stops it (`stop`). */
export const spawnScoped = (name: string, script: string, args: ReadonlyArray<string>, options: SpawnOptions = {}): Effect.Effect<Child, never, Scope.Scope> =>
  Effect.acquireRelease(spawnUnscoped(name, script, args, options), (child) => stop(child, options.stopTimeout))

/** `node bin/dcounter.js ...args` in the current scope. */
export const dcounter = (name: string, args: ReadonlyArray<string>, options: SpawnOptions = {}) =>
  spawnScoped(name, dcounterBin, args, options)

/** One GET: the status and body, or undefined when nothing answered. */
export const httpGet = (url: string, timeout: Duration.DurationInput = Duration.seconds(2)) =>
  Effect.async<{ readonly status: number; readonly body: string } | undefined>((resume) => {
    const req = Http.get(url, { timeout: Duration.toMillis(timeout), agent: false }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () => resume(Effect.succeed({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") })))
      res.on("error", () => resume(Effect.succeed(undefined)))
    })
    req.on("timeout", () => req.destroy())
    req.on("error", () => resume(Effect.succeed(undefined)))
    return Effect.sync(() => req.destroy())
  })

/**
 * Polls `url` until it answers 200, for at most `timeout`. Fails early if `child` exits
 * meanwhile (its last output lines are in the message).
 */
export const waitForHttp = (
  url: string,
  options: { readonly timeout: Duration.DurationInput; readonly child?: Child }
): Effect.Effect<void, ProcessFailed> =>
  Effect.gen(function*() {
    const deadline = Date.now() + Duration.toMillis(options.timeout)
    let last = "no answer"
    while (Date.now() < deadline) {
      if (options.child?.hasExited() === true) {
        const info = yield* options.child.exited
        return yield* new ProcessFailed({
          name: options.child.name,
          message: `${options.child.name} exited (code ${info.code ?? info.signal}) before ${url} answered:\n` +
            options.child.recentOutput().map((l) => `  ${l}`).join("\n")
        })
      }
      const answer = yield* httpGet(url, Duration.seconds(1))
      if (answer?.status === 200) return
      if (answer !== undefined) last = `HTTP ${answer.status} ${answer.body.slice(0, 200)}`
      yield* Effect.sleep(Duration.millis(100))
    }
    return yield* new ProcessFailed({
      name: options.child?.name ?? url,
      message: `${url} did not answer 200 within ${Duration.format(options.timeout)} (last: ${last})` +
        (options.child === undefined ? "" : `\n${options.child.recentOutput().map((l) => `  ${l}`).join("\n")}`)
    })
  })

/** Whether something accepts TCP connections on `host:port`. */
export const isListening = (host: string, port: number): Effect.Effect<boolean> =>
  Effect.async<boolean>((resume) => {
    const socket = Net.connect({ host, port })
    socket.setTimeout(500)
    socket.once("connect", () => {
      socket.destroy()
      resume(Effect.succeed(true))
    })
    socket.once("timeout", () => {
      socket.destroy()
      resume(Effect.succeed(false))
    })
    socket.once("error", () => resume(Effect.succeed(false)))
    return Effect.sync(() => socket.destroy())
  })

/** A TCP port that was free a moment ago on 127.0.0.1 (bound to port 0, then released). */
export const freePort: Effect.Effect<number> = Effect.async<number>((resume) => {
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})
