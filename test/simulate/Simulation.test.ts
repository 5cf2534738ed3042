import { describe, expect, it } from "../support/vitest.js"
import { Duration, Effect, Option } from "effect"
import * as Report from "../../src/simulate/Report.js"
import * as Simulation from "../../src/simulate/Simulation.js"
import type { SimulateOptions } from "../../src/simulate/SimulateOptions.js"

const options = (partial: Partial<SimulateOptions> = {}): SimulateOptions => ({
  nodeCount: 4,
  duration: Duration.millis(1500),
  rate: 80,
  partitions: 0,
  crashes: 0,
  seed: Option.some(7),
  syncInterval: Duration.millis(200),
  convergeTimeout: Duration.seconds(20),
  drop: 0,
  delay: Duration.millis(1),
  ...partial
})

describe("Simulation", () => {
  it.scopedLive("converges to exactly the acknowledged writes through partitions and crashes", () =>
    Effect.gen(function*() {
      const phases = new Set<string>()
      const result = yield* Simulation.run(
        options({ partitions: 1, crashes: 1, drop: 0.05 }),
        (p) => phases.add(p.phase)
      )
      expect(result.ok).toBe(true)
      expect(result.acked).toBeGreaterThan(0)
      expect(result.faults.partitions).toBe(1)
      expect(result.faults.crashes).toBe(1)
      expect(result.nodes).toHaveLength(4)
      expect(result.nodes.every((n) => n.value === result.expected)).toBe(true)
      expect(result.nodes.reduce((a, n) => a + n.writes, 0)).toBe(result.acked)
      expect(result.increments + result.decrements).toBe(result.acked)
      expect(result.probeMillis.length).toBeGreaterThan(0)
      expect([...phases]).toEqual(expect.arrayContaining(["writing", "done"]))
      const text = Report.render(result)
      expect(text).toContain("OK: every node holds every acknowledged write exactly once")
      expect(text).toContain(`seed 7`)
      expect(text).toMatch(/p50 .* p99 /)
    }), { timeout: 60_000 })
})

describe("Report", () => {
  it("percentile is nearest-rank", () => {
    expect(Report.percentile([], 50)).toBeUndefined()
    expect(Report.percentile([5], 99)).toBe(5)
    const hundred = Array.from({ length: 100 }, (_, i) => 100 - i)
    expect(Report.percentile(hundred, 50)).toBe(50)
    expect(Report.percentile(hundred, 99)).toBe(99)
    expect(Report.percentile(hundred, 100)).toBe(100)
  })

  it("table aligns numbers right and text left", () => {
    const text = Report.table(["node", "value"], [["a", "1"], ["bbb", "1,000"]])
    expect(text.split("\n")).toEqual(["node  value", "----  -----", "a         1", "bbb   1,000"])
  })
})
