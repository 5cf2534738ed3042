import { describe, expect, it } from "@effect/vitest"
import { parseMetrics, sumOf } from "../../bench/MetricsText.js"

describe("bench/MetricsText", () => {
  const text = [
    "# HELP dcounter_gossip_pushes_sent_total Push messages sent",
    "# TYPE dcounter_gossip_pushes_sent_total counter",
    `dcounter_gossip_pushes_sent_total{kind="eager"} 1543`,
    `dcounter_gossip_pushes_sent_total{kind="sync",peer="a\\"b"} 7`,
    "dcounter_bytes_out_total 824 1700000000000",
    "process_start NaN",
    "up +Inf",
    "",
    "not a sample line",
    `broken{kind="x} 3`
  ].join("\n")

  it("parses samples with labels, escaped label values, timestamps, NaN and Inf; skips the rest", () => {
    const samples = parseMetrics(text)
    expect(samples.map((s) => s.name)).toEqual([
      "dcounter_gossip_pushes_sent_total",
      "dcounter_gossip_pushes_sent_total",
      "dcounter_bytes_out_total",
      "process_start",
      "up"
    ])
    expect(samples[1]!.labels).toEqual([["kind", "sync"], ["peer", `a"b`]])
    expect(samples[2]!.value).toBe(824)
    expect(samples[3]!.value).toBeNaN()
    expect(samples[4]!.value).toBe(Infinity)
  })

  it("sums a metric over its series, optionally restricted by label, 0 when absent", () => {
    const samples = parseMetrics(text)
    expect(sumOf(samples, "dcounter_gossip_pushes_sent_total")).toBe(1550)
    expect(sumOf(samples, "dcounter_gossip_pushes_sent_total", { kind: "eager" })).toBe(1543)
    expect(sumOf(samples, "dcounter_gossip_pushes_sent_total", { kind: "full" })).toBe(0)
    expect(sumOf(samples, "dcounter_frames_out_total")).toBe(0)
  })
})
