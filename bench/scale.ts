/**
 * Many named counters (issue "1,000,000 counters per node"): what a cluster of node processes
 * of the BUILT program costs as the number of counters grows, for 10k, 100k and 1M counters,
 * each figure next to the issue's goal.
 *
 * Per size, in a fresh temporary directory (real data directories, real TCP, loopback):
 *
 *  1. node A, then B (static peers of each other). The counters `c0000000`, `c0000001`, ...
 *     are created on A with one increment each, either over HTTP (`http`: wrk, one thread,
 *     64 keep-alive connections, POST /counters/NAME/increment with sequential distinct
 *     names; A's /health count is polled and wrk stopped once it reaches N: the create rate)
 *     or, for 1M by default, `seed`: written into A's data directory before A starts,
 *     through the product's own WAL (`DataDirFile` + `WalFile`, the code a node writes
 *     with), as A's own entries: exactly the state N HTTP creates on A would leave. A's
 *     first start is then a replay of N counters. Either way B learns them by gossip;
 *  2. settled RSS of A and B: VmRSS sampled every 500 ms until it stays within 2 % for 3 s
 *     (no --expose-gc on the product: waiting for V8 to settle is the only way), bounded;
 *     RSS per counter = (A's settled RSS - an empty node's RSS) / N, the empty node measured
 *     once at the start of the run (median of its reads 2-4 s after it answered);
 *  3. idle CPU of A and B (user + system from /proc/PID/stat over a few seconds);
 *  4. catch-up: node C started empty with peers A and B; the time from its spawn until its
 *     /health counts N counters. Every counter holds exactly one entry (A's, total 1), so
 *     the same count is the same state;
 *  5. 100 writes/s for a few seconds, round-robin on A, B and C, each an increment of a
 *     random counter out of the N: CPU per node, and gossip bytes sent per node
 *     (`dcounter_bytes_out_total` from /metrics) compared with the bytes of the entries
 *     written (the msgpack size of each `[name, replica, inc, dec]` a write produced);
 *  6. A's data directory on disk (WAL segments + snapshots), then A is stopped (SIGTERM)
 *     and started again: the time from spawn until it serves (/readyz 200, or /health 200
 *     where there is no /readyz) with its N counters.
 *
 * Every phase is bounded (a phase that overruns is reported as missed, with what it reached);
 * every process is stopped at the end of its case, and the directory removed.
 *
 *     npm run build && node dist/bench/scale.js [--quick] [--only 10k,100k,1m] [--create http|seed]
 *
 * `--create` forces one way of creating for every size (default: http for 10k and 100k,
 * seed for 1M, so the whole module stays within its time bound). `--quick` shortens the
 * idle, load and settle windows, never the number of counters. Linux only (/proc).
 */
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { Effect, Layer, Logger, LogLevel } from "effect"
import { pack } from "msgpackr"
import type { CounterName } from "../src/crdt/CounterName.js"
import type { Entry } from "../src/crdt/Entry.js"
import { DataDir } from "../src/storage/DataDir.js"
import * as DataDirFile from "../src/storage/DataDirFile.js"
import { Wal } from "../src/storage/Wal.js"
import * as WalFile from "../src/storage/WalFile.js"
import type { BenchOptions, BenchResult, Figure } from "./BenchResult.js"
import { figure, formatNumber, isMain, main } from "./BenchResult.js"
import { median, parseProcStatus } from "./footprint.js"
import { cleanEnv, cpuSeconds, freePort } from "./Processes.js"

// ---------------------------------------------------------------------------------------
// pure helpers

export const SIZES = { "10k": 10_000, "100k": 100_000, "1m": 1_000_000 } as const
export type SizeLabel = keyof typeof SIZES
export const SIZE_LABELS: ReadonlyArray<SizeLabel> = ["10k", "100k", "1m"]
export type CreateMode = "http" | "seed"

export interface ScaleArgs {
  readonly quick: boolean
  readonly only: ReadonlyArray<SizeLabel>
  /** one way of creating for every size; undefined: http below 1M, seed at 1M */
  readonly create: CreateMode | undefined
}

/** The CLI's flags; `{ error }` names the bad option in one line. */
export const parseArgs = (argv: ReadonlyArray<string>): ScaleArgs | { readonly error: string } => {
  let quick = false
  let only: ReadonlyArray<SizeLabel> = SIZE_LABELS
  let create: CreateMode | undefined = undefined
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === "--quick") quick = true
    else if (arg === "--only") {
      const value = argv[++i]
      const labels = (value ?? "").split(",").map((s) => s.trim().toLowerCase()).filter((s) => s !== "")
      const bad = labels.filter((l) => !(SIZE_LABELS as ReadonlyArray<string>).includes(l))
      if (value === undefined || labels.length === 0 || bad.length > 0) {
        return { error: `--only: a comma-separated list of ${SIZE_LABELS.join(", ")}, not ${JSON.stringify(value ?? "")}` }
      }
      only = SIZE_LABELS.filter((l) => labels.includes(l))
    } else if (arg === "--create") {
      const value = argv[++i]
      if (value !== "http" && value !== "seed") return { error: `--create: http or seed, not ${JSON.stringify(value ?? "")}` }
      create = value
    } else return { error: `unknown option ${JSON.stringify(arg)} (known: --quick, --only, --create)` }
  }
  return { quick, only, create }
}

/** The way a size is created unless `--create` says otherwise. */
export const defaultCreateMode = (size: SizeLabel): CreateMode => (size === "1m" ? "seed" : "http")

/** The i-th counter's name: sequential, distinct, sorted like their numbers. */
export const counterName = (i: number): CounterName => `c${String(i).padStart(7, "0")}` as CounterName

/**
 * A wrk script (one thread) that creates `quota` counters, `counterName(0)` to
 * `counterName(quota - 1)`, one increment each, then only reads `/counter` (a cheap GET)
 * until it is stopped: wrk cannot stop itself after a count, so the bench stops it once the
 * node counts them all.
 */
export const createScript = (quota: number): string =>
  [
    "local sent = 0",
    `local quota = ${Math.floor(quota)}`,
    "local primed = false",
    "request = function()",
    // wrk (4.1) calls request() once before connecting and never sends that request: the
    // first call names no counter, so whether or not it is sent, every name is
    "  if not primed then",
    "    primed = true",
    `    return wrk.format("GET", "/counter")`,
    "  end",
    "  if sent < quota then",
    `    local path = string.format("/counters/c%07d/increment", sent)`,
    "    sent = sent + 1",
    `    return wrk.format("POST", path)`,
    "  end",
    `  return wrk.format("GET", "/counter")`,
    "end",
    ""
  ].join("\n")

/**
 * The sum of every series of the metric `name` in a Prometheus text exposition (any
 * labels); undefined when it has none.
 */
export const sumMetric = (text: string, name: string): number | undefined => {
  let sum: number | undefined = undefined
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue
    const rest = line.slice(name.length)
    if (rest[0] !== " " && rest[0] !== "{") continue
    const value = Number(rest.slice(rest.lastIndexOf(" ") + 1))
    if (Number.isFinite(value)) sum = (sum ?? 0) + value
  }
  return sum
}

/** One RSS read, `atMs` into the wait. */
export interface RssSample {
  readonly atMs: number
  readonly kib: number
}

/**
 * The settled RSS: the median of the samples of the last `windowMs`, when they span at
 * least that long and all lie within `tolerance` of their median; undefined while RSS still
 * moves (or too little was sampled).
 */
export const settledRss = (samples: ReadonlyArray<RssSample>, windowMs: number, tolerance: number): number | undefined => {
  if (samples.length < 2) return undefined
  const last = samples[samples.length - 1]!.atMs
  if (last - samples[0]!.atMs < windowMs) return undefined
  const window = samples.filter((s) => s.atMs >= last - windowMs).map((s) => s.kib)
  const m = median(window)
  return window.every((k) => Math.abs(k - m) <= tolerance * m) ? m : undefined
}

/** CPU used over a wall-clock interval, as a percentage of one core. */
export const cpuPercent = (cpuSeconds: number, wallSeconds: number): number =>
  wallSeconds > 0 ? (100 * cpuSeconds) / wallSeconds : Number.NaN

/** The bytes of one entry as gossip carries it: the msgpack encoding of the tuple. */
export const entryBytes = (entry: Entry): number => pack([...entry]).length

/** `(settled RSS - empty RSS) / counters`, in bytes. */
export const bytesPerCounter = (rssKiB: number, emptyKiB: number, counters: number): number =>
  counters > 0 ? ((rssKiB - emptyKiB) * 1024) / counters : Number.NaN

/** The most writes of the steady load waiting for an answer at once. */
export const MAX_IN_FLIGHT = 200

/** The issue's goals. */
export const GOALS = {
  rssPerCounterBytes: 250,
  nodeRssMB: 400,
  catchUpSeconds: 15,
  restartSeconds: 3,
  idleCpuPercent: 0.5,
  loadCpuPercent: 2,
  gossipToEntryRatio: 5
} as const

/** What one size measured; a field is undefined when its phase did not get that far. */
export interface CaseMeasurement {
  readonly size: SizeLabel
  readonly counters: number
  readonly create: CreateMode
  /** http: counters per second created over HTTP; seed: how long seeding took */
  readonly createRate?: number | undefined
  readonly createSeconds?: number | undefined
  /** seed: A's first start (a replay of the seeded WAL) to serving, seconds */
  readonly firstStartSeconds?: number | undefined
  readonly emptyRssKiB?: number | undefined
  readonly rssKiB?: { readonly a: number; readonly b: number; readonly settled: boolean; readonly waitedSeconds: number } | undefined
  readonly idleCpuPercent?: { readonly a: number; readonly b: number; readonly seconds: number } | undefined
  readonly catchUpSeconds?: number | undefined
  /** node C's spawn to its first answer (serving, still empty) */
  readonly catchUpServingSeconds?: number | undefined
  /** C did not hold every counter within the bound: how many it held then */
  readonly catchUpMissed?: { readonly reached: number; readonly boundSeconds: number } | undefined
  readonly load?: {
    readonly seconds: number
    readonly writes: number
    readonly failed: number
    readonly skipped: number
    readonly cpuPercent: { readonly a: number; readonly b: number; readonly c: number }
    readonly bytesOut: { readonly a: number; readonly b: number; readonly c: number }
    readonly entryBytes: number
  } | undefined
  readonly disk?: { readonly bytes: number; readonly snapshotBytes: number; readonly files: number } | undefined
  readonly restart?: { readonly stopSeconds: number; readonly servingSeconds: number } | undefined
  /** why the case stopped early, if it did */
  readonly failure?: string | undefined
  /** anything worth knowing about how it ran */
  readonly notes: ReadonlyArray<string>
}

const SIZE_NAMES: Record<SizeLabel, string> = { "10k": "10k counters", "100k": "100k counters", "1m": "1M counters" }

const goalNote = (c: CaseMeasurement) => (c.size === "1m" ? "" : " (the issue states it at 1M)")

/** The rows of one size, each figure next to its goal. */
export const caseResults = (c: CaseMeasurement): Array<BenchResult> => {
  const out: Array<BenchResult> = []
  const row = (name: string, figures: ReadonlyArray<Figure>, goal?: { readonly text: string; readonly met: boolean }, notes?: string) =>
    out.push({
      bench: "scale",
      name: `${SIZE_NAMES[c.size]}: ${name}`,
      figures,
      ...(goal === undefined ? {} : { goal: goal.text, met: goal.met }),
      ...(notes === undefined || notes === "" ? {} : { notes })
    })
  const common = [...c.notes, ...(c.failure === undefined ? [] : [`stopped early: ${c.failure}`])].join("; ")

  if (c.create === "http") {
    if (c.createRate !== undefined) {
      row("create over HTTP on node A", [
        figure("create rate", c.createRate, "counters/s", "higher"),
        ...(c.createSeconds === undefined ? [] : [figure("time", c.createSeconds, "s", "lower")])
      ], undefined, "wrk -t1 -c64, POST /counters/NAME/increment, sequential distinct names, node B replicating")
    }
  } else if (c.createSeconds !== undefined) {
    row("seeded into node A's data directory", [
      figure("seeding", c.createSeconds, "s", "lower"),
      ...(c.firstStartSeconds === undefined ? [] : [figure("first start to serving", c.firstStartSeconds, "s", "lower")])
    ], undefined, "through the product's WAL (DataDirFile + WalFile) as A's own entries, before A starts: the state N HTTP creates leave")
  }

  if (c.rssKiB !== undefined && c.emptyRssKiB !== undefined) {
    const perCounter = bytesPerCounter(c.rssKiB.a, c.emptyRssKiB, c.counters)
    const settle = c.rssKiB.settled
      ? `settled after ${formatNumber(c.rssKiB.waitedSeconds)} s`
      : `still moving after ${formatNumber(c.rssKiB.waitedSeconds)} s (the last read)`
    row("RSS per counter (node A)", [
      figure("RSS per counter", perCounter, "B", "lower"),
      figure("node A RSS", c.rssKiB.a / 1024, "MB", "lower"),
      figure("node B RSS", c.rssKiB.b / 1024, "MB", "lower"),
      figure("empty node RSS", c.emptyRssKiB / 1024, "MB", "lower")
    ], { text: `<= ${GOALS.rssPerCounterBytes} B per counter${goalNote(c)}`, met: perCounter <= GOALS.rssPerCounterBytes },
    `(A's RSS - an empty node's) / counters; one replica entry per counter; ${settle}`)
    const nodeMB = Math.max(c.rssKiB.a, c.rssKiB.b) / 1024
    row("node RSS", [figure("largest node RSS", nodeMB, "MB", "lower")], {
      text: `<= ${GOALS.nodeRssMB} MB${goalNote(c)}`,
      met: nodeMB <= GOALS.nodeRssMB
    }, settle)
  }

  if (c.idleCpuPercent !== undefined) {
    const worst = Math.max(c.idleCpuPercent.a, c.idleCpuPercent.b)
    row("idle CPU per node", [
      figure("worst node", worst, "% of a core", "lower"),
      figure("node A", c.idleCpuPercent.a, "% of a core", "lower"),
      figure("node B", c.idleCpuPercent.b, "% of a core", "lower")
    ], { text: `<= ${GOALS.idleCpuPercent} % of a core`, met: worst <= GOALS.idleCpuPercent },
    `user + system time from /proc/PID/stat over ${formatNumber(c.idleCpuPercent.seconds)} s, no requests`)
  }

  if (c.catchUpSeconds !== undefined || c.catchUpMissed !== undefined) {
    const s = c.catchUpSeconds ?? Number.POSITIVE_INFINITY
    row("catch-up of a fresh node", [
      figure("spawn to all counters", s, "s", "lower"),
      ...(c.catchUpMissed === undefined
        ? []
        : [figure(`counters held ${formatNumber(c.catchUpMissed.boundSeconds)} s after spawn`, c.catchUpMissed.reached, "counters", "higher")]),
      ...(c.catchUpServingSeconds === undefined ? [] : [figure("of which spawn to serving", c.catchUpServingSeconds, "s", "lower")])
    ], {
      text: `<= ${GOALS.catchUpSeconds} s${goalNote(c)}`,
      met: s <= GOALS.catchUpSeconds
    }, "node C started empty with peers A and B; until its /health counts every counter (each holds one entry)")
  }

  if (c.load !== undefined) {
    const l = c.load
    const worstCpu = Math.max(l.cpuPercent.a, l.cpuPercent.b, l.cpuPercent.c)
    const loadNote = `${l.writes} increments of random counters in ${formatNumber(l.seconds)} s, round-robin on A, B, C` +
      (l.failed > 0 ? `, ${l.failed} failed` : "") +
      (l.skipped > 0 ? `, ${l.skipped} not sent (${MAX_IN_FLIGHT} writes were still waiting for an answer)` : "")
    row("100 writes/s: CPU per node", [
      figure("worst node", worstCpu, "% of a core", "lower"),
      figure("node A", l.cpuPercent.a, "% of a core", "lower"),
      figure("node B", l.cpuPercent.b, "% of a core", "lower"),
      figure("node C", l.cpuPercent.c, "% of a core", "lower")
    ], { text: `<= ${GOALS.loadCpuPercent} % of a core${goalNote(c)}`, met: worstCpu <= GOALS.loadCpuPercent }, loadNote)
    const ratio = (bytes: number) => (l.entryBytes > 0 ? bytes / l.entryBytes : Number.NaN)
    const worstRatio = Math.max(ratio(l.bytesOut.a), ratio(l.bytesOut.b), ratio(l.bytesOut.c))
    const unread = (["a", "b", "c"] as const).filter((n) => !Number.isFinite(l.bytesOut[n])).map((n) => n.toUpperCase())
    row("100 writes/s: gossip bytes per node", [
      figure("worst node / entry bytes", worstRatio, "x", "lower"),
      figure("node A sent", l.bytesOut.a / l.seconds, "B/s", "lower"),
      figure("node B sent", l.bytesOut.b / l.seconds, "B/s", "lower"),
      figure("node C sent", l.bytesOut.c / l.seconds, "B/s", "lower"),
      figure("entries written", l.entryBytes / l.seconds, "B/s")
    ].filter((f) => Number.isFinite(f.value)), {
      text: `<= ${GOALS.gossipToEntryRatio}x the written entries' bytes${goalNote(c)}`,
      met: worstRatio <= GOALS.gossipToEntryRatio
    }, `${loadNote}; gossip bytes sent per node (dcounter_bytes_out_total) / msgpack bytes of every entry written in the cluster` +
      (unread.length === 0 ? "" : `; not measured: /metrics of node ${unread.join(", ")} did not answer before or after the load`))
  }

  if (c.disk !== undefined) {
    row("data directory on disk (node A)", [
      figure("on disk", c.disk.bytes / 2 ** 20, "MB", "lower"),
      figure("per counter", c.disk.bytes / c.counters, "B", "lower"),
      figure("snapshots", c.disk.snapshotBytes / 2 ** 20, "MB", "lower"),
      figure("files", c.disk.files, "files")
    ], undefined, "WAL segments (preallocated ahead of the last record) and snapshots, allocated blocks")
  }

  if (c.restart !== undefined || c.failure?.startsWith("restart") === true) {
    const s = c.restart?.servingSeconds ?? Number.POSITIVE_INFINITY
    row("restart to serving (node A)", [
      figure("spawn to serving", s, "s", "lower"),
      ...(c.restart === undefined ? [] : [figure("SIGTERM to exit", c.restart.stopSeconds, "s", "lower")])
    ], { text: `<= ${GOALS.restartSeconds} s${goalNote(c)}`, met: s <= GOALS.restartSeconds },
    "SIGTERM, then a new process on the same data directory until /readyz (or /health) answers 200 with every counter")
  }

  if (out.length === 0) row("not measured", [], undefined, common)
  else if (common !== "") {
    const last = out[out.length - 1]!
    out[out.length - 1] = { ...last, notes: last.notes === undefined ? common : `${last.notes}; ${common}` }
  }
  return out
}

// ---------------------------------------------------------------------------------------
// processes and HTTP

const here = Path.dirname(fileURLToPath(import.meta.url))
/** The repository root: this file is dist/bench/scale.js (or bench/scale.ts under a loader). */
const repoRoot = Path.basename(Path.dirname(here)) === "dist" ? Path.resolve(here, "../..") : Path.resolve(here, "..")

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Every process this module started and has not seen exit: killed if the bench exits early. */
const live = new Set<ChildProcess>()
const killLive = () => {
  for (const child of live) child.kill("SIGKILL")
}


interface NodeSpec {
  readonly label: string
  readonly gossip: number
  readonly http: number
  readonly dataDir: string
  readonly peers: ReadonlyArray<number>
}

interface NodeProc {
  readonly spec: NodeSpec
  readonly url: string
  readonly child: ChildProcess
  readonly spawnedAt: number
  readonly exited: Promise<void>
  readonly hasExited: () => boolean
  readonly tail: () => string
}

const startNode = (spec: NodeSpec): NodeProc => {
  let output = ""
  const args = [
    Path.join(repoRoot, "bin", "dcounter.js"),
    "--role", "node",
    "--addr", `127.0.0.1:${spec.gossip}`,
    "--http-addr", `127.0.0.1:${spec.http}`,
    "--data-dir", spec.dataDir,
    ...(spec.peers.length === 0 ? [] : ["--peers", spec.peers.map((p) => `127.0.0.1:${p}`).join(",")]),
    "--log-level", "warn"
  ]
  const spawnedAt = performance.now()
  const child = spawn(process.execPath, args, { cwd: repoRoot, env: cleanEnv(), stdio: ["ignore", "ignore", "pipe"] })
  live.add(child)
  child.stderr!.on("data", (chunk: Buffer) => {
    output = (output + chunk.toString("utf8")).slice(-2_000)
  })
  let done = false
  const exited = new Promise<void>((resolve) => {
    const end = () => {
      done = true
      live.delete(child)
      resolve()
    }
    child.once("exit", end)
    child.once("error", (e) => {
      output += `\nspawn error: ${e.message}`
      end()
    })
  })
  return {
    spec,
    url: `http://127.0.0.1:${spec.http}`,
    child,
    spawnedAt,
    exited,
    hasExited: () => done,
    tail: () => output.trim().split("\n").slice(-3).join(" / ")
  }
}

/** SIGTERM, SIGKILL after `graceMs`; resolves with the seconds it took to exit. */
const stopNode = async (p: NodeProc, graceMs = 10_000): Promise<number> => {
  const t0 = performance.now()
  if (p.hasExited()) return 0
  p.child.kill("SIGTERM")
  const timer = setTimeout(() => p.child.kill("SIGKILL"), graceMs)
  await p.exited
  clearTimeout(timer)
  return (performance.now() - t0) / 1000
}

const agent = new Http.Agent({ keepAlive: true, maxSockets: 64 })

interface Reply {
  readonly status: number
  readonly text: string
}

/** One request; undefined when nothing answered in time (refused, reset, timed out). */
const request = (method: "GET" | "POST", url: string, timeoutMs: number): Promise<Reply | undefined> =>
  new Promise((resolve) => {
    const req = Http.request(url, { method, agent, timeout: timeoutMs }, (res) => {
      let text = ""
      res.setEncoding("utf8")
      res.on("data", (d: string) => (text += d))
      res.once("end", () => resolve({ status: res.statusCode ?? 0, text }))
      res.once("error", () => resolve(undefined))
    })
    req.once("timeout", () => req.destroy())
    req.once("error", () => resolve(undefined))
    req.end()
  })

/** The node's counter count from /health; undefined when it does not answer 200. */
const countOf = async (p: NodeProc): Promise<number | undefined> => {
  const r = await request("GET", `${p.url}/health`, 5_000)
  if (r?.status !== 200) return undefined
  try {
    const body = JSON.parse(r.text) as { counters?: unknown; nodeId?: unknown }
    return typeof body.counters === "number" ? body.counters : undefined
  } catch {
    return undefined
  }
}

/** The node's replica id from /health (three tries: a loaded machine can be slow to answer). */
const nodeIdOf = async (p: NodeProc): Promise<string> => {
  for (let attempt = 0; attempt < 3; attempt++) {
    const r = await request("GET", `${p.url}/health`, 10_000)
    try {
      const id = r?.status === 200 ? (JSON.parse(r.text) as { nodeId?: unknown }).nodeId : undefined
      if (typeof id === "string") return id
    } catch {
      // not JSON: try again
    }
  }
  throw new Error(`${p.spec.label}: /health gave no nodeId in three tries: ${p.tail()}`)
}

/**
 * Polls until the node serves: /readyz 200 (or, on a build without /readyz, /health 200)
 * and, when `counters` is given, /health counts at least that many. Resolves with the
 * seconds since spawn; undefined past `timeoutMs` (or when the process exits).
 */
const awaitServing = async (p: NodeProc, timeoutMs: number, counters?: number): Promise<number | undefined> => {
  const deadline = p.spawnedAt + timeoutMs
  let probe = "/readyz"
  while (performance.now() < deadline && !p.hasExited()) {
    const r = await request("GET", `${p.url}${probe}`, 5_000)
    if (r?.status === 404 && probe === "/readyz") {
      probe = "/health"
      continue
    }
    if (r?.status === 200) {
      if (counters === undefined) return (performance.now() - p.spawnedAt) / 1000
      const n = await countOf(p)
      if (n !== undefined && n >= counters) return (performance.now() - p.spawnedAt) / 1000
    }
    await sleep(25)
  }
  return undefined
}

/** Polls `p`'s count every `everyMs` until it reaches `n`; seconds since `from`, or undefined past the deadline. */
const awaitCount = async (p: NodeProc, n: number, from: number, timeoutMs: number, everyMs = 100): Promise<number | undefined> => {
  const deadline = performance.now() + timeoutMs
  while (performance.now() < deadline && !p.hasExited()) {
    const c = await countOf(p)
    if (c !== undefined && c >= n) return (performance.now() - from) / 1000
    await sleep(everyMs)
  }
  return undefined
}

const rssKiB = (p: NodeProc): number | undefined => {
  try {
    return parseProcStatus(Fs.readFileSync(`/proc/${p.child.pid}/status`, "utf8"))?.rssKiB
  } catch {
    return undefined
  }
}

/** The node's /metrics text (two tries: a busy node can be slow); "" when it did not answer. */
const metricsOf = async (p: NodeProc): Promise<string> => {
  for (let attempt = 0; attempt < 2; attempt++) {
    const r = await request("GET", `${p.url}/metrics`, 15_000)
    if (r?.status === 200) return r.text
  }
  return ""
}

/** Allocated bytes of every file under `dir`, the snapshots among them, and the file count. */
const diskUsage = (dir: string): { bytes: number; snapshotBytes: number; files: number } => {
  let bytes = 0
  let snapshotBytes = 0
  let files = 0
  const walk = (d: string): void => {
    for (const e of Fs.readdirSync(d, { withFileTypes: true })) {
      const p = Path.join(d, e.name)
      if (e.isDirectory()) walk(p)
      else if (e.isFile()) {
        const st = Fs.statSync(p)
        const allocated = st.blocks * 512
        bytes += allocated
        files++
        if (e.name.endsWith(".snap")) snapshotBytes += allocated
      }
    }
  }
  walk(dir)
  return { bytes, snapshotBytes, files }
}

// ---------------------------------------------------------------------------------------
// phases

/** Timings of one run; quick shortens the windows, never the number of counters. */
interface Timing {
  readonly idleSeconds: number
  readonly loadSeconds: number
  readonly settleMaxSeconds: number
  readonly settleWindowMs: number
}

const timing = (quick: boolean): Timing => ({
  idleSeconds: quick ? 3 : 6,
  loadSeconds: quick ? 5 : 10,
  settleMaxSeconds: quick ? 10 : 20,
  settleWindowMs: 3_000
})

/** The bound of each waiting phase, by size: generous, so a loaded machine still finishes. */
const bounds = (counters: number) => ({
  startMs: counters >= 1_000_000 ? 120_000 : 60_000,
  createMs: counters >= 1_000_000 ? 150_000 : counters >= 100_000 ? 60_000 : 30_000,
  replicateMs: counters >= 1_000_000 ? 90_000 : 30_000,
  catchUpMs: counters >= 1_000_000 ? 60_000 : 30_000
})

/** An empty node's RSS: the median of its reads 2 to 4 s after it serves. */
const measureEmptyRss = async (dir: string): Promise<number> => {
  const [gossip, http] = [await freePort(), await freePort()]
  const p = startNode({ label: "empty", gossip, http, dataDir: Path.join(dir, "empty"), peers: [] })
  try {
    if ((await awaitServing(p, 60_000)) === undefined) throw new Error(`an empty node did not serve within 60 s: ${p.tail()}`)
    await sleep(2_000)
    const reads: Array<number> = []
    for (let i = 0; i < 5; i++) {
      const k = rssKiB(p)
      if (k !== undefined) reads.push(k)
      await sleep(500)
    }
    if (reads.length === 0) throw new Error("cannot read the empty node's RSS from /proc")
    return median(reads)
  } finally {
    await stopNode(p)
  }
}

/**
 * Writes the entries `[counterName(i), replica, 1, 0]` for `i < counters` into a data
 * directory (new, or one whose node is stopped) through the WAL, as the data directory's
 * own replica: what creating those counters on its node over HTTP writes. Idempotent: an
 * entry its node already holds changes nothing (merge is the maximum).
 */
const seed = (dataDir: string, counters: number): Promise<string> =>
  Effect.gen(function*() {
    const dir = yield* DataDir
    const wal = yield* Wal
    const CHUNK = 50_000
    for (let start = 0; start < counters; start += CHUNK) {
      const entries: Array<Entry> = []
      for (let i = start; i < Math.min(counters, start + CHUNK); i++) entries.push([counterName(i), dir.replicaId, 1, 0])
      yield* wal.append(entries)
    }
    return dir.replicaId as string
  }).pipe(
    Effect.provide(WalFile.layer().pipe(Layer.provideMerge(DataDirFile.layer(dataDir)))),
    Effect.scoped,
    Logger.withMinimumLogLevel(LogLevel.Warning),
    Effect.runPromise
  )

/**
 * Creates the counters over HTTP with wrk, until A counts them all or the bound passes:
 * how many A holds then and how long it took.
 */
const createOverHttp = async (
  a: NodeProc,
  counters: number,
  scratch: string,
  boundMs: number
): Promise<{ created: number; seconds: number; complete: boolean; wrkError: string }> => {
  const script = Path.join(scratch, "create.lua")
  Fs.writeFileSync(script, createScript(counters))
  const t0 = performance.now()
  const wrk = spawn("wrk", ["-t1", "-c64", `-d${Math.ceil(boundMs / 1000)}s`, "--timeout", "10s", "-s", script, a.url], {
    stdio: ["ignore", "ignore", "pipe"]
  })
  live.add(wrk)
  let err = ""
  wrk.stderr!.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-500)))
  const wrkExited = new Promise<void>((resolve) => {
    wrk.once("exit", () => resolve())
    wrk.once("error", (e) => {
      err += e.message
      resolve()
    })
  })
  wrk.once("exit", () => live.delete(wrk))
  try {
    const seconds = await awaitCount(a, counters, t0, boundMs, 100)
    if (seconds !== undefined) return { created: counters, seconds, complete: true, wrkError: err.trim() }
    const created = (await countOf(a)) ?? 0
    return { created, seconds: (performance.now() - t0) / 1000, complete: false, wrkError: err.trim() }
  } finally {
    wrk.kill("SIGINT")
    const timer = setTimeout(() => wrk.kill("SIGKILL"), 5_000)
    await wrkExited
    clearTimeout(timer)
  }
}

/** Samples A's and B's RSS every 500 ms until both settle or the bound passes. */
const settle = async (a: NodeProc, b: NodeProc, t: Timing) => {
  const t0 = performance.now()
  const samples = { a: [] as Array<RssSample>, b: [] as Array<RssSample> }
  for (;;) {
    const atMs = performance.now() - t0
    const ka = rssKiB(a)
    const kb = rssKiB(b)
    if (ka !== undefined) samples.a.push({ atMs, kib: ka })
    if (kb !== undefined) samples.b.push({ atMs, kib: kb })
    const sa = settledRss(samples.a, t.settleWindowMs, 0.02)
    const sb = settledRss(samples.b, t.settleWindowMs, 0.02)
    if (sa !== undefined && sb !== undefined) return { a: sa, b: sb, settled: true, waitedSeconds: atMs / 1000 }
    if (atMs >= t.settleMaxSeconds * 1000) {
      return {
        a: samples.a[samples.a.length - 1]?.kib ?? Number.NaN,
        b: samples.b[samples.b.length - 1]?.kib ?? Number.NaN,
        settled: false,
        waitedSeconds: atMs / 1000
      }
    }
    await sleep(500)
  }
}

/** CPU of each node over `seconds` with nothing asked of them. */
const idleCpu = async (nodes: ReadonlyArray<NodeProc>, seconds: number): Promise<Array<number>> => {
  const before = nodes.map((p) => cpuSeconds(p.child.pid) ?? Number.NaN)
  const t0 = performance.now()
  await sleep(seconds * 1000)
  const wall = (performance.now() - t0) / 1000
  return nodes.map((p, i) => cpuPercent((cpuSeconds(p.child.pid) ?? Number.NaN) - before[i]!, wall))
}

/**
 * 100 increments per second of random counters, round-robin over `nodes`, for `seconds`;
 * at most `MAX_IN_FLIGHT` waiting for an answer (a write that would pass that is not sent,
 * and counted as skipped).
 */
const steadyLoad = async (
  nodes: ReadonlyArray<{ readonly proc: NodeProc; readonly replicaId: string }>,
  counters: number,
  /** a replica's own total of a counter before the load (A created each counter with 1) */
  initialTotal: (replicaId: string) => number,
  seconds: number
) => {
  const ownTotals = new Map<string, number>()
  const total = Math.round(100 * seconds)
  const metrics0 = await Promise.all(nodes.map((n) => metricsOf(n.proc)))
  const cpu0 = nodes.map((n) => cpuSeconds(n.proc.child.pid) ?? Number.NaN)
  const t0 = performance.now()
  let inFlight = 0
  let failed = 0
  let skipped = 0
  let entryBytesWritten = 0
  const pending: Array<Promise<void>> = []
  for (let k = 0; k < total; k++) {
    const due = t0 + k * 10
    const wait = due - performance.now()
    if (wait > 0) await sleep(wait)
    const node = nodes[k % nodes.length]!
    const name = counterName(Math.floor(Math.random() * counters))
    if (inFlight >= MAX_IN_FLIGHT) {
      skipped++
      continue
    }
    inFlight++
    pending.push(
      request("POST", `${node.proc.url}/counters/${name}/increment`, 10_000).then((r) => {
        inFlight--
        if (r?.status !== 200) {
          failed++
          return
        }
        const key = `${node.replicaId}\u0000${name}`
        const inc = (ownTotals.get(key) ?? initialTotal(node.replicaId)) + 1
        ownTotals.set(key, inc)
        entryBytesWritten += entryBytes([name, node.replicaId as Entry[1], inc, 0])
      })
    )
  }
  await Promise.all(pending)
  const wall = (performance.now() - t0) / 1000
  const cpu1 = nodes.map((n) => cpuSeconds(n.proc.child.pid) ?? Number.NaN)
  const metrics1 = await Promise.all(nodes.map((n) => metricsOf(n.proc)))
  const sent = (i: number) =>
    (sumMetric(metrics1[i]!, "dcounter_bytes_out_total") ?? Number.NaN) -
    (sumMetric(metrics0[i]!, "dcounter_bytes_out_total") ?? Number.NaN)
  return {
    seconds: wall,
    writes: total - failed - skipped,
    failed,
    skipped,
    cpuPercent: nodes.map((_, i) => cpuPercent(cpu1[i]! - cpu0[i]!, wall)),
    bytesOut: nodes.map((_, i) => sent(i)),
    entryBytes: entryBytesWritten
  }
}

// ---------------------------------------------------------------------------------------
// one size

const runCase = async (
  size: SizeLabel,
  create: CreateMode,
  emptyRssKiB: number,
  t: Timing,
  log: (line: string) => void
): Promise<CaseMeasurement> => {
  const counters = SIZES[size]
  const b = bounds(counters)
  const notes: Array<string> = []
  let m: CaseMeasurement = { size, counters, create, emptyRssKiB, notes }
  const scratch = Fs.mkdtempSync(Path.join(Os.tmpdir(), `dcounter-bench-scale-${size}-`))
  const procs: Array<NodeProc> = []
  const started = (p: NodeProc) => {
    procs.push(p)
    return p
  }
  const step = (line: string) => log(`scale ${size}: ${line}`)
  try {
    const [ga, ha, gb, hb, gc, hc] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort(), freePort()])
    const specA: NodeSpec = { label: "A", gossip: ga, http: ha, dataDir: Path.join(scratch, "a"), peers: [gb] }
    const specB: NodeSpec = { label: "B", gossip: gb, http: hb, dataDir: Path.join(scratch, "b"), peers: [ga] }
    const specC: NodeSpec = { label: "C", gossip: gc, http: hc, dataDir: Path.join(scratch, "c"), peers: [ga, gb] }

    if (create === "seed") {
      step(`seeding ${counters} counters into A's data directory`)
      const s0 = performance.now()
      await seed(specA.dataDir, counters)
      m = { ...m, createSeconds: (performance.now() - s0) / 1000 }
    }
    // A alone first: with seeded counters its start is a replay, measured like the restart
    let a = started(startNode(specA))
    const firstStart = await awaitServing(a, b.startMs, create === "seed" ? counters : undefined)
    if (firstStart === undefined) throw new Error(`start: node A did not serve within ${b.startMs / 1000} s: ${a.tail()}`)
    if (create === "seed") m = { ...m, firstStartSeconds: firstStart }
    const nodeB = started(startNode(specB))
    if ((await awaitServing(nodeB, b.startMs)) === undefined) {
      throw new Error(`start: node B did not serve within ${b.startMs / 1000} s: ${nodeB.tail()}`)
    }
    const idA = await nodeIdOf(a)
    const idB = await nodeIdOf(nodeB)

    if (create === "http") {
      step(`creating ${counters} counters on A over HTTP (wrk, 64 connections, at most ${b.createMs / 1000} s)`)
      const r = await createOverHttp(a, counters, scratch, b.createMs)
      m = { ...m, createRate: r.created / r.seconds, createSeconds: r.seconds }
      step(`created ${r.created} at ${formatNumber(r.created / r.seconds)} counters/s`)
      if (!r.complete) {
        // the machine is too slow for the bound: keep the size, seed the rest while A is stopped
        await stopNode(a)
        step(`seeding the other ${counters - r.created} counters into A's data directory`)
        await seed(specA.dataDir, counters)
        notes.push(
          `only ${r.created} counters were created over HTTP within ${b.createMs / 1000} s` +
            `${r.wrkError === "" ? "" : ` (wrk: ${r.wrkError})`}; the other ${counters - r.created} were seeded into A's WAL`
        )
        a = started(startNode(specA))
        if ((await awaitServing(a, b.startMs, counters)) === undefined) {
          throw new Error(`start: node A did not serve its ${counters} counters within ${b.startMs / 1000} s: ${a.tail()}`)
        }
      }
    }
    const replicated = await awaitCount(nodeB, counters, performance.now(), b.replicateMs, 250)
    if (replicated === undefined) {
      notes.push(`B held ${(await countOf(nodeB)) ?? "?"} of ${counters} counters ${b.replicateMs / 1000} s after A had them all`)
    }

    step("waiting for RSS to settle")
    const rss = await settle(a, nodeB, t)
    m = { ...m, rssKiB: rss }
    step(
      `RSS A ${formatNumber(rss.a / 1024)} MB, B ${formatNumber(rss.b / 1024)} MB ` +
        `(${formatNumber(bytesPerCounter(rss.a, emptyRssKiB, counters))} B per counter)`
    )

    const [cpuA, cpuB] = await idleCpu([a, nodeB], t.idleSeconds)
    m = { ...m, idleCpuPercent: { a: cpuA!, b: cpuB!, seconds: t.idleSeconds } }
    step(`idle CPU A ${formatNumber(cpuA!)} %, B ${formatNumber(cpuB!)} %`)

    step("starting node C empty; waiting for it to catch up")
    const c = started(startNode(specC))
    const cServing = await awaitServing(c, b.startMs)
    if (cServing === undefined) throw new Error(`start: node C did not serve within ${b.startMs / 1000} s: ${c.tail()}`)
    m = { ...m, catchUpServingSeconds: cServing }
    // bounded from when C serves: a loaded machine can take long just to start a process
    const caughtUp = await awaitCount(c, counters, c.spawnedAt, b.catchUpMs, 100)
    const idC = await nodeIdOf(c)
    if (caughtUp === undefined) {
      // missed: say how far it got, and go on (the later phases do not need C complete)
      const reached = (await countOf(c)) ?? 0
      m = { ...m, catchUpMissed: { reached, boundSeconds: cServing + b.catchUpMs / 1000 } }
      notes.push(`node C held ${reached} of ${counters} counters ${formatNumber(cServing + b.catchUpMs / 1000)} s after its spawn` +
        (c.tail() === "" ? "" : ` (its last log lines: ${c.tail()})`))
      step(`C held ${reached} of ${counters} counters ${formatNumber(cServing + b.catchUpMs / 1000)} s after its spawn`)
    } else {
      m = { ...m, catchUpSeconds: caughtUp }
      step(`C caught up in ${formatNumber(caughtUp)} s`)
    }

    step(`${t.loadSeconds} s of 100 writes/s on random counters`)
    const ids = [idA, idB, idC]
    const load = await steadyLoad(
      [{ proc: a, replicaId: ids[0]! }, { proc: nodeB, replicaId: ids[1]! }, { proc: c, replicaId: ids[2]! }],
      counters,
      (replicaId) => (replicaId === idA ? 1 : 0),
      t.loadSeconds
    )
    m = {
      ...m,
      load: {
        seconds: load.seconds,
        writes: load.writes,
        failed: load.failed,
        skipped: load.skipped,
        cpuPercent: { a: load.cpuPercent[0]!, b: load.cpuPercent[1]!, c: load.cpuPercent[2]! },
        bytesOut: { a: load.bytesOut[0]!, b: load.bytesOut[1]!, c: load.bytesOut[2]! },
        entryBytes: load.entryBytes
      }
    }
    step(`CPU at 100 writes/s: ${load.cpuPercent.map((x) => formatNumber(x)).join(" / ")} %`)

    step("restarting A")
    const stopSeconds = await stopNode(a)
    m = { ...m, disk: diskUsage(specA.dataDir) }
    a = started(startNode(specA))
    const serving = await awaitServing(a, b.startMs, counters)
    if (serving === undefined) throw new Error(`restart: node A did not serve its counters within ${b.startMs / 1000} s: ${a.tail()}`)
    m = { ...m, restart: { stopSeconds, servingSeconds: serving } }
    step(`A serving again ${formatNumber(serving)} s after spawn`)
    return m
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e)
    step(`stopped: ${message}`)
    return { ...m, failure: message }
  } finally {
    await Promise.all(procs.map((p) => stopNode(p)))
    Fs.rmSync(scratch, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------------------------------
// the benchmark

export interface ScaleOptions extends BenchOptions {
  readonly only?: ReadonlyArray<SizeLabel>
  readonly create?: CreateMode
}

export const run = async (options: ScaleOptions = {}): Promise<ReadonlyArray<BenchResult>> => {
  const log = options.log ?? ((line: string) => process.stderr.write(line + "\n"))
  if (process.platform !== "linux") throw new Error("bench/scale reads /proc: Linux only")
  if (!Fs.existsSync(Path.join(repoRoot, "bin", "dcounter.js")) || !Fs.existsSync(Path.join(repoRoot, "dist", "src", "main.js"))) {
    throw new Error(`${repoRoot}: the program is not built (npm run build)`)
  }
  const t = timing(options.quick === true)
  const sizes = options.only ?? SIZE_LABELS
  process.once("exit", killLive)
  const scratch = Fs.mkdtempSync(Path.join(Os.tmpdir(), "dcounter-bench-scale-"))
  const started = performance.now()
  try {
    log("scale: an empty node's RSS")
    const emptyRssKiB = await measureEmptyRss(scratch)
    log(`scale: empty node ${formatNumber(emptyRssKiB / 1024)} MB`)
    const out: Array<BenchResult> = []
    for (const size of sizes) {
      const c = await runCase(size, options.create ?? defaultCreateMode(size), emptyRssKiB, t, log)
      out.push(...caseResults(c))
    }
    return out
  } finally {
    killLive()
    process.removeListener("exit", killLive)
    Fs.rmSync(scratch, { recursive: true, force: true })
    agent.destroy()
    log(`scale: done in ${formatNumber((performance.now() - started) / 1000)} s`)
  }
}

if (isMain(import.meta.url)) {
  const args = parseArgs(process.argv.slice(2))
  if ("error" in args) {
    process.stderr.write(`${args.error}\n`)
    process.exit(2)
  }
  void main((options) => run({ ...options, only: args.only, ...(args.create === undefined ? {} : { create: args.create }) }))
}
