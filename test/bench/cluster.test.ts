import { describe, expect, it } from "@effect/vitest"
import { parseArgs } from "../../bench/cluster.js"
import type { CaseRound, ClusterCase, Snapshot } from "../../bench/ClusterCases.js"
import { CASES, caseRound, roundPlan } from "../../bench/ClusterCases.js"
import { caseResult, clusterGoals, compactTable, goalLines, goalResult } from "../../bench/ClusterReport.js"
import type { LoadResult } from "../../bench/LoadGenerator.js"
import type { Sample } from "../../bench/MetricsText.js"
import { parseMetrics } from "../../bench/MetricsText.js"

const caseOf = (id: string): ClusterCase => CASES.find((c) => c.id === id)!

const load = (rps: number, requests: number, failures = 0): LoadResult => ({
  rps,
  p50ms: 2,
  p99ms: 9,
  requests,
  failures
})

/** /metrics of one node: writes, pushes (two kinds), gossip bytes and WAL appends. */
const metrics = (writes: number, eager: number, sync: number, bytes: number, appends: number): ReadonlyArray<Sample> =>
  parseMetrics([
    "# HELP dcounter_writes_total Local increments and decrements acknowledged (durable)",
    "# TYPE dcounter_writes_total counter",
    `dcounter_writes_total ${writes}`,
    `dcounter_gossip_pushes_sent_total{kind="eager"} ${eager}`,
    `dcounter_gossip_pushes_sent_total{kind="sync"} ${sync}`,
    `dcounter_bytes_out_total ${bytes}`,
    `dcounter_wal_appends_total ${appends}`
  ].join("\n"))

describe("bench/cluster figures", () => {
  const before: Snapshot = {
    nodeCpu: [10, 20, 30],
    nodeMetrics: [metrics(100, 5, 1, 1000, 100), metrics(0, 0, 1, 10, 3), metrics(0, 0, 0, 10, 3)]
  }
  const after: Snapshot = {
    nodeCpu: [10.8, 20.02, 30.04],
    nodeMetrics: [metrics(10_100, 205, 2, 21_000, 10_100), metrics(0, 0, 2, 30, 4), metrics(0, 0, 0, 10, 3)]
  }

  it("load on one node: writer, each peer per remote write, the sum, per-write gossip, writes counted by the nodes", () => {
    const r = caseRound(caseOf("hot-3"), load(5000, 10_050, 50), before, after)
    expect(r.writes).toBe(10_000)
    expect(r.writerCpuUs).toBeCloseTo(80, 6)
    expect(r.peerCpuUs.map((x) => Math.round(x * 1000) / 1000)).toEqual([2, 4])
    expect(r.nodesCpuUs).toBeCloseTo(86, 6)
    expect(r.gatewayCpuUs).toBeUndefined()
    // 200 eager + 1 sync on the writer, 1 sync on a peer
    expect(r.pushesPerWrite).toBeCloseTo(202 / 10_000, 9)
    expect(r.gossipBytesPerWrite).toBeCloseTo(20_020 / 10_000, 9)
    expect(r.walAppendsPerWrite).toBeCloseTo(10_001 / 10_000, 9)
  })

  it("load spread over all nodes: no writer or peer figure, only the sum", () => {
    const r = caseRound(caseOf("hot-3-all"), load(5000, 10_000), before, after)
    expect(r.writerCpuUs).toBeUndefined()
    expect(r.peerCpuUs).toEqual([])
    expect(r.nodesCpuUs).toBeCloseTo(86, 6)
  })

  it("a gateway's CPU per request; a lone node behind it is the writer", () => {
    const one: Snapshot = { nodeCpu: [1], gatewayCpu: 5, nodeMetrics: [metrics(0, 0, 0, 0, 0)] }
    const two: Snapshot = { nodeCpu: [1.5], gatewayCpu: 6, nodeMetrics: [metrics(10_000, 0, 0, 0, 10_000)] }
    const r = caseRound(caseOf("gw-1"), load(3000, 10_000), one, two)
    expect(r.gatewayCpuUs).toBeCloseTo(100, 6)
    expect(r.writerCpuUs).toBeCloseTo(50, 6)
  })

  it("without the nodes' write counter, counts wrk's answered requests; unknown CPU gives no figure", () => {
    const empty: Snapshot = { nodeCpu: [undefined], nodeMetrics: [[]] }
    const r = caseRound(caseOf("hot-1"), load(1000, 3000, 100), empty, { nodeCpu: [2], nodeMetrics: [[]] })
    expect(r.writes).toBe(2900)
    expect(r.writerCpuUs).toBeUndefined()
    expect(r.nodesCpuUs).toBeUndefined()
  })

  it("runs the bare counter before every four cases", () => {
    const plan = roundPlan(CASES).map((s) => (s === "bare" ? s : s.id))
    expect(plan.slice(0, 6)).toEqual(["bare", "hot-1", "gw-1", "hot-3", "hot-3-all", "bare"])
    expect(plan.filter((s) => s === "bare")).toHaveLength(3)
    expect(roundPlan([caseOf("rand-5")]).map((s) => (s === "bare" ? s : s.id))).toEqual(["bare", "rand-5"])
  })
})

describe("bench/cluster goals", () => {
  const round = (f: Partial<CaseRound>): CaseRound => ({
    load: load(1000, 1000),
    writes: 1000,
    peerCpuUs: [],
    pushesPerWrite: 0,
    gossipBytesPerWrite: 0,
    walAppendsPerWrite: 1,
    ...f
  })

  it("pairs rounds for CPU ratios, takes the busiest peer of the worst case, and ratios to bare", () => {
    const byCase = new Map<string, ReadonlyArray<CaseRound>>([
      ["hot-1", [round({ writerCpuUs: 40, nodesCpuUs: 40, ratio: 0.85 }), round({ writerCpuUs: 50, nodesCpuUs: 50, ratio: 0.75 })]],
      ["hot-3", [round({ writerCpuUs: 44, nodesCpuUs: 60, peerCpuUs: [2, 2.5], ratio: 0.5 }), round({ writerCpuUs: 60, nodesCpuUs: 60, peerCpuUs: [1, 1], ratio: 0.6 })]],
      ["hot-5", [round({ writerCpuUs: 48, peerCpuUs: [3.5, 1] }), round({ writerCpuUs: 55, peerCpuUs: [3.5, 1] })]],
      ["gw-3", [round({ ratio: 0.5 })]]
    ])
    const goals = new Map(clusterGoals(byCase).map((g) => [g.id, g]))
    // per round 1.1 and 1.2: median 1.15, met (<=)
    expect(goals.get("writer-hot-2")!.value).toBeCloseTo(1.15, 9)
    expect(goals.get("writer-hot-2")!.met).toBe(true)
    // 1.2 and 1.1
    expect(goals.get("writer-hot-4")!.value).toBeCloseTo(1.15, 9)
    // busiest peer: hot-3 median 1.75, hot-5 3.5: the worst is 3.5 > 3
    expect(goals.get("peer-hot")!.value).toBe(3.5)
    expect(goals.get("peer-hot")!.met).toBe(false)
    // 1.5 and 1.2: median 1.35 > 1.3
    expect(goals.get("nodes-hot-3")!.value).toBeCloseTo(1.35, 9)
    expect(goals.get("nodes-hot-3")!.met).toBe(false)
    expect(goals.get("post-1")!.value).toBeCloseTo(0.8, 9)
    expect(goals.get("post-1")!.met).toBe(true)
    expect(goals.get("post-3")!.met).toBe(true)
    expect(goals.get("gw-3")!.met).toBe(true)
    // not measured: no value, no verdict
    for (const id of ["writer-rand-2", "writer-rand-4", "peer-rand", "gw-1"]) {
      expect(goals.get(id)!.value).toBeUndefined()
      expect(goals.get(id)!.met).toBeUndefined()
    }
    const lines = goalLines(clusterGoals(byCase))
    expect(lines.find((l) => l.includes("2 peers / alone, hot"))).toMatch(/^ {2}met .*1\.15x \(goal <= 1\.15x\)$/)
    expect(lines.find((l) => l.includes("peer's CPU per remote write, hot"))).toMatch(/^MISSED .*3\.5 µs \(goal <= 3 µs\)$/)
    expect(lines.find((l) => l.includes("gateway in front of 1 node"))).toContain("not measured")
  })

  it("makes a row per case with its medians and own goal, and a row per cross-case goal", () => {
    const rounds = [round({ writerCpuUs: 40, nodesCpuUs: 40, ratio: 0.7 }), round({ writerCpuUs: 60, nodesCpuUs: 60, ratio: 0.9 })]
    const row = caseResult(caseOf("hot-1"), rounds, { seconds: 3, connections: 50, setup: "setup" })
    expect(row.name).toBe("1 node, hot counter, durable POST")
    expect(row.figures.map((f) => f.name)).toEqual([
      "throughput", "p50", "p99", "writer CPU", "all nodes CPU", "gossip pushes", "gossip bytes sent", "WAL appends"
    ])
    expect(row.figures.find((f) => f.name === "writer CPU")!.value).toBe(50)
    expect(row.ratio).toBeCloseTo(0.8, 9)
    expect(row.goal).toBe(">= 0.8x baseline")
    expect(row.met).toBe(true)
    expect(row.notes).toContain("per-round ratios 0.70, 0.90")
    const spread = caseResult(caseOf("rand-3-all"), [round({ nodesCpuUs: 90 })], { seconds: 3, connections: 50, setup: "s" })
    expect(spread.ratio).toBeUndefined()
    expect(spread.goal).toBeUndefined()
    expect(spread.notes).toContain("17+17+16 connections")
    const goals = clusterGoals(new Map([
      ["hot-1", [round({ writerCpuUs: 40 })]],
      ["hot-3", [round({ writerCpuUs: 60, peerCpuUs: [2] })]]
    ]))
    const writer = goalResult(goals.find((g) => g.id === "writer-hot-2")!)
    expect(writer).toMatchObject({ ratio: 1.5, goal: "<= 1.15x", met: false, baseline: "1 node, hot counter, durable POST" })
    const peer = goalResult(goals.find((g) => g.id === "peer-hot")!)
    expect(peer).toMatchObject({ goal: "<= 3 µs", met: true })
    expect(peer.figures[0]!.value).toBe(2)
    expect(peer.baseline).toBeUndefined()
  })

  it("prints one line per case, dashes for figures a case has not", () => {
    const table = compactTable([{ id: "hot-3-all", rounds: [round({ nodesCpuUs: 90, ratio: 0.4 })] }], 20_000)
    const lines = table.split("\n")
    expect(lines).toHaveLength(3)
    expect(lines[0]).toMatch(/^case\s+req\/s\s+x bare/)
    expect(lines[1]).toMatch(/^bare\s+20000\s+1\.00/)
    expect(lines[2]).toMatch(/^hot-3-all\s+1000\s+0\.40\s+2\.00\s+9\.00\s+-\s+-\s+90\.0\s+-/)
  })
})

describe("bench/cluster command line", () => {
  it("takes cases, rounds, seconds, budget, extra role arguments and a profile directory", () => {
    const parsed = parseArgs(["--quick", "--only", "hot-1, hot-3", "--rounds", "3", "--seconds", "2", "--budget", "90.5",
      "--node-args", "--eager-push false", "--profile", "/tmp/p"])
    expect(parsed).toEqual({
      _tag: "Run",
      options: {
        quick: true,
        only: ["hot-1", "hot-3"],
        rounds: 3,
        seconds: 2,
        budgetSeconds: 90.5,
        nodeArgs: ["--eager-push", "false"],
        profileDir: "/tmp/p"
      }
    })
    expect(parseArgs([])).toEqual({ _tag: "Run", options: { quick: false } })
    expect(parseArgs(["--list"])).toEqual({ _tag: "List" })
  })

  it("refuses unknown options and cases, missing and bad values, naming the option", () => {
    const error = (argv: ReadonlyArray<string>) => {
      const p = parseArgs(argv)
      return p._tag === "Invalid" ? p.error : undefined
    }
    expect(error(["--only", "hot-2"])).toMatch(/^--only: unknown case hot-2 \(known: hot-1, gw-1/)
    expect(error(["--only", ","])).toMatch(/^--only/)
    expect(error(["--rounds", "1.5"])).toMatch(/^--rounds must be a positive integer/)
    expect(error(["--seconds", "0"])).toMatch(/^--seconds/)
    expect(error(["--budget", "soon"])).toMatch(/^--budget/)
    expect(error(["--rounds"])).toBe("--rounds needs a value")
    expect(error(["--fast"])).toBe("unknown option --fast")
  })
})
