/**
 * `npm start` (scripts/start.ts) as a user runs it: through npm, on a loopback address of its
 * own (`--host 127.0.0.N`, the contract's ports there) with its data in a temporary
 * directory, so it never touches a cluster of the user's or of another test.
 * - a node killed with SIGKILL is reported, the others keep serving, and it comes back;
 * - SIGTERM to the npm process (npm exits at once without passing it on) leaves no
 *   dcounter process behind, within 5 s; so do SIGINT and SIGHUP to npm or to the start
 *   script, and SIGKILL of the start script (its watchdog stops the children);
 * - a taken port is reported by number and nothing starts.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as Net from "node:net"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import * as Processes from "../../scripts/lib/Processes.js"
import { eventually } from "../support/live.js"
import { tempDir } from "./LocalCluster.js"

const PORTS = [8000, 8080, 8010, 8011, 8012, 8013, 8014, 9000, 9001, 9002, 9003, 9004]

/** A 127.0.0.N where none of the cluster's ports is taken. */
const freeHost = Effect.gen(function*() {
  for (let attempt = 0; attempt < 20; attempt++) {
    const host = `127.0.0.${100 + Math.floor(Math.random() * 150)}`
    const busy = yield* Effect.forEach(PORTS, (p) => Processes.isListening(host, p))
    if (busy.every((b) => !b)) return host
  }
  return yield* Effect.die(new Error("no free loopback address"))
})

/** Pids of the processes whose command line mentions `needle` (this user's, from /proc). */
const pidsWith = (needle: string): Array<number> =>
  fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d)).flatMap((d) => {
    try {
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, "latin1").replaceAll("\0", " ")
      // the shell npm runs the script with is not one of them
      return cmd.includes(needle) && !cmd.includes("vitest") && !cmd.startsWith("sh ") ? [Number(d)] : []
    } catch {
      return []
    }
  })

interface NpmStart {
  readonly child: ChildProcess
  readonly output: () => string
}

/** `npm start -- ...args` in the repository, output captured; killed (SIGKILL) with the scope. */
const npmStart = (args: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.sync((): NpmStart => {
      let out = ""
      const child = spawn("npm", ["start", "--", ...args], {
        cwd: Processes.repoRoot,
        env: { ...process.env, DCOUNTER_LOG_LEVEL: "warn", NO_COLOR: "1" },
        stdio: ["ignore", "pipe", "pipe"]
      })
      child.stdout.on("data", (c: Buffer) => (out += c.toString("utf8")))
      child.stderr.on("data", (c: Buffer) => (out += c.toString("utf8")))
      return { child, output: () => out }
    }),
    ({ child }) => Effect.sync(() => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL"))
  )

const exitOf = (child: ChildProcess) =>
  Effect.async<number | null>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.succeed(child.exitCode))
    child.once("exit", (code) => resume(Effect.succeed(code)))
  })

const post = (url: string) =>
  Effect.promise(() => fetch(url, { method: "POST", signal: AbortSignal.timeout(5000) }).then(async (r) => ({ status: r.status, body: await r.text() })))

/**
 * `npm start` on a free loopback host, up: its output, the pid-matching tags of its
 * processes, and a finalizer that SIGKILLs whatever of this run is left, whatever happens.
 */
const startedCluster = Effect.gen(function*() {
  const host = yield* freeHost
  const dir = yield* tempDir("dcounter-start-")
  const tag = `${host}:`
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      for (const pid of [...pidsWith(tag), ...pidsWith(`--host ${host} `)]) {
        try {
          process.kill(pid, "SIGKILL")
        } catch {
          // already gone
        }
      }
    })
  )
  const run = yield* npmStart(["--host", host, "--data-dir", path.join(dir, "data")])
  yield* eventually("the cluster is up", Duration.seconds(90), Effect.sync(() => run.output().includes("dcounter is up")))
    .pipe(Effect.mapError((e) => new Error(`${e.message}\n${run.output()}`)))
  const script = `start.js --host ${host} `
  expect(pidsWith(tag)).toHaveLength(7) // discovery, 5 nodes, gateway
  return { host, tag, script, run }
})

describe("npm start", () => {
  it.scopedLive("a killed node is reported and restarted while the rest serve; SIGTERM to npm leaves nothing running", () =>
    Effect.gen(function*() {
      const { host, run, script, tag } = yield* startedCluster
      expect(pidsWith(script)).toHaveLength(1)

      const node3 = pidsWith(`--addr ${host}:9003`)
      expect(node3).toHaveLength(1)
      process.kill(node3[0]!, "SIGKILL")
      yield* eventually("node-3 reported", Duration.seconds(10), Effect.sync(() => run.output().includes("node-3 exited (signal SIGKILL)")))
      // the rest keep serving: writes through the gateway, reads on every other node
      const inc = yield* post(`http://${host}:8080/increment`)
      expect(inc.status, inc.body).toBe(200)
      for (const port of [8010, 8011, 8012, 8014]) {
        const answer = yield* Processes.httpGet(`http://${host}:${port}/counter`)
        expect(answer?.status).toBe(200)
      }
      expect(run.child.exitCode).toBe(null)
      // and node-3 comes back, with the increment gossiped to it
      yield* eventually("node-3 back and caught up", Duration.seconds(60), Effect.map(Processes.httpGet(`http://${host}:8013/counter`), (a) => a?.status === 200 && JSON.parse(a.body).value === 1))

      // SIGTERM to npm itself
      const npmPid = run.child.pid!
      const t0 = Date.now()
      process.kill(npmPid, "SIGTERM")
      yield* eventually("no dcounter process left", Duration.seconds(8), Effect.sync(() => pidsWith(tag).length === 0 && pidsWith(script).length === 0))
        .pipe(Effect.mapError((e) => new Error(`${e.message}: ${pidsWith(tag).join(",")}\n${run.output()}`)))
      const took = Date.now() - t0
      expect(took).toBeLessThan(5000 + 1000) // 5 s by design, plus polling on a busy machine
      yield* exitOf(run.child)
    }), { timeout: 240_000 })

  // Every other way of stopping it: SIGINT and SIGHUP to npm's process or to the start script
  // (a terminal's Ctrl-C reaches both; a closing terminal sends SIGHUP), and SIGKILL of the
  // start script (its watchdog then stops the children). Each leaves no dcounter process
  // within 5 s.
  const stops = [
    { to: "npm", signal: "SIGINT" },
    { to: "npm", signal: "SIGHUP" },
    { to: "script", signal: "SIGINT" },
    { to: "script", signal: "SIGHUP" },
    { to: "script", signal: "SIGKILL" }
  ] as const
  for (const { signal, to } of stops) {
    it.scopedLive(`${signal} to the ${to === "npm" ? "npm process" : "start script"} leaves nothing running`, () =>
      Effect.gen(function*() {
        const { run, script, tag } = yield* startedCluster
        const scriptPids = pidsWith(script)
        expect(scriptPids).toHaveLength(1)
        const t0 = Date.now()
        process.kill(to === "npm" ? run.child.pid! : scriptPids[0]!, signal)
        yield* eventually("no dcounter process left", Duration.seconds(8), Effect.sync(() => pidsWith(tag).length === 0 && pidsWith(script).length === 0))
          .pipe(Effect.mapError((e) => new Error(`${e.message}: ${pidsWith(tag).join(",")}\n${run.output()}`)))
        expect(Date.now() - t0).toBeLessThan(5000 + 1000) // 5 s by design, plus polling on a busy machine
        // its last words may still be on their way through the pipe
        if (signal !== "SIGKILL") {
          yield* eventually("the script said so", Duration.seconds(3), Effect.sync(() => run.output().includes("every process is stopped.")))
            .pipe(Effect.mapError((e) => new Error(`${e.message}\n${run.output()}`)))
        }
        yield* exitOf(run.child).pipe(Effect.timeout(Duration.seconds(10)))
      }), { timeout: 180_000 })
  }

  it.scopedLive("a port already taken is named and nothing starts", () =>
    Effect.gen(function*() {
      const host = yield* freeHost
      const dir = yield* tempDir("dcounter-start-")
      const blocker = Net.createServer()
      yield* Effect.acquireRelease(
        Effect.async<void>((resume) => {
          blocker.listen(8012, host, () => resume(Effect.void))
        }),
        () => Effect.async<void>((resume) => {
          blocker.close(() => resume(Effect.void))
        })
      )
      const run = yield* npmStart(["--host", host, "--data-dir", path.join(dir, "data")])
      const code = yield* exitOf(run.child).pipe(Effect.timeout(Duration.seconds(60)))
      expect(code, run.output()).toBe(1)
      expect(run.output()).toContain(`port 8012 on ${host} (node-2 HTTP) is already in use`)
      expect(run.output()).not.toContain("dcounter is up")
      expect(pidsWith(`${host}:`)).toEqual([])
    }), { timeout: 120_000 })
})
