import { describe, expect, it } from "@effect/vitest"
import { FastCheck } from "effect"
import { randomCountersLua } from "../../bench/ClusterCases.js"
import { combineLoads, parseWrkResult, splitConnections, wrkScript } from "../../bench/LoadGenerator.js"

describe("bench/LoadGenerator", () => {
  it("splits connections evenly over load generators, every one getting some", () => {
    expect(splitConnections(50, 3)).toEqual([17, 17, 16])
    expect(splitConnections(50, 1)).toEqual([50])
    FastCheck.assert(
      FastCheck.property(FastCheck.integer({ min: 1, max: 500 }), FastCheck.integer({ min: 1, max: 20 }), (total, parts) => {
        const split = splitConnections(total, parts)
        expect(split).toHaveLength(parts)
        expect(Math.min(...split)).toBeGreaterThanOrEqual(1)
        expect(Math.max(...split) - Math.min(...split)).toBeLessThanOrEqual(1)
        if (total >= parts) expect(split.reduce((a, b) => a + b, 0)).toBe(total)
      })
    )
  })

  it("combines side-by-side runs: counts add up, p50 weighted by requests, p99 the worst", () => {
    const a = { rps: 1000, p50ms: 2, p99ms: 10, requests: 3000, failures: 1 }
    const b = { rps: 500, p50ms: 4, p99ms: 30, requests: 1000, failures: 2 }
    expect(combineLoads([a, b])).toEqual({ rps: 1500, p50ms: 2.5, p99ms: 30, requests: 4000, failures: 3 })
    expect(combineLoads([a])).toBe(a)
  })

  it("writes a wrk script with the request builder and reads its RESULT line", () => {
    const script = wrkScript({
      name: "rand",
      url: "http://127.0.0.1:1/counters/c0/increment",
      method: "POST",
      body: `{"by":1}`,
      requestLua: randomCountersLua(42, 1000)
    })
    expect(script).toContain(`wrk.body = "{\\"by\\":1}"`)
    expect(script).toContain("math.randomseed(42)")
    expect(script).toContain(`"/counters/c" .. math.random(0, 999) .. "/increment"`)
    expect(script).toContain("done = function(summary, latency, requests)")
    expect(wrkScript({ name: "hot", url: "http://127.0.0.1:1/increment" })).not.toContain("request = function")
    const r = parseWrkResult(
      `Running 3s test\nRESULT {"requests":30000,"duration_us":3000000,"p50_us":1500.5,"p99_us":9000,"status":2,"socket":1}\n`
    )
    expect(r).toEqual({ rps: 10000, p50ms: 1.5005, p99ms: 9, requests: 30000, failures: 3 })
    expect(() => parseWrkResult("Running 3s test\n")).toThrow(/no result/)
  })
})
