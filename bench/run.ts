/**
 * The benchmark suite: runs every bench module that exists, each in its own child process
 * (a crash, a leaked server or a hung socket cannot spoil the next one, and a bench that
 * overruns its time limit is killed), prints progress and one markdown table, and writes
 * `bench/results/latest.json` (figures + machine) and `bench/results/latest.md`.
 *
 *     npm run bench                                   # build, then every bench
 *     node dist/bench/run.js [--quick] [--only codec,wal] [--timeout 120] [--suite-timeout 1500] [--readme]
 *
 * Bounds: each bench gets at most 120 s of wall time (`--timeout`; the cluster and scale benches
 * more, `TIMEOUT_FACTOR`) and the whole suite at
 * most 1500 s (`--suite-timeout`; a bench that starts late gets what is left). A bench that
 * overruns is killed with every process it started (it runs in a process group of its own)
 * and reported as not measured. Each bench's wall time is printed and recorded
 * (`benchSeconds` in latest.json, a line under the table in latest.md).
 *
 * `--readme` also rewrites the table in docs/performance.md (where it moved from README.md) between `<!-- bench:start -->` and
 * `<!-- bench:end -->` (the same as `node dist/scripts/bench-table.js` afterwards).
 *
 * Modules come from a fixed list (below) and are run in that order; one whose compiled
 * file is missing is skipped with a note. Each exports `run(options?)` returning
 * `BenchResult[]` (see BenchResult.ts); a module returning a plain object of numbers is
 * adapted, with a note saying so.
 */
import { fork } from "node:child_process"
import { existsSync, mkdirSync, writeFileSync } from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { updateReadme } from "../scripts/bench-table.js"
import type { BenchReport, BenchResult, Figure, Machine } from "./BenchResult.js"
import { formatNumber, isBenchResult, isMain, markdownTable } from "./BenchResult.js"

/** Every bench module, in the order they run. */
export const MODULES: ReadonlyArray<string> = [
  "codec",
  "transport",
  "wal",
  "http",
  "cluster",
  "resp",
  "convergence",
  "gossip",
  "footprint",
  "counterMap",
  "scale"
]

const here = path.dirname(fileURLToPath(import.meta.url))
/** The repository root: this file is dist/bench/run.js (or bench/run.ts under a loader). */
export const repoRoot = path.basename(path.dirname(here)) === "dist" ? path.resolve(here, "../..") : path.resolve(here, "..")
const resultsDir = path.join(repoRoot, "bench", "results")

const log = (line: string) => process.stderr.write(line + "\n")

export const machine = (): Machine => {
  const cpus = os.cpus()
  return {
    cores: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? "unknown",
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: os.platform(),
    arch: os.arch(),
    loadAverage: os.loadavg().map((x) => Math.round(x * 100) / 100)
  }
}

// ---------------------------------------------------------------------------------------
// adapting what a module returned

/** A unit guessed from a figure's key, for modules that return plain numbers. */
const unitOf = (key: string): string => {
  const k = key.toLowerCase()
  if (/(persec|persecond|_s$|ps$|rps$|throughput)/.test(k)) return "/s"
  if (/(ms|millis)$/.test(k)) return "ms"
  if (/(seconds|secs|sec)$/.test(k)) return "s"
  if (/(mb|megabytes)$/.test(k)) return "MB"
  if (/(bytes)$/.test(k)) return "B"
  if (/ratio$/.test(k)) return "x"
  return ""
}

const figuresOfPlain = (o: Record<string, unknown>, prefix = ""): Array<Figure> => {
  const out: Array<Figure> = []
  for (const [k, v] of Object.entries(o)) {
    if (typeof v === "number" && Number.isFinite(v)) out.push({ name: prefix + k, value: v, unit: unitOf(k) })
    else if (typeof v === "object" && v !== null && !Array.isArray(v)) {
      out.push(...figuresOfPlain(v as Record<string, unknown>, `${prefix}${k}.`))
    }
  }
  return out
}

/**
 * What a module returned, as BenchResults: BenchResult[] as they are; a single
 * BenchResult wrapped; anything else (a plain object of figures, or a list of them)
 * flattened into figures, with a note.
 */
export const normalize = (bench: string, value: unknown): Array<BenchResult> => {
  if (isBenchResult(value)) return [value]
  if (Array.isArray(value)) {
    return value.flatMap((v, i) =>
      isBenchResult(v)
        ? [v]
        : typeof v === "object" && v !== null
          ? normalizePlain(bench, v as Record<string, unknown>, `#${i + 1}`)
          : []
    )
  }
  if (typeof value === "object" && value !== null) return normalizePlain(bench, value as Record<string, unknown>, "")
  return []
}

const normalizePlain = (bench: string, o: Record<string, unknown>, fallback: string): Array<BenchResult> => {
  const name = typeof o["name"] === "string" ? o["name"] : typeof o["label"] === "string" ? o["label"] : fallback || bench
  const figures = figuresOfPlain(o)
  if (figures.length === 0) return []
  const ratio = typeof o["ratio"] === "number" ? o["ratio"] : undefined
  return [
    {
      bench,
      name,
      figures: figures.filter((f) => f.name !== "ratio"),
      ...(ratio === undefined ? {} : { ratio }),
      notes: "adapted from plain figures (units guessed from their names)"
    }
  ]
}

// ---------------------------------------------------------------------------------------
// running one module in a child process

interface ChildReply {
  readonly ok: boolean
  readonly value?: unknown
  readonly error?: string
}

/** In the child: import the module, run it, send what it returned. */
const child = async (name: string, quick: boolean): Promise<void> => {
  const reply = (r: ChildReply) =>
    new Promise<void>((resolve) => {
      if (process.send === undefined) {
        process.stdout.write(JSON.stringify(r) + "\n")
        resolve()
      } else process.send(r, () => resolve())
    })
  try {
    const mod = (await import(pathToFileURL(path.join(here, `${name}.js`)).href)) as { run?: unknown }
    if (typeof mod.run !== "function") {
      await reply({ ok: false, error: `bench/${name} exports no run()` })
      return
    }
    const run = mod.run as (options?: { quick?: boolean; log?: (line: string) => void }) => Promise<unknown>
    const value = await run({ quick, log: (line) => log(`  ${line}`) })
    await reply({ ok: true, value })
  } catch (e) {
    await reply({ ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) })
  }
  // a bench may leave handles open (servers, timers): the child's work is done
  process.exit(0)
}

type Outcome =
  | { readonly _tag: "Done"; readonly results: Array<BenchResult>; readonly seconds: number }
  | { readonly _tag: "Skipped"; readonly reason: string }

/** The bench children running now (process group leaders), killed if the suite is interrupted. */
const running = new Set<number>()

/** SIGKILL to a child's whole process group: the child and the servers/clients it spawned. */
const killGroup = (pid: number): void => {
  try {
    process.kill(-pid, "SIGKILL")
  } catch {
    // the group is gone already
  }
}

const runChild = (name: string, quick: boolean, timeoutSeconds: number): Promise<Outcome> =>
  new Promise((resolve) => {
    const started = Date.now()
    const args = ["--child", name, ...(quick ? ["--quick"] : [])]
    // detached: the child leads a process group of its own, so a timeout kills what it spawned too
    const proc = fork(fileURLToPath(import.meta.url), args, { stdio: ["ignore", "pipe", "inherit", "ipc"], detached: true })
    const pid = proc.pid
    if (pid !== undefined) running.add(pid)
    // a module's own stdout (its table, console.log) is progress here, not the result
    proc.stdout?.on("data", (chunk: Buffer) => process.stderr.write(chunk))
    let reply: ChildReply | undefined
    let settled = false
    const finish = (o: Outcome) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve(o)
    }
    const timer = setTimeout(() => {
      log(`  ${name}: over ${timeoutSeconds} s, killing its process group (pid ${pid})`)
      if (pid !== undefined) killGroup(pid)
      else proc.kill("SIGKILL")
      finish({ _tag: "Skipped", reason: `killed after ${timeoutSeconds} s (its time bound)` })
    }, timeoutSeconds * 1000)
    proc.on("message", (m) => {
      reply = m as ChildReply
    })
    proc.on("error", (e) => finish({ _tag: "Skipped", reason: `could not start: ${e.message}` }))
    proc.on("exit", (code, signal) => {
      if (pid !== undefined) {
        running.delete(pid)
        // anything the bench left running (a server it did not stop) goes with it
        killGroup(pid)
      }
      const seconds = (Date.now() - started) / 1000
      if (reply === undefined) {
        finish({ _tag: "Skipped", reason: `exited (${signal ?? `code ${code}`}) without results` })
      } else if (!reply.ok) {
        finish({ _tag: "Skipped", reason: `failed: ${(reply.error ?? "unknown error").split("\n")[0]}` })
        if (reply.error !== undefined) log(reply.error)
      } else {
        const results = normalize(name, reply.value)
        if (results.length === 0) finish({ _tag: "Skipped", reason: "returned no figures" })
        else finish({ _tag: "Done", results, seconds })
      }
    })
  })

// ---------------------------------------------------------------------------------------
// the suite

/** Each bench is bounded to 120 s of wall time: one that overruns is killed and reported. */
export const DEFAULT_TIMEOUT_SECONDS = 120
/** The whole suite is bounded to 15 min: a bench starting late gets only what is left. */
export const DEFAULT_SUITE_TIMEOUT_SECONDS = 1500
/**
 * Benches whose bound is a multiple of `--timeout`: the cluster bench starts 12 server
 * processes and measures 12 cases against the bare counter, which needs about 150 s.
 */
/**
 * Modules that need more than `--timeout`: the cluster bench starts 12 processes; scale
 * starts node processes holding up to 1,000,000 counters, several times.
 */
export const TIMEOUT_FACTOR: Readonly<Record<string, number>> = { cluster: 1.5, scale: 2.5 }

/** The wall-time bound of one bench, seconds, given the suite's per-bench `--timeout`. */
export const boundOf = (bench: string, timeoutSeconds: number): number =>
  Math.round(timeoutSeconds * (TIMEOUT_FACTOR[bench] ?? 1))

/** A bench is not started with less than this left of the suite's bound. */
const MIN_BENCH_SECONDS = 10

export interface SuiteOptions {
  readonly quick: boolean
  readonly only: ReadonlyArray<string> | undefined
  readonly timeoutSeconds: number
  readonly suiteTimeoutSeconds: number
  readonly readme: boolean
}

export const parseArgs = (argv: ReadonlyArray<string>): SuiteOptions => {
  const value = (flag: string): string | undefined => {
    const i = argv.indexOf(flag)
    return i >= 0 ? argv[i + 1] : undefined
  }
  const only = value("--only")
  const seconds = (flag: string, fallback: number): number => {
    const n = Number(value(flag) ?? String(fallback))
    return Number.isFinite(n) && n > 0 ? n : fallback
  }
  return {
    quick: argv.includes("--quick"),
    only: only === undefined ? undefined : only.split(",").map((s) => s.trim()).filter((s) => s.length > 0),
    timeoutSeconds: seconds("--timeout", DEFAULT_TIMEOUT_SECONDS),
    suiteTimeoutSeconds: seconds("--suite-timeout", DEFAULT_SUITE_TIMEOUT_SECONDS),
    readme: argv.includes("--readme")
  }
}

export const reportMarkdown = (report: BenchReport): string => {
  const m = report.machine
  const lines = [
    `# Benchmarks`,
    "",
    `Run on ${report.date} with \`${report.command}\` in ${formatNumber(report.durationSeconds)} s.`,
    `Machine: ${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB, Node ${m.node}, ${m.platform}/${m.arch}` +
      (m.loadAverage === undefined ? "" : `, load average at start ${m.loadAverage.join(" / ")}`) +
      ".",
    "Ratios compare with a baseline measured in the same run; goals are reported, not asserted.",
    "",
    markdownTable(report.results)
  ]
  const times = Object.entries(report.benchSeconds ?? {})
  if (times.length > 0) {
    const bound = report.benchBoundSeconds
    lines.push(
      "",
      `Wall time per bench${bound === undefined ? "" : ` (bound ${formatNumber(bound)} s each)`}: ` +
        `${times.map(([b, s]) => `${b} ${formatNumber(s)} s${bound !== undefined && s > boundOf(b, bound) ? " (over)" : ""}`).join(", ")}.` +
        (bound === undefined || !times.some(([b]) => boundOf(b, bound) !== bound)
          ? ""
          : ` Bounds other than ${formatNumber(bound)} s: ` +
            `${times.filter(([b]) => boundOf(b, bound) !== bound).map(([b]) => `${b} ${boundOf(b, bound)} s`).join(", ")}.`)
    )
  }
  if (report.skipped.length > 0) {
    lines.push("", "Not measured:", "")
    for (const s of report.skipped) lines.push(`- ${s.bench}: ${s.reason}`)
  }
  return lines.join("\n") + "\n"
}

export const suite = async (options: SuiteOptions): Promise<BenchReport> => {
  const started = Date.now()
  const wanted = options.only === undefined ? MODULES : MODULES.filter((m) => options.only!.includes(m))
  const unknown = (options.only ?? []).filter((m) => !MODULES.includes(m))
  if (unknown.length > 0) log(`unknown bench modules ignored: ${unknown.join(", ")} (known: ${MODULES.join(", ")})`)
  const results: Array<BenchResult> = []
  const skipped: Array<{ bench: string; reason: string }> = []
  const benchSeconds: Record<string, number> = {}
  log(
    `benchmarks: ${wanted.join(", ")}${options.quick ? " (quick)" : ""}; at most ${options.timeoutSeconds} s each, ` +
      `${options.suiteTimeoutSeconds} s in all`
  )
  for (const [i, name] of wanted.entries()) {
    const prefix = `[${i + 1}/${wanted.length}] ${name}`
    if (!existsSync(path.join(here, `${name}.js`))) {
      log(`${prefix}: skipped, bench/${name}.ts does not exist (yet)`)
      skipped.push({ bench: name, reason: `bench/${name}.ts does not exist` })
      continue
    }
    const left = options.suiteTimeoutSeconds - (Date.now() - started) / 1000
    if (left < MIN_BENCH_SECONDS) {
      log(`${prefix}: skipped, ${formatNumber(Math.max(0, left))} s left of the suite's ${options.suiteTimeoutSeconds} s`)
      skipped.push({ bench: name, reason: `not started: the suite's ${options.suiteTimeoutSeconds} s were spent` })
      continue
    }
    const timeout = Math.min(boundOf(name, options.timeoutSeconds), Math.floor(left))
    log(`${prefix}: running (at most ${timeout} s)`)
    const t0 = Date.now()
    const outcome = await runChild(name, options.quick, timeout)
    benchSeconds[name] = Math.round((Date.now() - t0) / 100) / 10
    if (outcome._tag === "Skipped") {
      log(`${prefix}: ${outcome.reason} (${formatNumber(benchSeconds[name]!)} s)`)
      skipped.push({ bench: name, reason: outcome.reason })
    } else {
      log(`${prefix}: ${outcome.results.length} results in ${formatNumber(benchSeconds[name]!)} s of ${timeout} s`)
      log(markdownTable(outcome.results))
      results.push(...outcome.results)
    }
  }
  return {
    date: new Date(started).toISOString(),
    command: `node dist/bench/run.js${process.argv.slice(2).length > 0 ? " " + process.argv.slice(2).join(" ") : ""}`,
    machine: machine(),
    durationSeconds: (Date.now() - started) / 1000,
    benchSeconds,
    benchBoundSeconds: options.timeoutSeconds,
    suiteBoundSeconds: options.suiteTimeoutSeconds,
    results,
    skipped
  }
}

const mainSuite = async (): Promise<void> => {
  const options = parseArgs(process.argv.slice(2))
  // the bench children lead process groups of their own: an interrupted suite kills them
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    process.once(signal, () => {
      for (const pid of running) killGroup(pid)
      process.exit(code)
    })
  }
  const report = await suite(options)
  mkdirSync(resultsDir, { recursive: true })
  const md = reportMarkdown(report)
  writeFileSync(path.join(resultsDir, "latest.json"), JSON.stringify(report, null, 2) + "\n")
  writeFileSync(path.join(resultsDir, "latest.md"), md)
  process.stdout.write("\n" + md)
  log(`wrote bench/results/latest.json and bench/results/latest.md`)
  if (options.readme) {
    const r = updateReadme(path.join(repoRoot, "docs", "performance.md"), report)
    log(r.ok ? "docs/performance.md: benchmark table updated" : `docs/performance.md not updated: ${r.reason}`)
    if (!r.ok) process.exitCode = 1
  }
}

if (isMain(import.meta.url)) {
  const argv = process.argv.slice(2)
  const childAt = argv.indexOf("--child")
  if (childAt >= 0) void child(argv[childAt + 1] ?? "", argv.includes("--quick"))
  else
    mainSuite().catch((e: unknown) => {
      log(`benchmark suite failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`)
      process.exitCode = 1
    })
}
