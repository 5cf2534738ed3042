import { describe, expect, it } from "@effect/vitest"
import { Effect, FastCheck, Metric, MetricBoundaries } from "effect"
import * as Prometheus from "../../src/observability/Prometheus.js"

/** The value of the sample line `name{labels}` in a scrape, as text. */
const valueOf = (text: string, series: string): string | undefined =>
  text.split("\n").find((l) => l.startsWith(`${series} `))?.slice(series.length + 1)

/** Reads a label value back from exposition text (the inverse of the escaping). */
const unescape = (s: string): string => s.replace(/\\(["\\n])/g, (_, c: string) => (c === "n" ? "\n" : c))

describe("Prometheus", () => {
  it.effect("renders counters, gauges and frequencies with their labels", () =>
    Effect.gen(function*() {
      const requests = Metric.counter("test_prom_requests_total", { description: "requests\nseen" })
      yield* Metric.update(requests.pipe(Metric.tagged("route", "/a")), 1)
      yield* Metric.update(requests.pipe(Metric.tagged("route", "/b")), 2)
      yield* Metric.set(Metric.gauge("test_prom_peers").pipe(Metric.tagged("status", "alive")), 4)
      const words = Metric.frequency("test_prom_words")
      yield* Metric.update(words, "x")
      yield* Metric.update(words, "x")
      yield* Metric.update(words, "y")
      const text = yield* Prometheus.scrape
      expect(text).toContain("# HELP test_prom_requests_total requests\\nseen\n# TYPE test_prom_requests_total counter\n")
      expect(valueOf(text, `test_prom_requests_total{route="/a"}`)).toBe("1")
      expect(valueOf(text, `test_prom_requests_total{route="/b"}`)).toBe("2")
      expect(text.match(/# TYPE test_prom_requests_total /g)).toHaveLength(1)
      expect(text).toContain("# TYPE test_prom_peers gauge\n")
      expect(valueOf(text, `test_prom_peers{status="alive"}`)).toBe("4")
      expect(valueOf(text, `test_prom_words{key="x"}`)).toBe("2")
      expect(valueOf(text, `test_prom_words{key="y"}`)).toBe("1")
    }))

  it.effect("renders histograms with cumulative buckets, one +Inf, sum and count", () =>
    Effect.gen(function*() {
      const h = Metric.histogram("test_prom_latency_seconds", MetricBoundaries.fromIterable([0.1, 0.5, 1]))
      for (const v of [0.05, 0.2, 0.3, 0.7, 3]) yield* Metric.update(h, v)
      const text = yield* Prometheus.scrape
      expect(text).toContain("# TYPE test_prom_latency_seconds histogram\n")
      expect(valueOf(text, `test_prom_latency_seconds_bucket{le="0.1"}`)).toBe("1")
      expect(valueOf(text, `test_prom_latency_seconds_bucket{le="0.5"}`)).toBe("3")
      expect(valueOf(text, `test_prom_latency_seconds_bucket{le="1"}`)).toBe("4")
      expect(valueOf(text, `test_prom_latency_seconds_bucket{le="+Inf"}`)).toBe("5")
      expect(text.match(/test_prom_latency_seconds_bucket\{le="\+Inf"\}/g)).toHaveLength(1)
      expect(Number(valueOf(text, "test_prom_latency_seconds_sum"))).toBeCloseTo(4.25)
      expect(valueOf(text, "test_prom_latency_seconds_count")).toBe("5")
    }))

  it.effect("renders summaries with quantile labels", () =>
    Effect.gen(function*() {
      const s = Metric.summary({
        name: "test_prom_sizes",
        maxAge: "1 minute",
        maxSize: 100,
        error: 0.01,
        quantiles: [0.5, 0.99]
      })
      for (const v of [1, 2, 3]) yield* Metric.update(s, v)
      const text = yield* Prometheus.scrape
      expect(text).toContain("# TYPE test_prom_sizes summary\n")
      expect(valueOf(text, `test_prom_sizes{quantile="0.5"}`)).toBeDefined()
      expect(valueOf(text, "test_prom_sizes_count")).toBe("3")
      expect(valueOf(text, "test_prom_sizes_sum")).toBe("6")
    }))

  it.effect("includes process metrics", () =>
    Effect.gen(function*() {
      const text = yield* Prometheus.scrape
      expect(Number(valueOf(text, "process_resident_memory_bytes"))).toBeGreaterThan(0)
      expect(Number(valueOf(text, "nodejs_heap_size_used_bytes"))).toBeGreaterThan(0)
      expect(Number(valueOf(text, "process_uptime_seconds"))).toBeGreaterThan(0)
      expect(text).toContain("# TYPE process_cpu_seconds_total counter\n")
    }))

  it("sanitises names and label names", () => {
    expect(Prometheus.sanitizeName("dcounter.wal-fsync seconds")).toBe("dcounter_wal_fsync_seconds")
    expect(Prometheus.sanitizeName("9lives")).toBe("_9lives")
    expect(Prometheus.sanitizeLabelName("peer-addr")).toBe("peer_addr")
    expect(Prometheus.sanitizeLabelName("__name")).toBe("l__name")
    expect(Prometheus.formatValue(Number.POSITIVE_INFINITY)).toBe("+Inf")
    expect(Prometheus.formatValue(Number.NaN)).toBe("NaN")
    expect(Prometheus.formatValue(12345678901234567890n)).toBe("12345678901234567890")
  })

  it.prop(
    "escapes any label value so that it reads back the same",
    [FastCheck.string({ unit: "binary", maxLength: 40 })],
    ([value]) => {
      const text = Prometheus.renderFamilies([{
        name: "x",
        type: "gauge",
        help: `h${value}`,
        samples: [{ name: "x", labels: [["v", value]], value: 1 }]
      }])
      const lines = text.split("\n")
      // one HELP, one TYPE, one sample, a final empty line: nothing the value holds breaks a line
      expect(lines).toHaveLength(4)
      const match = /^x\{v="((?:\\.|[^"\\])*)"\} 1$/.exec(lines[2]!)
      expect(match).not.toBeNull()
      expect(unescape(match![1]!)).toBe(value)
    },
    { fastCheck: { numRuns: 1000 } }
  )
})
