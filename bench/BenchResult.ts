/**
 * The common shape of benchmark results and the contract every `bench/<name>.ts` follows.
 *
 * A bench module exports
 *
 *     export const run: (options?: BenchOptions) => Promise<ReadonlyArray<BenchResult>>
 *
 * and runs itself when executed directly (`if (isMain(import.meta.url)) void main(run)`),
 * printing a markdown table. `bench/run.ts` imports every module, collects the results
 * into `bench/results/latest.json` and prints one table.
 *
 * One `BenchResult` is one row of that table: one measured case (e.g. "node POST
 * /increment, 50 connections") with its figures, and, when a baseline was measured in the
 * same run, the baseline's name and the ratio of the primary figure (the first one) to the
 * baseline's. Goals are reported, never asserted: `goal` says what was wanted in words and
 * `met` whether it was.
 */
import { realpathSync } from "node:fs"
import { fileURLToPath } from "node:url"

/** Whether a bigger number is better (throughput) or worse (latency, bytes, memory). */
export type Better = "higher" | "lower"

/** One measured number with its unit: `{ name: "p99", value: 3.2, unit: "ms" }`. */
export interface Figure {
  readonly name: string
  readonly value: number
  /** e.g. "frames/s", "MB/s", "req/s", "ms", "B/s", "msgs/s", "MB", "records" */
  readonly unit: string
  readonly better?: Better
}

export interface BenchResult {
  /** The bench module that measured it: "codec", "wal", "http", ... */
  readonly bench: string
  /** The case, e.g. "Push, 10,000 counters: msgpack + Schema". */
  readonly name: string
  /** The first figure is the primary one: the ratio compares it. */
  readonly figures: ReadonlyArray<Figure>
  /** The case this one is compared with, measured in the same run (e.g. "JSON.stringify/parse"). */
  readonly baseline?: string
  /**
   * This case's primary figure divided by the baseline's same figure (e.g. 0.72 = 72 % of the
   * baseline's throughput). For "lower is better" figures it is still this / baseline.
   */
  readonly ratio?: number
  /** The goal in words, e.g. ">= 0.7x baseline" or "p99 <= 50 ms". */
  readonly goal?: string
  /** Whether the goal was met; absent when there is no goal. */
  readonly met?: boolean
  /** Anything a reader needs to interpret the row (setup, what dominated the time). */
  readonly notes?: string
}

export interface BenchOptions {
  /** Shorter runs (a few seconds per bench) for a smoke check; the figures are noisier. */
  readonly quick?: boolean
  /** Progress lines; defaults to stderr. */
  readonly log?: (line: string) => void
}

/** What every bench module exports. */
export interface BenchModule {
  readonly run: (options?: BenchOptions) => Promise<ReadonlyArray<BenchResult>>
}

/** The file `bench/run.ts` writes to `bench/results/latest.json`. */
export interface BenchReport {
  readonly date: string
  readonly command: string
  readonly machine: Machine
  readonly durationSeconds: number
  /** Wall time of each bench module that ran (each should stay within 120 s). */
  readonly benchSeconds?: Readonly<Record<string, number>>
  /** The wall-time bound of each bench (killed past it) and of the whole suite, seconds. */
  readonly benchBoundSeconds?: number
  readonly suiteBoundSeconds?: number
  readonly results: ReadonlyArray<BenchResult>
  /** Bench modules that were skipped or failed, with why. */
  readonly skipped: ReadonlyArray<{ readonly bench: string; readonly reason: string }>
}

export interface Machine {
  readonly cores: number
  readonly cpuModel: string
  readonly memoryGiB: number
  readonly node: string
  readonly platform: string
  readonly arch: string
  /** 1, 5 and 15 minute load averages when the run started: a hint of how noisy it was. */
  readonly loadAverage?: ReadonlyArray<number>
}

// ---------------------------------------------------------------------------------------
// helpers

export const figure = (name: string, value: number, unit: string, better?: Better): Figure =>
  better === undefined ? { name, value, unit } : { name, value, unit, better }

/** `a / b`, or undefined when it is not a finite number. */
export const ratioOf = (a: number, b: number): number | undefined => {
  const r = a / b
  return Number.isFinite(r) ? r : undefined
}

/** The middle value (the mean of the two middle ones for an even count); NaN for none. */
export const median = (xs: ReadonlyArray<number>): number => {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/**
 * The figures of a load run, as medians over its rounds: throughput, p50, p99, and the
 * server's CPU per request when every round measured it.
 */
export const loadFigures = (
  rounds: ReadonlyArray<{ readonly rps: number; readonly p50ms: number; readonly p99ms: number }>,
  cpuMicros: ReadonlyArray<number | undefined>
): Array<Figure> => [
  figure("throughput", median(rounds.map((r) => r.rps)), "req/s", "higher"),
  figure("p50", median(rounds.map((r) => r.p50ms)), "ms", "lower"),
  figure("p99", median(rounds.map((r) => r.p99ms)), "ms", "lower"),
  ...(cpuMicros.length > 0 && cpuMicros.every((c) => c !== undefined)
    ? [figure("server CPU", median(cpuMicros as ReadonlyArray<number>), "us/req", "lower")]
    : [])
]

/** A number with a sensible number of digits: 1234567 -> "1,234,567", 0.01234 -> "0.0123". */
export const formatNumber = (n: number): string => {
  if (!Number.isFinite(n)) return String(n)
  const abs = Math.abs(n)
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3
  return n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 0 })
}

export const formatFigure = (f: Figure): string => `${f.name} ${formatNumber(f.value)} ${f.unit}`

const cell = (s: string): string => s.replace(/\|/g, "\\|").replace(/\n/g, " ")

/** One markdown table with a row per result. */
export const markdownTable = (results: ReadonlyArray<BenchResult>): string => {
  const lines = [
    "| bench | case | figures | baseline | ratio | goal | met | notes |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |"
  ]
  for (const r of results) {
    lines.push(
      "| " +
        [
          r.bench,
          r.name,
          r.figures.map(formatFigure).join("; "),
          r.baseline ?? "",
          r.ratio === undefined ? "" : `${r.ratio.toFixed(2)}x`,
          r.goal ?? "",
          r.met === undefined ? "" : r.met ? "yes" : "**no**",
          r.notes ?? ""
        ]
          .map(cell)
          .join(" | ") +
        " |"
    )
  }
  return lines.join("\n")
}

/** True when the module at `metaUrl` is the program node was started with. */
export const isMain = (metaUrl: string): boolean => {
  const entry = process.argv[1]
  if (entry === undefined) return false
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(metaUrl))
  } catch {
    return false
  }
}

/**
 * Runs one bench module on its own: `--quick` is honoured, the table goes to stdout and
 * the exit code is 1 if it throws.
 */
export const main = async (
  run: (options?: BenchOptions) => Promise<ReadonlyArray<BenchResult>>
): Promise<void> => {
  try {
    const results = await run({ quick: process.argv.includes("--quick") })
    process.stdout.write(markdownTable(results) + "\n")
  } catch (e) {
    process.stderr.write(`benchmark failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`)
    process.exitCode = 1
  }
}

/** Duck-typed check of a value a bench module returned. */
export const isBenchResult = (u: unknown): u is BenchResult => {
  if (typeof u !== "object" || u === null) return false
  const r = u as { bench?: unknown; name?: unknown; figures?: unknown }
  return (
    typeof r.bench === "string" &&
    typeof r.name === "string" &&
    Array.isArray(r.figures) &&
    r.figures.every(
      (f: unknown) =>
        typeof f === "object" &&
        f !== null &&
        typeof (f as { name?: unknown }).name === "string" &&
        typeof (f as { value?: unknown }).value === "number" &&
        typeof (f as { unit?: unknown }).unit === "string"
    )
  )
}
