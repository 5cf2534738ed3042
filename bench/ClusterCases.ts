/**
 * The cases of the cluster bench (bench/cluster.ts) and the figures of one run of a case,
 * computed from the load generator's result and what was read from the processes before and
 * after it (CPU time from /proc, counters from /metrics). Pure: no processes here.
 */
import { formatNumber, median } from "./BenchResult.js"
import type { LoadResult } from "./LoadGenerator.js"
import type { Sample } from "./MetricsText.js"
import { sumOf } from "./MetricsText.js"

// ---------------------------------------------------------------------------------------
// the cases

export type Workload = "hot" | "random"
/** Load on the first node, on every node (one wrk each), or on the gateway. */
export type Spread = "one" | "all" | "gateway"

export interface ClusterCase {
  readonly id: string
  readonly nodes: number
  readonly workload: Workload
  readonly spread: Spread
  /** throughput ratio to the bare counter this case should reach */
  readonly goal?: number
}

/** Every case, in the order a round runs them (hot counter first). */
export const CASES: ReadonlyArray<ClusterCase> = [
  { id: "hot-1", nodes: 1, workload: "hot", spread: "one", goal: 0.8 },
  { id: "gw-1", nodes: 1, workload: "hot", spread: "gateway", goal: 0.6 },
  { id: "hot-3", nodes: 3, workload: "hot", spread: "one", goal: 0.55 },
  { id: "hot-3-all", nodes: 3, workload: "hot", spread: "all" },
  { id: "gw-3", nodes: 3, workload: "hot", spread: "gateway", goal: 0.45 },
  { id: "hot-5", nodes: 5, workload: "hot", spread: "one" },
  { id: "hot-5-all", nodes: 5, workload: "hot", spread: "all" },
  { id: "rand-1", nodes: 1, workload: "random", spread: "one" },
  { id: "rand-3", nodes: 3, workload: "random", spread: "one" },
  { id: "rand-3-all", nodes: 3, workload: "random", spread: "all" },
  { id: "rand-5", nodes: 5, workload: "random", spread: "one" },
  { id: "rand-5-all", nodes: 5, workload: "random", spread: "all" }
]

/** How many counters the random workload draws its names from. */
export const RANDOM_COUNTERS = 1_000_000

/** The bare counter is measured again before every this many cases of a round. */
export const BARE_EVERY = 4

export const BARE_NAME = "bare node:http counter"

export const caseTitle = (c: ClusterCase): string => {
  const nodes = `${c.nodes} node${c.nodes === 1 ? "" : "s"}`
  const what = c.workload === "hot" ? "hot counter" : `random counters of ${formatNumber(RANDOM_COUNTERS)}`
  switch (c.spread) {
    case "one":
      return c.nodes === 1 ? `${nodes}, ${what}, durable POST` : `${nodes}, ${what}, load on one node`
    case "all":
      return `${nodes}, ${what}, load spread over all nodes`
    case "gateway":
      return `gateway in front of ${nodes}, ${what}`
  }
}

/** The Lua `request` builder of the random workload: a counter name drawn per request. */
export const randomCountersLua = (seed: number, counters = RANDOM_COUNTERS): string =>
  [
    `math.randomseed(${Math.floor(seed)})`,
    "request = function()",
    `  return wrk.format(nil, "/counters/c" .. math.random(0, ${counters - 1}) .. "/increment")`,
    "end"
  ].join("\n")

// ---------------------------------------------------------------------------------------
// figures of one run (pure)

/** What is read from the processes before and after a run. */
export interface Snapshot {
  /** CPU seconds of each node process (undefined where /proc cannot tell) */
  readonly nodeCpu: ReadonlyArray<number | undefined>
  readonly gatewayCpu?: number | undefined
  /** each node's /metrics samples */
  readonly nodeMetrics: ReadonlyArray<ReadonlyArray<Sample>>
}

export interface CaseRound {
  readonly load: LoadResult
  /** writes the nodes acknowledged (durable), from their `dcounter_writes_total` */
  readonly writes: number
  /** CPU µs per write of the node taking the writes (load on one node, or a lone node behind a gateway) */
  readonly writerCpuUs?: number | undefined
  /** CPU µs per remote write of each other node (load on one node) */
  readonly peerCpuUs: ReadonlyArray<number>
  /** CPU µs per write of every node process, summed */
  readonly nodesCpuUs?: number | undefined
  readonly gatewayCpuUs?: number | undefined
  /** over all nodes, per write */
  readonly pushesPerWrite: number
  readonly gossipBytesPerWrite: number
  readonly walAppendsPerWrite: number
  /** throughput / the bare counter's in the same round */
  readonly ratio?: number | undefined
}

const delta = (a: number | undefined, b: number | undefined): number | undefined =>
  a === undefined || b === undefined ? undefined : b - a

/** The sum over nodes of a counter's increase between the snapshots. */
const increase = (before: Snapshot, after: Snapshot, name: string): number =>
  after.nodeMetrics.reduce((n, samples, i) => n + sumOf(samples, name) - sumOf(before.nodeMetrics[i] ?? [], name), 0)

/**
 * The figures of one run of a case from the load generator's result and the snapshots
 * around it. The writer is node 0 when the load is on one node (or a lone node behind a
 * gateway); with the load spread, every node is both writer and peer and only the sum is
 * meaningful.
 */
export const caseRound = (c: ClusterCase, load: LoadResult, before: Snapshot, after: Snapshot): CaseRound => {
  const counted = increase(before, after, "dcounter_writes_total")
  const writes = counted > 0 ? counted : Math.max(0, load.requests - load.failures)
  const perWrite = (seconds: number | undefined): number | undefined =>
    seconds === undefined || writes === 0 ? undefined : (seconds * 1e6) / writes
  const cpu = after.nodeCpu.map((c1, i) => delta(before.nodeCpu[i], c1))
  const hasWriter = c.spread === "one" || c.nodes === 1
  const nodesCpu = cpu.some((x) => x === undefined) ? undefined : cpu.reduce((n: number, x) => n + x!, 0)
  const per = (x: number): number => (writes === 0 ? NaN : x / writes)
  return {
    load,
    writes,
    writerCpuUs: hasWriter ? perWrite(cpu[0]) : undefined,
    peerCpuUs: c.spread === "one" ? cpu.slice(1).flatMap((x) => (x === undefined || writes === 0 ? [] : [perWrite(x)!])) : [],
    nodesCpuUs: perWrite(nodesCpu),
    gatewayCpuUs: c.spread === "gateway" ? perWrite(delta(before.gatewayCpu, after.gatewayCpu)) : undefined,
    pushesPerWrite: per(increase(before, after, "dcounter_gossip_pushes_sent_total")),
    gossipBytesPerWrite: per(increase(before, after, "dcounter_bytes_out_total")),
    walAppendsPerWrite: per(increase(before, after, "dcounter_wal_appends_total"))
  }
}

/** The median over rounds of a figure, undefined when a round lacks it. */
export const medianOf = (
  rounds: ReadonlyArray<CaseRound>,
  pick: (r: CaseRound) => number | undefined
): number | undefined => {
  const xs = rounds.map(pick)
  if (xs.length === 0 || xs.some((x) => x === undefined || !Number.isFinite(x))) return undefined
  return median(xs as ReadonlyArray<number>)
}

/** The busiest other node's CPU per remote write. */
export const busiestPeer = (r: CaseRound): number | undefined =>
  r.peerCpuUs.length === 0 ? undefined : Math.max(...r.peerCpuUs)

/** The cases of a round in order, with the bare counter before every `BARE_EVERY` of them. */
export const roundPlan = (cases: ReadonlyArray<ClusterCase>): ReadonlyArray<ClusterCase | "bare"> =>
  cases.flatMap((c, i) => (i % BARE_EVERY === 0 ? ["bare" as const, c] : [c]))
