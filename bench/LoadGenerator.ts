/**
 * The HTTP load generators of the benches: wrk (preferred: it is lighter, so it takes less
 * CPU from the servers on a small machine), or autocannon from node_modules when wrk is
 * missing. Each run is one child process, killed if it overruns its `-d` seconds by 30 s.
 *
 * A target may carry a Lua `request` function (`requestLua`) that builds each request
 * (e.g. a random counter name per request); only wrk can run it.
 */
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import { createRequire } from "node:module"
import * as Path from "node:path"
import { spawnTracked } from "./Processes.js"

export interface LoadResult {
  readonly rps: number
  readonly p50ms: number
  readonly p99ms: number
  readonly requests: number
  /** answers other than 2xx/3xx, and socket errors */
  readonly failures: number
}

export interface Target {
  readonly name: string
  /** full URL, e.g. `http://127.0.0.1:8010/increment` */
  readonly url: string
  readonly method?: "GET" | "POST" | undefined
  readonly body?: string | undefined
  /** ratio to the baseline this target should reach, e.g. 0.7 */
  readonly goal?: number | undefined
  /**
   * Lua statements run once per wrk thread, defining `request = function() ... end` (which
   * returns `wrk.format(...)`): a request built per call instead of one fixed request.
   */
  readonly requestLua?: string | undefined
}

export interface LoadGenerator {
  readonly name: string
  readonly run: (target: Target, seconds: number, connections: number) => Promise<LoadResult>
}

/** Runs a command to completion; its stdout, or an error with the tail of its stderr. */
export const runProcess = (command: string, args: ReadonlyArray<string>, timeoutMs: number): Promise<string> =>
  new Promise((resolve, reject) => {
    const child = spawnTracked(command, args, ["ignore", "pipe", "pipe"])
    let out = ""
    let err = ""
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()))
    child.stderr!.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-2000)))
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
    child.once("error", (e) => {
      clearTimeout(timer)
      reject(e)
    })
    child.once("exit", (code) => {
      clearTimeout(timer)
      if (code === 0) resolve(out)
      else reject(new Error(`${command} exited with ${code}: ${err.slice(-500)}`))
    })
  })

/** A Lua string literal. */
export const luaString = (s: string): string =>
  `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`

/** The wrk script of a target: method, body, the optional request builder, and a `done` printing one RESULT line. */
export const wrkScript = (target: Target): string =>
  [
    `wrk.method = ${luaString(target.method ?? "POST")}`,
    target.body !== undefined ? `wrk.body = ${luaString(target.body)}` : "",
    target.body !== undefined ? `wrk.headers["Content-Type"] = "application/json"` : "",
    target.requestLua ?? "",
    "done = function(summary, latency, requests)",
    "  local e = summary.errors",
    `  io.write(string.format('RESULT {"requests":%d,"duration_us":%d,"p50_us":%f,"p99_us":%f,"status":%d,"socket":%d}\\n',`,
    "    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), e.status,",
    "    e.connect + e.read + e.write + e.timeout))",
    "end"
  ].filter((line) => line !== "").join("\n")

/** The RESULT line the script's `done` printed, as a LoadResult. */
export const parseWrkResult = (out: string): LoadResult => {
  const line = /^RESULT (\{.*\})$/m.exec(out)
  if (line === null) throw new Error(`wrk printed no result: ${out.slice(-500)}`)
  const r = JSON.parse(line[1]!) as {
    requests: number
    duration_us: number
    p50_us: number
    p99_us: number
    status: number
    socket: number
  }
  return {
    rps: r.duration_us > 0 ? r.requests / (r.duration_us / 1e6) : 0,
    p50ms: r.p50_us / 1000,
    p99ms: r.p99_us / 1000,
    requests: r.requests,
    failures: r.status + r.socket
  }
}

export const wrk = (scriptDir: string): LoadGenerator => ({
  name: "wrk",
  run: async (target, seconds, connections) => {
    const script = Path.join(scriptDir, `wrk-${Math.random().toString(36).slice(2)}.lua`)
    Fs.writeFileSync(script, wrkScript(target))
    try {
      const out = await runProcess(
        "wrk",
        ["-t1", `-c${connections}`, `-d${seconds}s`, "--timeout", "10s", "-s", script, target.url],
        (seconds + 30) * 1000
      )
      return parseWrkResult(out)
    } finally {
      Fs.rmSync(script, { force: true })
    }
  }
})

export const autocannon = (bin: string): LoadGenerator => ({
  name: "autocannon",
  run: async (target, seconds, connections) => {
    if (target.requestLua !== undefined) throw new Error(`${target.name}: a per-request Lua builder needs wrk`)
    const args = ["-c", String(connections), "-d", String(seconds), "-m", target.method ?? "POST", "--json"]
    if (target.body !== undefined) args.push("-b", target.body, "-H", "content-type=application/json")
    const out = await runProcess(process.execPath, [bin, ...args, target.url], (seconds + 30) * 1000)
    const r = JSON.parse(out.slice(out.indexOf("{"))) as {
      requests: { total: number; average: number }
      latency: { p50: number; p99: number }
      duration: number
      non2xx: number
      errors: number
      timeouts: number
    }
    return {
      rps: r.requests.total / r.duration,
      p50ms: r.latency.p50,
      p99ms: r.latency.p99,
      requests: r.requests.total,
      failures: r.non2xx + r.errors + r.timeouts
    }
  }
})

/** Whether wrk is installed (on the PATH). */
export const hasWrk = (): boolean => spawnSync("wrk", ["--version"], { encoding: "utf8" }).error === undefined

/** wrk if it is installed, else autocannon if it is in node_modules; otherwise says how to get one. */
export const detectLoadGenerator = (scriptDir: string): LoadGenerator => {
  if (hasWrk()) return wrk(scriptDir)
  try {
    const require = createRequire(import.meta.url)
    const pkg = require.resolve("autocannon/package.json")
    return autocannon(Path.join(Path.dirname(pkg), "autocannon.js"))
  } catch {
    throw new Error(
      "no HTTP load generator: install wrk (Debian: apt-get install -y wrk) or autocannon " +
        "(npm install --no-save autocannon); wrk is preferred: it is lighter, so it takes less CPU from the server"
    )
  }
}

/**
 * `total` connections over `parts` load generators, as evenly as can be (the first ones get
 * one more): 50 over 3 is 17, 17, 16. Every part gets at least one.
 */
export const splitConnections = (total: number, parts: number): ReadonlyArray<number> => {
  const n = Math.max(1, Math.floor(parts))
  const each = Math.max(1, Math.floor(total / n))
  const extra = Math.max(0, total - each * n)
  return Array.from({ length: n }, (_, i) => each + (i < extra ? 1 : 0))
}

/**
 * Load generators run side by side (one per server), as one result: requests, failures and
 * throughput add up; the latency percentiles of separate histograms cannot be merged, so
 * p50 is the request-weighted mean of the parts' p50 and p99 the worst part's p99.
 */
export const combineLoads = (parts: ReadonlyArray<LoadResult>): LoadResult => {
  if (parts.length === 1) return parts[0]!
  const requests = parts.reduce((n, r) => n + r.requests, 0)
  return {
    rps: parts.reduce((n, r) => n + r.rps, 0),
    p50ms: requests > 0 ? parts.reduce((n, r) => n + r.p50ms * r.requests, 0) / requests : NaN,
    p99ms: parts.reduce((m, r) => Math.max(m, r.p99ms), parts.length === 0 ? NaN : -Infinity),
    requests,
    failures: parts.reduce((n, r) => n + r.failures, 0)
  }
}
