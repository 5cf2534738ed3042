/**
 * Prometheus text exposition (format 0.0.4) of Effect's metric registry, plus the usual
 * process metrics (resident memory, heap, CPU time, uptime, event-loop delay).
 *
 * Effect metrics map as follows: counter -> `counter`, gauge -> `gauge`, histogram ->
 * `histogram` (`_bucket{le}` cumulative, `_sum`, `_count`), summary -> `summary`
 * (`{quantile}`, `_sum`, `_count`), frequency -> `counter` with one series per observed
 * word in the label `key`. Metric tags become labels. Names and label names are sanitised to
 * the Prometheus alphabet; label values and help text are escaped.
 *
 * Effect's own runtime series (`effect_fiber_*`: counters without `_total`, no help text)
 * are left out: they describe the runtime, not dcounter, and `promtool check metrics`
 * rejects them. Series that Effect's registry only learns of on first use are made to
 * exist from start-up with `declared` (value 0), and values that are read rather than
 * counted (counters held, WAL files, build info) come from `collector`s at scrape time.
 */
import { Effect, Metric, MetricState, Option } from "effect"
import type { MetricLabel } from "effect"
import type { MetricPair, Scope } from "effect"
import { monitorEventLoopDelay } from "node:perf_hooks"
import type { IntervalHistogram } from "node:perf_hooks"

/** The `Content-Type` of a scrape answer. */
export const contentType = "text/plain; version=0.0.4; charset=utf-8"

export type MetricType = "counter" | "gauge" | "histogram" | "summary" | "untyped"

/** One line of a metric family: `name{labels} value`. */
export interface Sample {
  /** full sample name, e.g. `x_bucket`, `x_sum` (already sanitised) */
  readonly name: string
  readonly labels: ReadonlyArray<readonly [string, string]>
  readonly value: number | bigint
}

/** All samples of one metric name, under one `# HELP` and `# TYPE`. */
export interface Family {
  readonly name: string
  readonly type: MetricType
  readonly help: string
  readonly samples: ReadonlyArray<Sample>
}

// ---------------------------------------------------------------------------------------
// text format

/** A metric name in `[a-zA-Z_:][a-zA-Z0-9_:]*`. */
export const sanitizeName = (name: string): string => {
  const s = name.replace(/[^a-zA-Z0-9_:]/g, "_")
  return /^[a-zA-Z_:]/.test(s) ? s : `_${s}`
}

/** A label name in `[a-zA-Z_][a-zA-Z0-9_]*`, never starting with `__` (reserved). */
export const sanitizeLabelName = (name: string): string => {
  let s = name.replace(/[^a-zA-Z0-9_]/g, "_")
  if (!/^[a-zA-Z_]/.test(s)) s = `_${s}`
  return s.startsWith("__") ? `l${s}` : s
}

/** Escapes a label value: backslash, double quote and line feed. */
export const escapeLabelValue = (value: string): string =>
  value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")

/** Escapes help text: backslash and line feed. */
export const escapeHelp = (value: string): string => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

/** A sample value as Prometheus writes it: `+Inf`, `-Inf`, `NaN`, or the shortest decimal. */
export const formatValue = (value: number | bigint): string => {
  if (typeof value === "bigint") return value.toString()
  if (Number.isNaN(value)) return "NaN"
  if (value === Number.POSITIVE_INFINITY) return "+Inf"
  if (value === Number.NEGATIVE_INFINITY) return "-Inf"
  return String(value)
}

const formatLabels = (labels: ReadonlyArray<readonly [string, string]>): string => {
  if (labels.length === 0) return ""
  let out = "{"
  for (let i = 0; i < labels.length; i++) {
    const [k, v] = labels[i]!
    out += `${i === 0 ? "" : ","}${k}="${escapeLabelValue(v)}"`
  }
  return out + "}"
}

/** Renders families as exposition text; families with the same name are merged. */
export const renderFamilies = (families: ReadonlyArray<Family>): string => {
  const merged = new Map<string, { type: MetricType; help: string; samples: Array<Sample> }>()
  for (const f of families) {
    const current = merged.get(f.name)
    if (current === undefined) {
      merged.set(f.name, { type: f.type, help: f.help, samples: [...f.samples] })
    } else if (current.type === f.type) {
      current.samples.push(...f.samples)
      if (current.help === "") current.help = f.help
    }
    // a second family of the same name with another type would make the scrape invalid:
    // the first one wins
  }
  const lines: Array<string> = []
  for (const [name, f] of merged) {
    if (f.help !== "") lines.push(`# HELP ${name} ${escapeHelp(f.help)}`)
    lines.push(`# TYPE ${name} ${f.type}`)
    for (const s of f.samples) lines.push(`${s.name}${formatLabels(s.labels)} ${formatValue(s.value)}`)
  }
  return lines.length === 0 ? "" : lines.join("\n") + "\n"
}

// ---------------------------------------------------------------------------------------
// Effect metrics

const pairToFamily = (pair: MetricPair.MetricPair.Untyped): Family | undefined => {
  const key = pair.metricKey
  const name = sanitizeName(key.name)
  const help = Option.getOrElse(key.description, () => "")
  const labels: Array<readonly [string, string]> = key.tags.map((t) => [sanitizeLabelName(t.key), t.value] as const)
  const state: unknown = pair.metricState
  if (MetricState.isCounterState(state)) {
    return { name, type: "counter", help, samples: [{ name, labels, value: state.count }] }
  }
  if (MetricState.isGaugeState(state)) {
    return { name, type: "gauge", help, samples: [{ name, labels, value: state.value }] }
  }
  if (MetricState.isHistogramState(state)) {
    const samples: Array<Sample> = []
    let sawInf = false
    for (const [boundary, count] of state.buckets) {
      if (boundary === Number.POSITIVE_INFINITY) sawInf = true
      samples.push({ name: `${name}_bucket`, labels: [...labels, ["le", formatValue(boundary)]], value: count })
    }
    if (!sawInf) samples.push({ name: `${name}_bucket`, labels: [...labels, ["le", "+Inf"]], value: state.count })
    samples.push({ name: `${name}_sum`, labels, value: state.sum })
    samples.push({ name: `${name}_count`, labels, value: state.count })
    return { name, type: "histogram", help, samples }
  }
  if (MetricState.isSummaryState(state)) {
    const samples: Array<Sample> = []
    for (const [quantile, value] of state.quantiles) {
      samples.push({
        name,
        labels: [...labels, ["quantile", formatValue(quantile)]],
        value: Option.getOrElse(value, () => Number.NaN)
      })
    }
    samples.push({ name: `${name}_sum`, labels, value: state.sum })
    samples.push({ name: `${name}_count`, labels, value: state.count })
    return { name, type: "summary", help, samples }
  }
  if (MetricState.isFrequencyState(state)) {
    const samples: Array<Sample> = []
    for (const [word, count] of state.occurrences) {
      samples.push({ name, labels: [...labels, ["key", word]], value: count })
    }
    return { name, type: "counter", help, samples }
  }
  return undefined
}

/** Effect's runtime metrics (see the module comment). */
const isRuntimeInternal = (name: string): boolean => name.startsWith("effect_fiber_")

/** The families of a registry snapshot (`Metric.snapshot` / `Metric.unsafeSnapshot()`). */
export const fromSnapshot = (pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>): Array<Family> => {
  const families: Array<Family> = []
  for (const pair of pairs) {
    if (isRuntimeInternal(pair.metricKey.name)) continue
    const family = pairToFamily(pair)
    if (family !== undefined) families.push(family)
  }
  // stable output: by name, then by labels
  return families.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
}

// ---------------------------------------------------------------------------------------
// process metrics

let loopMonitor: IntervalHistogram | undefined
let loopMonitorUsers = 0

/**
 * Measures event-loop delay while the scope is open (a native histogram; shared by every
 * user in the process). Its sampling timer wakes the process every `resolution` ms even
 * when nothing else happens, which made it most of an idle node's CPU: half a second
 * still catches any stall a scrape would care about.
 */
export const eventLoopMonitor: Effect.Effect<void, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => {
    if (loopMonitorUsers++ === 0) {
      loopMonitor = monitorEventLoopDelay({ resolution: 500 })
      loopMonitor.enable()
    }
  }),
  () =>
    Effect.sync(() => {
      if (--loopMonitorUsers === 0 && loopMonitor !== undefined) {
        loopMonitor.disable()
        loopMonitor = undefined
      }
    })
)

const processStart = Date.now() / 1000 - process.uptime()

/** Resident memory, heap, CPU time, uptime and (when monitored) event-loop delay. */
export const processFamilies = (): Array<Family> => {
  const mem = process.memoryUsage()
  const cpu = process.cpuUsage()
  const gauge = (name: string, help: string, value: number): Family => ({
    name,
    type: "gauge",
    help,
    samples: [{ name, labels: [], value }]
  })
  const families: Array<Family> = [
    {
      name: "process_cpu_seconds_total",
      type: "counter",
      help: "Total user and system CPU time spent in seconds.",
      samples: [{ name: "process_cpu_seconds_total", labels: [], value: (cpu.user + cpu.system) / 1e6 }]
    },
    gauge("process_resident_memory_bytes", "Resident memory size in bytes.", mem.rss),
    gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", processStart),
    gauge("process_uptime_seconds", "Seconds since the process started.", process.uptime()),
    gauge("nodejs_heap_size_total_bytes", "Process heap size from Node.js in bytes.", mem.heapTotal),
    gauge("nodejs_heap_size_used_bytes", "Process heap size used from Node.js in bytes.", mem.heapUsed),
    gauge("nodejs_external_memory_bytes", "Node.js external memory size in bytes.", mem.external)
  ]
  const monitor = loopMonitor
  if (monitor !== undefined && monitor.count > 0) {
    const name = "nodejs_eventloop_delay_seconds"
    families.push({
      name,
      type: "summary",
      help: "Event loop delay in seconds, sampled every 20 ms since start.",
      samples: [
        ...[0.5, 0.9, 0.99].map((q) => ({
          name,
          labels: [["quantile", String(q)] as const],
          value: monitor.percentile(q * 100) / 1e9
        })),
        { name: `${name}_sum`, labels: [], value: (monitor.mean * monitor.count) / 1e9 },
        { name: `${name}_count`, labels: [], value: monitor.count }
      ]
    })
    families.push(gauge("nodejs_eventloop_delay_max_seconds", "Maximum event loop delay in seconds.", monitor.max / 1e9))
  }
  return families
}

// ---------------------------------------------------------------------------------------
// series that exist from start-up, and values read at scrape time

/**
 * Makes a series exist in the registry now, at its zero value, so that a scrape right after
 * start-up shows it (with its HELP and TYPE) instead of it appearing on first use. For a
 * labelled family, declare each known label set (`Metric.tagged(m, "reason", r)`).
 */
export const declared = <M extends { readonly unsafeValue: (extraTags: ReadonlyArray<MetricLabel.MetricLabel>) => unknown }>(
  metric: M
): M => {
  metric.unsafeValue([])
  return metric
}

/** Families computed when scraped, from state a module holds (a count, files on disk). */
export type Collector = () => ReadonlyArray<Family>

const collectors = new Set<Collector>()

/** Adds `collect` to every scrape while the scope is open. */
export const collector = (collect: Collector): Effect.Effect<void, never, Scope.Scope> =>
  Effect.acquireRelease(Effect.sync(() => void collectors.add(collect)), () => Effect.sync(() => void collectors.delete(collect)))

/** A one-sample gauge family. */
export const gaugeFamily = (
  name: string,
  help: string,
  value: number,
  labels: ReadonlyArray<readonly [string, string]> = []
): Family => ({ name, type: "gauge", help, samples: [{ name, labels, value }] })

const collected = (): Array<Family> => {
  const out: Array<Family> = []
  for (const collect of collectors) out.push(...collect())
  return out
}

/** The whole scrape: every metric in Effect's global registry, the collectors, then the process metrics. */
export const render = (): string =>
  renderFamilies([...fromSnapshot(Metric.unsafeSnapshot()), ...collected(), ...processFamilies()])

/** `render` as an Effect. */
export const scrape: Effect.Effect<string> = Effect.sync(render)
