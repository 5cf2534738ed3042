/**
 * Footprint: how long each role of the BUILT program takes from process spawn to its first
 * `GET /health` answering 200, and how much memory (RSS) it holds once idle, next to a bare
 * `node -e` script that starts a `node:http` server answering /health (the baseline,
 * measured in the same run).
 *
 * Every round starts, one after the other, on free loopback ports and with a fresh data dir:
 *   - the baseline (`node -e`, node:http, answers /health);
 *   - `node bin/dcounter.js --role discovery`;
 *   - `node bin/dcounter.js --role node --discovery <that discovery>`;
 *   - `node bin/dcounter.js --role gateway --discovery <that discovery>` (its /health is 200
 *     once it knows a healthy node, i.e. after its first refresh found the node);
 * polling each one's /health every 10 ms. Every process is kept running, idle, after its
 * start-up: its memory (VmRSS, with its peak VmHWM and the anonymous / file-backed split, from
 * /proc/<pid>/status) is sampled once per second, 1 s to 25 s after its /health answered 200,
 * while the later processes and rounds start (the rounds share the wait). "Idle RSS" is the
 * settled value: the median of the samples 20 s to 25 s after /health (V8 gives back the young
 * generation that start-up grew 10-20 s after start, once it sees the process idle); the row
 * also says from when on the samples stayed within 1 % of it. The sample 3 s after /health
 * is reported beside it ("RSS 3 s after /health"). Every process is stopped (SIGTERM, SIGKILL
 * after 5 s) once all samples are in, or on failure. Three rounds (quick: one); start-up
 * times and RSS are the medians over the rounds.
 *
 * Then, for the breakdown, discovery, node and gateway are started once more through an
 * instrumented `node -e` script that imports bin/dcounter.js (the launcher and the bundle,
 * as the rounds run them) and times that import inside the process; the rest, up to
 * /health 200, is loading the role's chunk and building its layers (data dir, WAL,
 * listening, first discovery call). When the rounds' last sample is read (25 s after /health
 * answered, the settled process), SIGUSR2 makes it print its RSS and JS heap, run a full GC
 * and print its V8 heap (used, committed, each space's physical size): where the RSS goes. With
 * `--breakdown unbundled` it starts an instrumented copy of `dist/src/main.js` instead (the
 * same imports, then `Cli.program` as main.ts runs it), which times each import step (effect
 * and @effect/platform-node's runtime, the CLI, the role's modules). The unbundled build
 * loads whole package barrels (e.g. @effect/platform's Swagger UI assets, ~20 MB of large
 * strings): its memory is not what bin/dcounter.js holds.
 *
 *     npx tsc -p tsconfig.build.json && node dist/bench/footprint.js [--quick] [--rounds N]
 *       [--profile DIR] [--node-flags "--max-semi-space-size=2"] [--root DIR]
 *       [--breakdown bundled|unbundled]
 *
 * `--profile DIR` runs the rounds' dcounter processes under `node --cpu-prof` and leaves one
 * profile per process in DIR (written when the process exits on SIGTERM). `--node-flags`
 * passes node/V8 flags to every dcounter process (not the baseline). `--root DIR` measures
 * the build of another checkout or copy (its bin/dcounter.js, dist and node_modules), to
 * try a change side by side.
 *
 * Goal (from the product plan): an idle node <= 80 MB RSS, on the settled figure. Start-up has no goal; it is
 * reported next to the baseline. Linux only (/proc).
 */
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import type { BenchOptions, BenchResult, Figure } from "./BenchResult.js"
import { figure, formatNumber, isMain, main, ratioOf } from "./BenchResult.js"
import { cleanEnv } from "./Processes.js"

// ---------------------------------------------------------------------------------------
// pure helpers

/** Memory of a process from /proc/<pid>/status, in KiB (a field absent there is undefined). */
export interface ProcMemory {
  /** VmRSS: resident set size now */
  readonly rssKiB: number
  /** VmHWM: peak resident set size */
  readonly peakKiB: number | undefined
  /** RssAnon: anonymous pages (JS heap, code space, malloc) */
  readonly anonKiB: number | undefined
  /** RssFile: file-backed pages (the node binary, shared libraries) */
  readonly fileKiB: number | undefined
}

/** Parses the text of /proc/<pid>/status; undefined when it has no VmRSS (e.g. a zombie). */
export const parseProcStatus = (text: string): ProcMemory | undefined => {
  const field = (name: string): number | undefined => {
    const m = new RegExp(`^${name}:\\s+(\\d+)\\s+kB\\s*$`, "m").exec(text)
    return m === null ? undefined : Number(m[1])
  }
  const rssKiB = field("VmRSS")
  if (rssKiB === undefined) return undefined
  return { rssKiB, peakKiB: field("VmHWM"), anonKiB: field("RssAnon"), fileKiB: field("RssFile") }
}

/** The median (the mean of the two middle values for an even count); NaN for none. */
export const median = (xs: ReadonlyArray<number>): number => {
  if (xs.length === 0) return Number.NaN
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

const KIB_PER_MB = 1024

/** One /proc read of an idle process, `atS` seconds after its /health answered 200. */
export interface MemorySample {
  readonly atS: number
  readonly memory: ProcMemory
}

/** The settled memory of an idle process, from its samples. */
export interface Settled {
  /** medians of the samples in the window (peak: the last sample's VmHWM) */
  readonly memory: ProcMemory
  /** how many samples the window held */
  readonly samples: number
  /**
   * the earliest sample time from which every later sample's RSS is within `tolerance` of
   * the settled RSS; undefined when the last sample is not (still moving)
   */
  readonly settledFromS: number | undefined
}

/**
 * The settled memory: medians of the samples with `fromS <= atS <= toS`; undefined when the
 * window holds none (the process exited or was not sampled that long).
 */
export const settle = (
  samples: ReadonlyArray<MemorySample>,
  fromS: number,
  toS: number,
  tolerance = 0.01
): Settled | undefined => {
  const window = samples.filter((s) => s.atS >= fromS && s.atS <= toS)
  if (window.length === 0) return undefined
  const med = (f: (m: ProcMemory) => number | undefined): number | undefined => {
    const xs = window.map((s) => f(s.memory)).filter((x): x is number => x !== undefined)
    return xs.length === 0 ? undefined : median(xs)
  }
  const rssKiB = med((m) => m.rssKiB)!
  const sorted = [...samples].sort((a, b) => a.atS - b.atS)
  let settledFromS: number | undefined
  for (let i = sorted.length - 1; i >= 0; i--) {
    if (Math.abs(sorted[i]!.memory.rssKiB - rssKiB) > tolerance * rssKiB) break
    settledFromS = sorted[i]!.atS
  }
  return {
    memory: { rssKiB, peakKiB: window[window.length - 1]!.memory.peakKiB, anonKiB: med((m) => m.anonKiB), fileKiB: med((m) => m.fileKiB) },
    samples: window.length,
    settledFromS
  }
}

// ---------------------------------------------------------------------------------------
// processes

const here = Path.dirname(fileURLToPath(import.meta.url))
/** The repository root: this file is dist/bench/footprint.js (or bench/footprint.ts under a loader). */
const repoRoot = Path.basename(Path.dirname(here)) === "dist" ? Path.resolve(here, "../..") : Path.resolve(here, "..")

/** What is started, and how. */
interface Setup {
  /** the checkout whose build runs: its bin/dcounter.js, dist/src and node_modules */
  readonly root: string
  /** node flags for the dcounter processes (not the baseline), e.g. `--max-semi-space-size=2` */
  readonly nodeFlags: ReadonlyArray<string>
  /** run the dcounter processes of the rounds under `--cpu-prof`, writing here */
  readonly profileDir: string | undefined
}

export type Role = "baseline" | "discovery" | "node" | "gateway"
const ROLES: ReadonlyArray<Exclude<Role, "baseline">> = ["discovery", "node", "gateway"]

const START_TIMEOUT_MS = 30_000
const STOP_GRACE_MS = 5_000
const POLL_MS = 10
/** the early read: RSS this long after /health answered 200 (what the bench used to report) */
const EARLY_S = 3
/** idle processes are sampled once per `SAMPLE_MS`, up to `SETTLED_TO_S` after /health */
const SAMPLE_MS = 1_000
/** the settled figure: median of the samples from `SETTLED_FROM_S` to `SETTLED_TO_S` after /health */
const SETTLED_FROM_S = 20
const SETTLED_TO_S = 25

interface Proc {
  readonly label: string
  readonly child: ChildProcess
  /** performance.now() just before spawn */
  readonly spawnedAt: number
  readonly exited: Promise<void>
  readonly hasExited: () => boolean
  /** the last lines of stdout + stderr, for error messages */
  readonly tail: () => string
}

/** Every process this module started and has not seen exit: killed if the bench exits early. */
const live = new Set<ChildProcess>()
const killLive = () => {
  for (const child of live) child.kill("SIGKILL")
}


const startProcess = (label: string, args: ReadonlyArray<string>, cwd: string): Proc => {
  let output = ""
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString("utf8")).slice(-4_000)
  }
  const spawnedAt = performance.now()
  const child = spawn(process.execPath, args, { cwd, env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] })
  live.add(child)
  child.stdout!.on("data", keep)
  child.stderr!.on("data", keep)
  let done = false
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => {
      done = true
      live.delete(child)
      resolve()
    })
    child.once("error", (e) => {
      keep(Buffer.from(`spawn error: ${e.message}\n`))
      done = true
      live.delete(child)
      resolve()
    })
  })
  return { label, child, spawnedAt, exited, hasExited: () => done, tail: () => output.trim().split("\n").slice(-5).join(" / ") }
}

/** SIGTERM, then SIGKILL if it has not exited after `STOP_GRACE_MS`. Resolves once it exited. */
const stopProcess = async (p: Proc): Promise<void> => {
  if (p.hasExited()) return
  p.child.kill("SIGTERM")
  const timer = setTimeout(() => p.child.kill("SIGKILL"), STOP_GRACE_MS)
  await p.exited
  clearTimeout(timer)
}

/** A free TCP port on 127.0.0.1 (the OS picks it; it is closed again before use). */
const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("no port assigned"))))
    })
  })

/** The status of one GET, or undefined when nothing answered (refused, reset, timed out). */
const getStatus = (url: string, timeoutMs: number): Promise<number | undefined> =>
  new Promise((resolve) => {
    const req = Http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      res.resume()
      res.once("end", () => resolve(res.statusCode))
      res.once("error", () => resolve(res.statusCode))
    })
    req.once("timeout", () => req.destroy())
    req.once("error", () => resolve(undefined))
  })

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export interface Startup {
  /** ms from spawn to the first HTTP answer on /health, whatever its status */
  readonly firstAnswerMs: number
  /** ms from spawn to the first 200 on /health */
  readonly healthyMs: number
  /** performance.now() of that 200 */
  readonly healthyAt: number
}

/** Polls `url` every `POLL_MS` until it answers 200; fails if the process exits or after the timeout. */
const awaitHealthy = async (p: Proc, url: string): Promise<Startup> => {
  let firstAnswerMs: number | undefined
  let lastStatus: number | undefined
  while (performance.now() - p.spawnedAt < START_TIMEOUT_MS) {
    if (p.hasExited()) {
      throw new Error(`${p.label} exited (code ${p.child.exitCode}, ${p.child.signalCode ?? "no signal"}) before /health: ${p.tail()}`)
    }
    const sent = performance.now()
    const status = await getStatus(url, 1_000)
    const now = performance.now()
    if (status !== undefined) {
      lastStatus = status
      firstAnswerMs ??= now - p.spawnedAt
      if (status === 200) return { firstAnswerMs, healthyMs: now - p.spawnedAt, healthyAt: now }
    }
    const wait = POLL_MS - (now - sent)
    if (wait > 0) await sleep(wait)
  }
  throw new Error(
    `${p.label}: /health not 200 within ${START_TIMEOUT_MS / 1000} s (last status ${lastStatus ?? "none"}): ${p.tail()}`
  )
}

const readMemory = (pid: number | undefined): ProcMemory | undefined => {
  if (pid === undefined) return undefined
  try {
    return parseProcStatus(Fs.readFileSync(`/proc/${pid}/status`, "utf8"))
  } catch {
    return undefined
  }
}

/** The bare baseline: node:http answering /health with a small JSON body, nothing else loaded. */
const baselineScript = (port: number): string =>
  `const http = require("node:http");` +
  `http.createServer((req, res) => {` +
  `  const body = req.url === "/health" ? '{"status":"ok"}' : '{"error":"not_found"}';` +
  `  res.writeHead(req.url === "/health" ? 200 : 404, { "content-type": "application/json", "content-length": body.length });` +
  `  res.end(body);` +
  `}).listen(${port}, "127.0.0.1");` +
  `process.once("SIGTERM", () => process.exit(0));`

// ---------------------------------------------------------------------------------------
// one round

export interface Measured {
  readonly startup: Startup
  /** the sample `EARLY_S` after /health answered 200; undefined when /proc could not be read */
  readonly early: ProcMemory | undefined
  /** the settled memory (samples `SETTLED_FROM_S`..`SETTLED_TO_S` s after /health) */
  readonly settled: Settled | undefined
}

export type Round = Readonly<Record<Role, Measured>>

/** A started process: its start-up, and its memory samples (resolved once `SETTLED_TO_S` is past). */
interface Running {
  readonly startup: Startup
  readonly samples: Promise<ReadonlyArray<MemorySample>>
}

/** What the bench started: stopped / removed once every sample is in, or on failure. */
interface Started {
  readonly procs: Array<Proc>
  readonly dirs: Array<string>
  readonly pending: Array<Promise<unknown>>
}

/**
 * Reads `p`'s memory once per `SAMPLE_MS`, from 1 s to `SETTLED_TO_S` after `healthyAt`
 * (each read on its own schedule, so a late timer does not shift the later ones); stops
 * early when the process has exited.
 */
const sampleMemory = async (p: Proc, healthyAt: number): Promise<ReadonlyArray<MemorySample>> => {
  const out: Array<MemorySample> = []
  for (let k = 1; k * SAMPLE_MS <= SETTLED_TO_S * 1_000; k++) {
    await sleep(Math.max(0, healthyAt + k * SAMPLE_MS - performance.now()))
    if (p.hasExited()) break
    const memory = readMemory(p.child.pid)
    if (memory === undefined) break
    out.push({ atS: (k * SAMPLE_MS) / 1_000, memory })
  }
  return out
}

const measuredOf = async (r: Running): Promise<Measured> => {
  const samples = await r.samples
  return {
    startup: r.startup,
    early: samples.find((s) => s.atS === EARLY_S)?.memory,
    settled: settle(samples, SETTLED_FROM_S, SETTLED_TO_S)
  }
}

/**
 * Starts one round's processes one after the other, each once the previous one answered
 * /health 200, and leaves them running (idle) with their memory being sampled.
 */
/**
 * Starts a discovery server, then a node and a gateway that find it through it, one after
 * the other, on free loopback ports (`dataDir` holds the node's data directory). `start`
 * launches one role with its flags (`--role ...`) and resolves once it is healthy.
 */
const startRoles = async <A>(
  dataDir: string,
  start: (role: Exclude<Role, "baseline">, args: ReadonlyArray<string>, healthUrl: string) => Promise<A>
): Promise<Record<Exclude<Role, "baseline">, A>> => {
  const discoveryPort = await freePort()
  const gossipPort = await freePort()
  const nodeHttpPort = await freePort()
  const gatewayPort = await freePort()
  const discoveryAddr = `127.0.0.1:${discoveryPort}`
  const discovery = await start("discovery", ["--role", "discovery", "--addr", discoveryAddr], `http://${discoveryAddr}/health`)
  const node = await start(
    "node",
    [
      "--role", "node",
      "--addr", `127.0.0.1:${gossipPort}`,
      "--http-addr", `127.0.0.1:${nodeHttpPort}`,
      "--discovery", discoveryAddr,
      "--data-dir", Path.join(dataDir, "node")
    ],
    `http://127.0.0.1:${nodeHttpPort}/health`
  )
  const gateway = await start(
    "gateway",
    ["--role", "gateway", "--addr", `127.0.0.1:${gatewayPort}`, "--discovery", discoveryAddr],
    `http://127.0.0.1:${gatewayPort}/health`
  )
  return { discovery, node, gateway }
}

const startRound = async (index: number, setup: Setup, started: Started): Promise<Record<Role, Running>> => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "dcounter-bench-footprint-"))
  started.dirs.push(dir)
  const bin = Path.join(setup.root, "bin", "dcounter.js")
  /** node flags, an optional CPU profile, then the CLI: what goes before the role's flags */
  const dcounter = (role: Exclude<Role, "baseline">): Array<string> => [
    ...setup.nodeFlags,
    ...(setup.profileDir === undefined
      ? []
      : ["--cpu-prof", `--cpu-prof-dir=${setup.profileDir}`, `--cpu-prof-name=${role}-${index + 1}.cpuprofile`]),
    bin
  ]
  /** Starts one process, waits until /health is 200 and starts sampling its memory. */
  const measure = async (role: Role, args: ReadonlyArray<string>, healthUrl: string): Promise<Running> => {
    const p = startProcess(`${role} (round ${index + 1})`, args, setup.root)
    started.procs.push(p)
    const startup = await awaitHealthy(p, healthUrl)
    const samples = sampleMemory(p, startup.healthyAt)
    started.pending.push(samples)
    return { startup, samples }
  }
  const basePort = await freePort()
  const baseline = await measure("baseline", ["-e", baselineScript(basePort)], `http://127.0.0.1:${basePort}/health`)
  const roles = await startRoles(dir, (role, args, healthUrl) => measure(role, [...dcounter(role), ...args], healthUrl))
  return { baseline, ...roles }
}

/** Stops every started process (in reverse start order) and removes the temp dirs. */
const stopAll = async (started: Started): Promise<void> => {
  await Promise.all([...started.procs].reverse().map(stopProcess))
  // the samplers stop on their own once their process has exited
  await Promise.allSettled(started.pending)
  for (const dir of started.dirs) Fs.rmSync(dir, { recursive: true, force: true })
}

// ---------------------------------------------------------------------------------------
// the breakdown: an instrumented start of the bundle (or of dist/src/main.js)

/** One import of the instrumented start-up: how long it took and the RSS after it. */
export interface ImportStep {
  readonly name: string
  readonly ms: number
  readonly rssMB: number
}

/** What the instrumented process prints once its imports are done. */
export interface ImportTimes {
  /** performance.timeOrigin of the child (epoch ms): when its process started */
  readonly timeOrigin: number
  /** ms from the child's time origin to the first line of its script */
  readonly bootMs: number
  readonly bootRssMB: number
  readonly steps: ReadonlyArray<ImportStep>
  /** ms from the child's time origin to the end of the imports */
  readonly importsDoneAt: number
}

/** What the instrumented process prints on SIGUSR2: the heap before and after a full GC. */
export interface HeapReport {
  /** RSS and JS heap used when the signal came, before the GC */
  readonly rssBeforeGcMB?: number
  readonly heapUsedBeforeGcMB?: number
  /** the rest after the full GC */
  readonly rssMB: number
  readonly heapUsedMB: number
  readonly heapTotalMB: number
  readonly externalMB: number
  /** physical size of each V8 heap space that has any, MB */
  readonly spaces: Readonly<Record<string, number>>
}

export interface Breakdown {
  readonly build: BreakdownBuild
  readonly imports: ImportTimes
  /** ms from spawn to /health 200 of the instrumented process */
  readonly healthyMs: number
  /** ms from spawn to the child's time origin (fork + exec) */
  readonly spawnGapMs: number
  readonly heap: HeapReport | undefined
}

const roleModule: Record<Exclude<Role, "baseline">, string> = {
  discovery: "dist/src/discoveryServer/DiscoveryRole.js",
  node: "dist/src/node/NodeRole.js",
  gateway: "dist/src/gateway/GatewayRole.js"
}

const IMPORTS_LINE = "FOOTPRINT-IMPORTS "
const HEAP_LINE = "FOOTPRINT-HEAP "

/** What the breakdown starts: the bundled CLI (bin/dcounter.js, what the rounds run) or dist/src. */
export type BreakdownBuild = "bundled" | "unbundled"

/** The SIGUSR2 handler of the instrumented scripts: the heap before and after a full GC. */
const heapReportLines: ReadonlyArray<string> = [
  `const spacesMB = () => Object.fromEntries(v8.getHeapSpaceStatistics().filter((s) => s.physical_space_size > 0).map((s) => [s.space_name, s.physical_space_size / MB]))`,
  `process.on("SIGUSR2", () => {`,
  `  const heapUsedBeforeGcMB = process.memoryUsage().heapUsed / MB, rssBeforeGcMB = rssMB()`,
  `  globalThis.gc()`,
  `  const m = process.memoryUsage()`,
  `  process.stdout.write(${JSON.stringify(HEAP_LINE)} + JSON.stringify({ rssMB: m.rss / MB, rssBeforeGcMB, heapUsedBeforeGcMB, heapUsedMB: m.heapUsed / MB, heapTotalMB: m.heapTotal / MB, externalMB: m.external / MB, spaces: spacesMB() }) + "\\n")`,
  `})`
]

/**
 * An ES module script, run as `node --expose-gc --input-type=module -e <script> -- <args>`
 * in the repository root (so bare specifiers resolve as they do for dist/src/main.js). On
 * SIGUSR2 it prints its heap, before and after a full GC.
 *
 * "bundled": imports bin/dcounter.js (the launcher and the bundle's main chunk and shared
 * chunks; the bundle then loads the role's chunk and runs the CLI), timing that import.
 * `args` must start with a placeholder for the script path (the bundle reads
 * `process.argv.slice(2)`).
 *
 * "unbundled": does what dist/src/main.js does, with timestamps: imports effect and
 * @effect/platform-node's runtime, then the CLI, then the role's module (which
 * src/cli/Run.ts imports lazily once the role is known: here it is already cached), prints
 * the timings, and runs `Cli.program` exactly as main.ts does. Keep it in step with
 * src/main.ts.
 */
const instrumentedScript = (root: string, role: Exclude<Role, "baseline">, build: BreakdownBuild): string => {
  const url = (file: string) => JSON.stringify(pathToFileURL(Path.join(root, file)).href)
  const head = [
    `import * as v8 from "node:v8"`,
    `const MB = 1048576`,
    `const rssMB = () => process.memoryUsage().rss / MB`,
    `const bootMs = performance.now(), bootRssMB = rssMB()`,
    `const steps = []`,
    `const step = async (name, load) => { const t0 = performance.now(); const m = await load(); steps.push({ name, ms: performance.now() - t0, rssMB: rssMB() }); return m }`,
    ...heapReportLines
  ]
  const printTimes =
    `process.stdout.write(${JSON.stringify(IMPORTS_LINE)} + JSON.stringify({ timeOrigin: performance.timeOrigin, bootMs, bootRssMB, steps, importsDoneAt: performance.now() }) + "\\n")`
  if (build === "bundled") {
    return [
      ...head,
      `await step("bin/dcounter.js + bundle", () => import(${url(Path.join("bin", "dcounter.js"))}))`,
      printTimes
    ].join("\n")
  }
  const runtime = packageImportsOf(Fs.readFileSync(Path.join(root, "dist", "src", "main.js"), "utf8"))
  return [
    ...head,
    // main.js's own package imports first, as it loads them; then the modules it uses (already loaded by then)
    `await step("runtime: main.js package imports", () => Promise.all([${runtime.map((m) => `import(${JSON.stringify(m)})`).join(", ")}]))`,
    `const [Effect, NodeContext, NodeRuntime] = await Promise.all([import("effect/Effect"), import("@effect/platform-node/NodeContext"), import("@effect/platform-node/NodeRuntime")])`,
    `const Cli = await step("CLI", () => import(${url("dist/src/cli/Cli.js")}))`,
    `await step("${role} role modules", () => import(${url(roleModule[role])}))`,
    printTimes,
    `Cli.program(process.argv.slice(1), process.env).pipe(`,
    `  Effect.provide(NodeContext.layer),`,
    `  NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true, teardown: Cli.teardown })`,
    `)`
  ].join("\n")
}

/** The package specifiers (not relative paths) a module's static imports name, in order. */
export const packageImportsOf = (source: string): ReadonlyArray<string> => {
  const found: Array<string> = []
  for (const m of source.matchAll(/^\s*import\s+(?:[^"';]*?\s+from\s+)?["']([^"']+)["']/gm)) {
    const spec = m[1]!
    if (!spec.startsWith(".") && !spec.startsWith("/") && !found.includes(spec)) found.push(spec)
  }
  return found
}
/** Whether the instrumented start-up can run on `root`: the bundle, or the unbundled dist/src modules. */
const canBreakDown = (root: string, build: BreakdownBuild): boolean =>
  (build === "bundled"
    ? [Path.join("bin", "dcounter.js"), Path.join("dist", "bundle", "main.js")]
    : [Path.join("dist", "src", "main.js"), Path.join("dist", "src", "cli", "Cli.js"), ...Object.values(roleModule)])
    .every((f) => Fs.existsSync(Path.join(root, f)))

/** Collects the stdout lines of `p` that start with `prefix`, parsed as JSON. */
const linesOf = (p: Proc, prefix: string): (() => ReadonlyArray<unknown>) => {
  const found: Array<unknown> = []
  let pending = ""
  p.child.stdout!.on("data", (chunk: Buffer) => {
    pending += chunk.toString("utf8")
    let nl = pending.indexOf("\n")
    while (nl >= 0) {
      const line = pending.slice(0, nl)
      pending = pending.slice(nl + 1)
      if (line.startsWith(prefix)) {
        try {
          found.push(JSON.parse(line.slice(prefix.length)))
        } catch {
          // a line cut by other output: the caller reports what is missing
        }
      }
      nl = pending.indexOf("\n")
    }
  })
  return () => found
}

/** Waits (bounded) until `get` returns something. */
const awaitValue = async <A>(get: () => A | undefined, timeoutMs: number): Promise<A | undefined> => {
  const end = performance.now() + timeoutMs
  for (;;) {
    const a = get()
    if (a !== undefined || performance.now() > end) return a
    await sleep(POLL_MS)
  }
}

/**
 * Discovery, node and gateway again, each started through the instrumented script instead
 * of bin/dcounter.js, one after the other, and left running; each one's heap is asked for
 * (SIGUSR2) when the rounds take their last sample, `SETTLED_TO_S` after its /health answered
 * 200 (the settled process). Resolves once they are started, with their pending reports.
 */
const startBreakdown = async (
  setup: Setup,
  build: BreakdownBuild,
  started: Started
): Promise<Record<Exclude<Role, "baseline">, Promise<Breakdown>>> => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "dcounter-bench-footprint-"))
  started.dirs.push(dir)
  const start = async (
    role: Exclude<Role, "baseline">,
    args: ReadonlyArray<string>,
    healthUrl: string
  ): Promise<{ readonly report: Promise<Breakdown> }> => {
    const p = startProcess(
      `instrumented ${role} (${build})`,
      [
        "--expose-gc",
        ...setup.nodeFlags,
        "--input-type=module",
        "-e",
        instrumentedScript(setup.root, role, build),
        "--",
        // the bundle reads process.argv.slice(2), main.ts's copy slice(1)
        ...(build === "bundled" ? [Path.join("bin", "dcounter.js")] : []),
        ...args
      ],
      setup.root
    )
    started.procs.push(p)
    const imports = linesOf(p, IMPORTS_LINE)
    const heaps = linesOf(p, HEAP_LINE)
    const startup = await awaitHealthy(p, healthUrl)
    const times = (await awaitValue(() => imports()[0], 2_000)) as ImportTimes | undefined
    if (times === undefined) throw new Error(`${p.label} printed no import times: ${p.tail()}`)
    const measured = (async (): Promise<Breakdown> => {
      await sleep(Math.max(0, startup.healthyAt + SETTLED_TO_S * 1_000 - performance.now()))
      if (!p.hasExited()) p.child.kill("SIGUSR2")
      const heap = (await awaitValue(() => heaps()[0], 2_000)) as HeapReport | undefined
      return {
        build,
        imports: times,
        healthyMs: startup.healthyMs,
        spawnGapMs: times.timeOrigin - (performance.timeOrigin + p.spawnedAt),
        heap
      }
    })()
    started.pending.push(measured)
    // wrapped: an awaited promise of a promise would wait for the report too
    return { report: measured }
  }
  const roles = await startRoles(dir, start)
  return { discovery: roles.discovery.report, node: roles.node.report, gateway: roles.gateway.report }
}

// ---------------------------------------------------------------------------------------
// the benchmark

export interface FootprintOptions extends BenchOptions {
  /** rounds of start-ups (default 3; quick: 1) */
  readonly rounds?: number
  /** run the dcounter processes of the rounds under `node --cpu-prof`, writing the profiles here */
  readonly profileDir?: string
  /** measure the build in this checkout instead of this one (a copy with a change to try) */
  readonly root?: string
  /** node flags for every dcounter process, e.g. ["--max-semi-space-size=2"] */
  readonly nodeFlags?: ReadonlyArray<string>
  /**
   * what the breakdown starts: the bundled CLI that the rounds run (default), or the
   * unbundled dist/src modules, which times each import step (runtime, CLI, role)
   */
  readonly breakdown?: BreakdownBuild
}

/**
 * The whole bench should stay within 75 s (its bound is 120 s): a round does not start when
 * it, the breakdown's start-ups (about as long as a round) and the idle wait after the last
 * start-up (`SETTLED_TO_S`, plus stopping) would end past this, judging by the rounds so far.
 * On a loaded machine that means fewer rounds (the notes say how many).
 */
const BUDGET_MS = 75_000

const names: Record<Role, string> = {
  baseline: "bare node:http /health (node -e)",
  discovery: "discovery",
  node: "node (--discovery)",
  gateway: "gateway (--discovery, 200 once a node is healthy)"
}

const argValue = (flag: string): string | undefined => {
  const i = process.argv.indexOf(flag)
  return i >= 0 ? process.argv[i + 1] : undefined
}

const mb = (kib: number | undefined): number => (kib === undefined ? Number.NaN : kib / KIB_PER_MB)

export const run = async (options: FootprintOptions = {}): Promise<ReadonlyArray<BenchResult>> => {
  const log = options.log ?? ((line: string) => process.stderr.write(line + "\n"))
  if (process.platform !== "linux") throw new Error("bench/footprint reads /proc: Linux only")
  const setup: Setup = { root: options.root ?? repoRoot, nodeFlags: options.nodeFlags ?? [], profileDir: options.profileDir }
  if (!Fs.existsSync(Path.join(setup.root, "dist", "src", "main.js"))) {
    throw new Error(`${setup.root}/dist/src/main.js is missing: build first (npx tsc -p tsconfig.build.json)`)
  }
  if (setup.root !== repoRoot || setup.nodeFlags.length > 0) {
    log(`footprint: measuring ${setup.root} with node flags [${setup.nodeFlags.join(" ")}]`)
  }
  const wanted = options.rounds ?? (options.quick === true ? 1 : 3)
  if (options.profileDir !== undefined) Fs.mkdirSync(options.profileDir, { recursive: true })
  process.once("exit", killLive)
  const started = performance.now()
  const running: Started = { procs: [], dirs: [], pending: [] }
  const rounds: Array<Record<Role, Running>> = []
  const all = ["baseline", ...ROLES] as const
  try {
    for (let i = 0; i < wanted; i++) {
      const elapsed = performance.now() - started
      const perRound = rounds.length === 0 ? 0 : elapsed / rounds.length
      if (rounds.length > 0 && elapsed + 2 * perRound + SETTLED_TO_S * 1_000 + STOP_GRACE_MS > BUDGET_MS) {
        log(
          `footprint: starting ${rounds.length} of ${wanted} rounds: ${formatNumber(elapsed / 1000)} s so far, ` +
            `about ${formatNumber(perRound / 1000)} s per round, ${BUDGET_MS / 1000} s budget`
        )
        break
      }
      log(`footprint: round ${i + 1}/${wanted}: baseline, discovery, node, gateway (left running, idle)`)
      const r = await startRound(i, setup, running)
      log(`  start-up to /health 200: ` + all.map((role) => `${role} ${formatNumber(r[role].startup.healthyMs)} ms`).join(", "))
      rounds.push(r)
    }
    let breakdown: Record<Exclude<Role, "baseline">, Promise<Breakdown>> | undefined
    const build = options.breakdown ?? "bundled"
    if (canBreakDown(setup.root, build)) {
      log(
        `footprint: breakdown: discovery, node, gateway through an instrumented ` +
          (build === "bundled" ? "import of bin/dcounter.js (the bundle)" : "copy of dist/src/main.js")
      )
      breakdown = await startBreakdown(setup, build, running)
    } else log(`footprint: no breakdown: ${setup.root} has not the ${build} build`)
    log(`footprint: sampling every process's RSS once per second until ${SETTLED_TO_S} s after its /health`)
    const measured: Array<Round> = []
    for (const r of rounds) {
      const m = {
        baseline: await measuredOf(r.baseline),
        discovery: await measuredOf(r.discovery),
        node: await measuredOf(r.node),
        gateway: await measuredOf(r.gateway)
      }
      log(
        `  RSS ${EARLY_S} s after /health -> settled (${SETTLED_FROM_S}-${SETTLED_TO_S} s): ` +
          all.map((role) => `${role} ${formatNumber(mb(m[role].early?.rssKiB))} -> ${formatNumber(mb(m[role].settled?.memory.rssKiB))} MB`).join(", ")
      )
      measured.push(m)
    }
    const broken = breakdown === undefined
      ? undefined
      : { discovery: await breakdown.discovery, node: await breakdown.node, gateway: await breakdown.gateway }
    return results(measured, broken, setup)
  } finally {
    await stopAll(running)
    killLive()
    process.removeListener("exit", killLive)
    log(`footprint: done in ${formatNumber((performance.now() - started) / 1000)} s`)
  }
}

const results = (
  rounds: ReadonlyArray<Round>,
  breakdown: Readonly<Record<Exclude<Role, "baseline">, Breakdown>> | undefined,
  setup: Setup
): Array<BenchResult> => {
  const all = ["baseline", ...ROLES] as const
  const of = (role: Role, f: (m: Measured) => number | undefined): Array<number> =>
    rounds.map((r) => f(r[role])).filter((x): x is number => x !== undefined && Number.isFinite(x))
  const variant = [
    ...(setup.root === repoRoot ? [] : [`build in ${setup.root}`]),
    ...(setup.nodeFlags.length === 0 ? [] : [`node flags ${setup.nodeFlags.join(" ")}`])
  ]
  const roundsNote = `median of ${rounds.length} round${rounds.length === 1 ? "" : "s"}` +
    (variant.length === 0 ? "" : `; ${variant.join(", ")}`)
  const out: Array<BenchResult> = []

  // start-up
  const healthy = (role: Role) => median(of(role, (m) => m.startup.healthyMs))
  for (const role of all) {
    const ms = of(role, (m) => m.startup.healthyMs)
    const figures: Array<Figure> = [
      figure("spawn to /health 200", healthy(role), "ms", "lower"),
      figure("to first answer", median(of(role, (m) => m.startup.firstAnswerMs)), "ms", "lower"),
      figure("min", Math.min(...ms), "ms", "lower"),
      figure("max", Math.max(...ms), "ms", "lower")
    ]
    const ratio = ratioOf(healthy(role), healthy("baseline"))
    out.push({
      bench: "footprint",
      name: `start-up: ${names[role]}`,
      figures,
      ...(role === "baseline" ? {} : { baseline: `start-up: ${names.baseline}`, ...(ratio === undefined ? {} : { ratio }) }),
      notes: `${roundsNote}; /health polled every ${POLL_MS} ms; processes started one after the other`
    })
  }

  // memory: the settled figure first, the early read beside it
  const rss = (role: Role) => median(of(role, (m) => mb(m.settled?.memory.rssKiB)))
  for (const role of all) {
    const value = rss(role)
    const settledFrom = of(role, (m) => m.settled?.settledFromS)
    const moving = rounds.length - settledFrom.length
    const figures: Array<Figure> = [
      figure("RSS", value, "MB", "lower"),
      figure(`RSS ${EARLY_S} s after /health`, median(of(role, (m) => mb(m.early?.rssKiB))), "MB", "lower"),
      ...(settledFrom.length === 0 ? [] : [figure("within 1 % of RSS from", median(settledFrom), "s", "lower")]),
      figure("peak RSS", median(of(role, (m) => mb(m.settled?.memory.peakKiB))), "MB", "lower"),
      figure("anonymous", median(of(role, (m) => mb(m.settled?.memory.anonKiB))), "MB", "lower"),
      figure("file-backed", median(of(role, (m) => mb(m.settled?.memory.fileKiB))), "MB", "lower")
    ]
    const ratio = ratioOf(value, rss("baseline"))
    out.push({
      bench: "footprint",
      name: `idle RSS: ${names[role]}`,
      figures,
      ...(role === "baseline" ? {} : { baseline: `idle RSS: ${names.baseline}`, ...(ratio === undefined ? {} : { ratio }) }),
      ...(role === "node" ? { goal: "<= 80 MB (settled)", met: value <= 80 } : {}),
      notes: `${roundsNote}; VmRSS from /proc/<pid>/status read once per second while idle, 1-${SETTLED_TO_S} s ` +
        `after /health answered 200; RSS = median of the reads ${SETTLED_FROM_S}-${SETTLED_TO_S} s after it ` +
        `(settled); "RSS ${EARLY_S} s after /health" = the read at ${EARLY_S} s; "within 1 % from" = the first read ` +
        `from which every later one is within 1 % of RSS` +
        (moving === 0 ? "" : ` (${moving} round${moving === 1 ? "" : "s"} still moving past 1 % at ${SETTLED_TO_S} s)`)
    })
  }

  // where the start-up time and the memory go
  for (const role of ROLES) {
    const b = breakdown?.[role]
    if (b === undefined) continue
    const t = b.imports
    const rest = b.healthyMs - b.spawnGapMs - t.importsDoneAt
    const imported = t.steps.reduce((a, s) => a + s.ms, 0)
    const what = b.build === "bundled"
      ? "an instrumented import of bin/dcounter.js (the bundle, as the rounds run it)"
      : "an instrumented copy of dist/src/main.js (unbundled: same imports, then Cli.program)"
    out.push({
      bench: "footprint",
      name: `breakdown: ${role} start-up (${b.build})`,
      figures: [
        figure("spawn to /health 200", b.healthyMs, "ms", "lower"),
        figure("process start + node boot", b.spawnGapMs + t.bootMs, "ms", "lower"),
        figure("imports", imported, "ms", "lower"),
        ...t.steps.map((s) => figure(`import ${s.name}`, s.ms, "ms", "lower")),
        figure("layers, listen, first /health", rest, "ms", "lower")
      ],
      notes: `one run of ${what}, timed inside the process; ` +
        (b.build === "bundled" ? "the role's chunk loads in the rest, " : "") +
        "the rest is building the role's layers until /health answers 200"
    })
    const h = b.heap
    out.push({
      bench: "footprint",
      name: `breakdown: ${role} memory (${b.build})`,
      figures: [
        ...(h?.rssBeforeGcMB === undefined ? [] : [figure("RSS", h.rssBeforeGcMB, "MB", "lower")]),
        ...(h === undefined ? [] : [figure("RSS after GC", h.rssMB, "MB", "lower")]),
        figure("RSS at boot", t.bootRssMB, "MB", "lower"),
        ...t.steps.map((s) => figure(`RSS after ${s.name}`, s.rssMB, "MB", "lower")),
        ...(h === undefined
          ? []
          : [
            ...(h.heapUsedBeforeGcMB === undefined ? [] : [figure("JS heap used before GC", h.heapUsedBeforeGcMB, "MB", "lower")]),
            figure("JS heap used", h.heapUsedMB, "MB", "lower"),
            figure("JS heap committed", h.heapTotalMB, "MB", "lower"),
            ...Object.entries(h.spaces)
              .filter(([, v]) => v >= 0.5)
              .map(([name, v]) => figure(name, v, "MB", "lower")),
            figure("external", h.externalMB, "MB", "lower")
          ])
      ],
      notes:
        `one run of ${what}; RSS after each import step; RSS and heap read ${SETTLED_TO_S} s after /health answered 200 ` +
        "(the rounds' last read, settled), then again after a full GC: committed spaces (physical size) after it" +
        (h === undefined ? " (the heap report did not arrive)" : "")
    })
  }
  return out
}

if (isMain(import.meta.url)) {
  const rounds = Number(argValue("--rounds"))
  const profileDir = argValue("--profile")
  const root = argValue("--root")
  const nodeFlags = argValue("--node-flags")
  const breakdown = argValue("--breakdown")
  if (breakdown !== undefined && breakdown !== "bundled" && breakdown !== "unbundled") {
    process.stderr.write(`--breakdown: bundled or unbundled, not ${breakdown}\n`)
    process.exit(2)
  }
  void main((options) =>
    run({
      ...options,
      ...(Number.isInteger(rounds) && rounds > 0 ? { rounds } : {}),
      ...(profileDir === undefined ? {} : { profileDir: Path.resolve(profileDir) }),
      ...(root === undefined ? {} : { root: Path.resolve(root) }),
      ...(nodeFlags === undefined ? {} : { nodeFlags: nodeFlags.split(/\s+/).filter((f) => f.length > 0) }),
      ...(breakdown === undefined ? {} : { breakdown })
    })
  )
}
