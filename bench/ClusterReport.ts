/**
 * What the cluster bench (bench/cluster.ts) reports from the measured rounds of its cases:
 * the goals of the cluster write path (met or missed, never asserted), a compact table for
 * the terminal, and the rows of the bench results. Pure: no processes here.
 */
import type { BenchResult, Figure } from "./BenchResult.js"
import { figure, median, ratioOf } from "./BenchResult.js"
import type { CaseRound, ClusterCase } from "./ClusterCases.js"
import { BARE_NAME, busiestPeer, CASES, caseTitle, medianOf } from "./ClusterCases.js"
import { splitConnections } from "./LoadGenerator.js"

// ---------------------------------------------------------------------------------------
// goals (pure)

export interface GoalOutcome {
  readonly id: string
  /** what is measured, in words */
  readonly name: string
  /** e.g. "<= 1.15x" */
  readonly goal: string
  readonly value: number | undefined
  readonly unit: "x" | "us"
  /** undefined when a case it needs was not measured */
  readonly met: boolean | undefined
  /** the cases it compares */
  readonly cases: ReadonlyArray<string>
  /** the case it is relative to, for ratios */
  readonly relativeTo?: string
}

type ByCase = ReadonlyMap<string, ReadonlyArray<CaseRound>>

/** Per round, `pick(a) / pick(b)` (rounds paired by index), then the median. */
const pairedRatio = (
  byCase: ByCase,
  a: string,
  b: string,
  pick: (r: CaseRound) => number | undefined
): number | undefined => {
  const ra = byCase.get(a) ?? []
  const rb = byCase.get(b) ?? []
  const n = Math.min(ra.length, rb.length)
  const ratios: Array<number> = []
  for (let i = 0; i < n; i++) {
    const x = pick(ra[i]!)
    const y = pick(rb[i]!)
    const r = x === undefined || y === undefined ? undefined : ratioOf(x, y)
    if (r === undefined) return undefined
    ratios.push(r)
  }
  return ratios.length === 0 ? undefined : median(ratios)
}

const atMost = (
  id: string,
  name: string,
  max: number,
  unit: "x" | "us",
  value: number | undefined,
  cases: ReadonlyArray<string>,
  relativeTo?: string
): GoalOutcome => ({
  id,
  name,
  goal: `<= ${max}${unit === "x" ? "x" : " µs"}`,
  value,
  unit,
  met: value === undefined ? undefined : value <= max,
  cases,
  ...(relativeTo === undefined ? {} : { relativeTo })
})

const atLeast = (id: string, name: string, min: number, value: number | undefined, cases: ReadonlyArray<string>): GoalOutcome => ({
  id,
  name,
  goal: `>= ${min}x bare`,
  value,
  unit: "x",
  met: value === undefined ? undefined : value >= min,
  cases,
  relativeTo: "bare"
})

/** The worst (highest) of the medians over rounds of `pick` in the given cases that were measured. */
const worstOf = (byCase: ByCase, ids: ReadonlyArray<string>, pick: (r: CaseRound) => number | undefined) => {
  const values = ids.flatMap((id) => {
    const rounds = byCase.get(id)
    const v = rounds === undefined ? undefined : medianOf(rounds, pick)
    return v === undefined ? [] : [v]
  })
  return values.length === 0 ? undefined : Math.max(...values)
}

/** The goals of the cluster write path, from the measured rounds of each case. */
export const clusterGoals = (byCase: ByCase): ReadonlyArray<GoalOutcome> => {
  const writer = (r: CaseRound) => r.writerCpuUs
  const nodes = (r: CaseRound) => r.nodesCpuUs
  const ratio = (id: string) => {
    const rounds = byCase.get(id)
    return rounds === undefined ? undefined : medianOf(rounds, (r) => r.ratio)
  }
  return [
    atMost("writer-hot-2", "writer CPU per write, 2 peers / alone, hot counter", 1.15, "x",
      pairedRatio(byCase, "hot-3", "hot-1", writer), ["hot-3", "hot-1"], "hot-1"),
    atMost("writer-hot-4", "writer CPU per write, 4 peers / alone, hot counter", 1.15, "x",
      pairedRatio(byCase, "hot-5", "hot-1", writer), ["hot-5", "hot-1"], "hot-1"),
    atMost("writer-rand-2", "writer CPU per write, 2 peers / alone, random counters", 1.3, "x",
      pairedRatio(byCase, "rand-3", "rand-1", writer), ["rand-3", "rand-1"], "rand-1"),
    atMost("writer-rand-4", "writer CPU per write, 4 peers / alone, random counters", 1.3, "x",
      pairedRatio(byCase, "rand-5", "rand-1", writer), ["rand-5", "rand-1"], "rand-1"),
    atMost("peer-hot", "a peer's CPU per remote write, hot counter (busiest peer, 3 and 5 nodes)", 3, "us",
      worstOf(byCase, ["hot-3", "hot-5"], busiestPeer), ["hot-3", "hot-5"]),
    atMost("peer-rand", "a peer's CPU per remote write, random counters (busiest peer, 3 and 5 nodes)", 8, "us",
      worstOf(byCase, ["rand-3", "rand-5"], busiestPeer), ["rand-3", "rand-5"]),
    atMost("nodes-hot-3", "all nodes' CPU per write summed, 3 nodes / lone node, hot counter", 1.3, "x",
      pairedRatio(byCase, "hot-3", "hot-1", nodes), ["hot-3", "hot-1"], "hot-1"),
    atLeast("post-1", "node durable POST alone / bare", 0.8, ratio("hot-1"), ["hot-1"]),
    atLeast("post-3", "node durable POST in the 3-node cluster / bare", 0.55, ratio("hot-3"), ["hot-3"]),
    atLeast("gw-1", "gateway in front of 1 node / bare", 0.6, ratio("gw-1"), ["gw-1"]),
    atLeast("gw-3", "gateway in front of 3 nodes / bare", 0.45, ratio("gw-3"), ["gw-3"])
  ]
}

const formatGoalValue = (g: GoalOutcome): string =>
  g.value === undefined ? "not measured" : g.unit === "x" ? `${g.value.toFixed(2)}x` : `${g.value.toFixed(1)} µs`

/** One line per goal: what, the goal, the measured value, met/missed. */
export const goalLines = (goals: ReadonlyArray<GoalOutcome>): ReadonlyArray<string> =>
  goals.map((g) =>
    `${g.met === undefined ? "  -   " : g.met ? "  met " : "MISSED"} ${g.name}: ${formatGoalValue(g)} (goal ${g.goal})`
  )

// ---------------------------------------------------------------------------------------
// the compact table (stderr)

const cellOf = (x: number | undefined, digits: number): string =>
  x === undefined || !Number.isFinite(x) ? "-" : x.toFixed(digits)

/** A fixed-width table of the cases, one line each. */
export const compactTable = (
  rows: ReadonlyArray<{ readonly id: string; readonly rounds: ReadonlyArray<CaseRound> }>,
  bareRps: number | undefined
): string => {
  const header = ["case", "req/s", "x bare", "p50 ms", "p99 ms", "writer µs/w", "peer µs/rw", "nodes µs/w", "gw µs/req",
    "push/w", "gossip B/w", "wal/w", "fail"]
  const lines: Array<ReadonlyArray<string>> = [header]
  if (bareRps !== undefined) lines.push(["bare", bareRps.toFixed(0), "1.00", "", "", "", "", "", "", "", "", "", ""])
  for (const { id, rounds } of rows) {
    const m = (pick: (r: CaseRound) => number | undefined) => medianOf(rounds, pick)
    lines.push([
      id,
      cellOf(m((r) => r.load.rps), 0),
      cellOf(m((r) => r.ratio), 2),
      cellOf(m((r) => r.load.p50ms), 2),
      cellOf(m((r) => r.load.p99ms), 2),
      cellOf(m((r) => r.writerCpuUs), 1),
      cellOf(m(busiestPeer), 1),
      cellOf(m((r) => r.nodesCpuUs), 1),
      cellOf(m((r) => r.gatewayCpuUs), 1),
      cellOf(m((r) => r.pushesPerWrite), 3),
      cellOf(m((r) => r.gossipBytesPerWrite), 1),
      cellOf(m((r) => r.walAppendsPerWrite), 3),
      String(rounds.reduce((n, r) => n + r.load.failures, 0))
    ])
  }
  const widths = header.map((_, i) => Math.max(...lines.map((l) => (l[i] ?? "").length)))
  return lines.map((l) => l.map((s, i) => (i === 0 ? s.padEnd(widths[i]!) : s.padStart(widths[i]!))).join("  ")).join("\n")
}

// ---------------------------------------------------------------------------------------
// result rows

/**
 * The row of one case: the medians over its rounds, the ratio to the bare counter and the
 * case's own goal; `setup` says how it was run.
 */
export const caseResult = (
  c: ClusterCase,
  rounds: ReadonlyArray<CaseRound>,
  run: { readonly seconds: number; readonly connections: number; readonly setup: string }
): BenchResult => {
  const m = (pick: (r: CaseRound) => number | undefined) => medianOf(rounds, pick)
  const opt = (name: string, value: number | undefined, unit: string): ReadonlyArray<Figure> =>
    value === undefined ? [] : [figure(name, value, unit, "lower")]
  const ratio = m((r) => r.ratio)
  const failures = rounds.reduce((n, r) => n + r.load.failures, 0)
  const peers = rounds.map((r) => r.peerCpuUs.map((x) => x.toFixed(1)).join("/")).filter((s) => s !== "")
  const result: BenchResult = {
    bench: "cluster",
    name: caseTitle(c),
    figures: [
      figure("throughput", m((r) => r.load.rps) ?? NaN, "req/s", "higher"),
      ...opt("p50", m((r) => r.load.p50ms), "ms"),
      ...opt("p99", m((r) => r.load.p99ms), "ms"),
      ...opt("writer CPU", m((r) => r.writerCpuUs), "us/write"),
      ...opt("busiest peer CPU", m(busiestPeer), "us/remote write"),
      ...opt("all nodes CPU", m((r) => r.nodesCpuUs), "us/write"),
      ...opt("gateway CPU", m((r) => r.gatewayCpuUs), "us/req"),
      ...opt("gossip pushes", m((r) => r.pushesPerWrite), "/write"),
      ...opt("gossip bytes sent", m((r) => r.gossipBytesPerWrite), "B/write"),
      ...opt("WAL appends", m((r) => r.walAppendsPerWrite), "/write")
    ],
    notes: [
      `case ${c.id}`,
      run.setup,
      c.spread === "all" ? `one wrk per node (${splitConnections(run.connections, c.nodes).join("+")} connections; p50 request-weighted, p99 the worst)` : "",
      c.workload === "random" ? "counter name drawn per request in the wrk Lua script" : "",
      `median of ${rounds.length} interleaved round(s) of ${run.seconds} s`,
      rounds.length > 1 && rounds.every((r) => r.ratio !== undefined)
        ? `per-round ratios ${rounds.map((r) => r.ratio!.toFixed(2)).join(", ")}`
        : "",
      peers.length > 0 ? `each peer's CPU per remote write by round (us): ${peers.join("; ")}` : "",
      `${rounds.reduce((n, r) => n + r.writes, 0)} writes counted by the nodes`,
      failures > 0 ? `${failures} failed requests` : ""
    ].filter((s) => s !== "").join("; ")
  }
  if (ratio === undefined) return result
  const withRatio: BenchResult = { ...result, baseline: BARE_NAME, ratio }
  return c.goal === undefined ? withRatio : { ...withRatio, goal: `>= ${c.goal}x baseline`, met: ratio >= c.goal }
}

/** The row of a goal that compares cases (a measured goal only). */
export const goalResult = (g: GoalOutcome): BenchResult => {
  const relative = g.relativeTo === undefined ? undefined : CASES.find((c) => c.id === g.relativeTo)
  return {
    bench: "cluster",
    name: `goal: ${g.name}`,
    figures: [g.unit === "x" ? figure("ratio", g.value!, "x", "lower") : figure("CPU", g.value!, "us/remote write", "lower")],
    ...(relative === undefined ? {} : { baseline: caseTitle(relative), ratio: g.value! }),
    goal: g.goal,
    met: g.met!,
    notes: `from cases ${g.cases.join(", ")}${g.unit === "x" ? " (per-round ratios, median)" : " (median over rounds, the worst case)"}`
  }
}
