/**
 * The cluster write path, in the configuration users run: 1, 3 and 5 dcounter node processes
 * (the built CLI) on loopback, each with a real data directory (a temporary directory on
 * disk, removed afterwards), every node knowing the others by `--peers`, gossip on with the
 * production defaults (eager push on), and a gateway (`--role gateway --nodes ...`) in front
 * of the 1-node and of the 3-node cluster. wrk -t1, 50 connections, POST `{"by":1}`:
 *
 *   - `hot-N`: one hot counter (POST /increment) on the first node of the N-node cluster
 *   - `rand-N`: random names out of 1,000,000 counters (POST /counters/c<k>/increment, k drawn
 *     per request by the wrk Lua script) on the first node
 *   - `hot-N-all`, `rand-N-all`: the same spread over all N nodes (one wrk per node, the 50
 *     connections split between them; their counts add up)
 *   - `gw-1`, `gw-3`: the hot counter through the gateway in front of 1 and of 3 nodes
 *
 * Rounds are interleaved with the bare node:http counter (bench/baseline.ts), measured in the
 * same run before every few cases (A B A B); each case's ratio is to the bare run just before
 * it, and the median over rounds is reported. Per case: req/s, p50/p99, CPU per write (from
 * /proc/<pid>/stat, all threads) of the node taking the writes, of the busiest other node per
 * remote write, and summed over every node process; the gateway's own CPU per request; and
 * from the nodes' /metrics (read before and after each run): gossip pushes, gossip bytes
 * sent and WAL appends per write, over all nodes. Writes are counted by the nodes
 * (`dcounter_writes_total`), so a write counts once it is durable.
 *
 * The derived goals of the cluster write path (writer CPU with 2 and 4 peers relative to the
 * same node alone, a peer's CPU per remote write, all nodes' CPU per write relative to a lone
 * node, node and gateway throughput relative to the bare counter) are printed and reported
 * as rows with `goal`/`met`; they are never asserted.
 *
 * All clusters run at once (idle ones cost little), so that rounds can go over every case;
 * the hot-counter cases run first in each round, the random-counter ones (which leave up to
 * tens of thousands of counters in the clusters' state for anti-entropy to carry) last.
 *
 *     npm run build && node dist/bench/cluster.js [--quick] [--only hot-1,hot-3,...] [--rounds N]
 *       [--seconds S] [--budget S] [--node-args "--push-window 5ms"] [--gateway-args "..."]
 *       [--profile DIR] [--list]
 *
 * `--only` takes case ids (`--list` prints them); `--profile DIR` runs nodes and gateways
 * under `node --cpu-prof`, leaving one profile per process in DIR. A compact table goes to
 * stderr, the markdown table to stdout.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import type { BenchOptions, BenchResult, Figure } from "./BenchResult.js"
import { figure, formatNumber, isMain, main, median, ratioOf } from "./BenchResult.js"
import type { LoadGenerator, LoadResult, Target } from "./LoadGenerator.js"
import { combineLoads, hasWrk, splitConnections, wrk } from "./LoadGenerator.js"
import type { Sample } from "./MetricsText.js"
import { parseMetrics, sumOf } from "./MetricsText.js"
import type { RoleProcess } from "./Processes.js"
import {
  cpuSeconds,
  freePorts,
  httpGet,
  removeDirectory,
  startBaseline,
  startRole,
  stopAllOnSignals,
  stopProcess,
  temporaryDirectory
} from "./Processes.js"

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
const BARE_EVERY = 4

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

const body = JSON.stringify({ by: 1 })

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
// processes

interface Cluster {
  readonly size: number
  readonly nodes: ReadonlyArray<RoleProcess>
}

interface ProcessOptions {
  readonly root: string
  readonly nodeArgs: ReadonlyArray<string>
  readonly gatewayArgs: ReadonlyArray<string>
  readonly profileDir: string | undefined
}

const profileOptions = (dir: string | undefined, name: string): ReadonlyArray<string> =>
  dir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${name}.cpuprofile`]

const alivePeers = (health: unknown): number => {
  if (typeof health !== "object" || health === null) return 0
  const peers: unknown = Reflect.get(health, "peers")
  if (typeof peers !== "object" || peers === null) return 0
  const alive: unknown = Reflect.get(peers, "alive")
  return typeof alive === "number" ? alive : 0
}

const healthyNodes = (health: unknown): number => {
  if (typeof health !== "object" || health === null) return 0
  const n: unknown = Reflect.get(health, "healthyNodes")
  return typeof n === "number" ? n : 0
}

/** `size` nodes knowing each other by `--peers`, each ready once every peer is alive to it. */
const startCluster = async (size: number, o: ProcessOptions, started: Array<RoleProcess>): Promise<Cluster> => {
  const ports = await freePorts(2 * size)
  const gossip = ports.slice(0, size).map((p) => `127.0.0.1:${p}`)
  const http = ports.slice(size).map((p) => `127.0.0.1:${p}`)
  const nodes = await Promise.all(gossip.map(async (addr, i) => {
    const node = await startRole(
      [
        "--role", "node",
        "--addr", addr,
        "--http-addr", http[i]!,
        ...(size > 1 ? ["--peers", gossip.filter((_, j) => j !== i).join(",")] : []),
        "--data-dir", Path.join(o.root, `cluster-${size}`, `node-${i}`),
        ...o.nodeArgs
      ],
      `http://${http[i]!}`,
      {
        nodeOptions: profileOptions(o.profileDir, `node-${size}-${i}`),
        ready: (health) => alivePeers(health) >= size - 1
      }
    )
    started.push(node)
    return node
  }))
  return { size, nodes }
}

const startGateway = async (cluster: Cluster, o: ProcessOptions, started: Array<RoleProcess>): Promise<RoleProcess> => {
  const [port] = await freePorts(1)
  const gateway = await startRole(
    [
      "--role", "gateway",
      "--addr", `127.0.0.1:${port}`,
      "--nodes", cluster.nodes.map((n) => n.url).join(","),
      "--refresh-interval", "1s",
      ...o.gatewayArgs
    ],
    `http://127.0.0.1:${port}`,
    {
      nodeOptions: profileOptions(o.profileDir, `gateway-${cluster.size}`),
      ready: (health) => healthyNodes(health) >= cluster.size
    }
  )
  started.push(gateway)
  return gateway
}

const snapshot = async (cluster: Cluster, gateway: RoleProcess | undefined, cpuFirst: boolean): Promise<Snapshot> => {
  const cpu = () => ({
    nodeCpu: cluster.nodes.map((n) => cpuSeconds(n.process.pid)),
    gatewayCpu: gateway === undefined ? undefined : cpuSeconds(gateway.process.pid)
  })
  const metrics = () =>
    Promise.all(cluster.nodes.map(async (n) => {
      const r = await httpGet(`${n.url}/metrics`)
      if (r.status !== 200) throw new Error(`${n.url}/metrics answered ${r.status}`)
      return parseMetrics(r.body)
    }))
  // reading /metrics costs the nodes CPU: it happens outside the CPU readings' interval
  if (cpuFirst) {
    const c = cpu()
    return { ...c, nodeMetrics: await metrics() }
  }
  const nodeMetrics = await metrics()
  return { ...cpu(), nodeMetrics }
}

// ---------------------------------------------------------------------------------------
// the benchmark

export interface ClusterBenchOptions extends BenchOptions {
  /** case ids (default: all) */
  readonly only?: ReadonlyArray<string>
  /** interleaved rounds (default 2; quick: 1) */
  readonly rounds?: number
  /** seconds of load per case and round (default 3; quick: 2) */
  readonly seconds?: number
  /** wall-time budget: runs that would end past it are left out, with a note (default 140 s) */
  readonly budgetSeconds?: number
  /** extra arguments for every node (e.g. `--eager-push false`) */
  readonly nodeArgs?: ReadonlyArray<string>
  /** extra arguments for the gateways */
  readonly gatewayArgs?: ReadonlyArray<string>
  /** run nodes and gateways under `node --cpu-prof`, leaving the profiles in this directory */
  readonly profileDir?: string
}

const CONNECTIONS = 50
const DEFAULT_BUDGET_SECONDS = 140
/** A run's wall time beyond its `-d` seconds: wrk start-up and report, the /metrics reads. */
const RUN_OVERHEAD_SECONDS = 0.8

/** The cases of a round in order, with the bare counter before every `BARE_EVERY` of them. */
export const roundPlan = (cases: ReadonlyArray<ClusterCase>): ReadonlyArray<ClusterCase | "bare"> =>
  cases.flatMap((c, i) => (i % BARE_EVERY === 0 ? ["bare" as const, c] : [c]))

/** Whether the temporary directory is on tmpfs (memory), where fdatasync costs nothing. */
const onTmpfs = (dir: string): boolean => {
  try {
    return Fs.statfsSync(dir).type === 0x01021994
  } catch {
    return false
  }
}

/** The 1, 5 and 15 minute load averages: how busy the machine was (it is shared and noisy). */
const loadAverage = (): string => Os.loadavg().map((x) => x.toFixed(2)).join(" / ")

export const run = async (options: ClusterBenchOptions = {}): Promise<ReadonlyArray<BenchResult>> => {
  const log = options.log ?? ((line: string) => process.stderr.write(line + "\n"))
  const t0 = performance.now()
  const elapsed = () => (performance.now() - t0) / 1000
  const quick = options.quick === true
  const rounds = options.rounds ?? (quick ? 1 : 2)
  const seconds = options.seconds ?? (quick ? 2 : 3)
  const warmup = 2
  const budget = options.budgetSeconds ?? DEFAULT_BUDGET_SECONDS
  const cases = options.only === undefined ? CASES : CASES.filter((c) => options.only!.includes(c.id))
  if (cases.length === 0) throw new Error(`no cases selected (known: ${CASES.map((c) => c.id).join(", ")})`)
  if (!hasWrk()) throw new Error("the cluster bench needs wrk (Debian: apt-get install -y wrk): it spreads load over several hosts and draws counter names in Lua")
  const root = temporaryDirectory("dcounter-bench-cluster-")
  const generator: LoadGenerator = wrk(root)
  const o: ProcessOptions = {
    root,
    nodeArgs: options.nodeArgs ?? [],
    gatewayArgs: options.gatewayArgs ?? [],
    profileDir: options.profileDir
  }
  const sizes = [...new Set(cases.map((c) => c.nodes))].sort((a, b) => a - b)
  const gatewaySizes = [...new Set(cases.filter((c) => c.spread === "gateway").map((c) => c.nodes))]
  log(
    `cluster: ${cases.map((c) => c.id).join(", ")}; ${rounds} round(s) of ${seconds} s per case, wrk -t1 ` +
      `-c${CONNECTIONS}; clusters of ${sizes.join(", ")} node(s)` +
      `${gatewaySizes.length > 0 ? `, gateways in front of ${gatewaySizes.join(", ")}` : ""}; budget ${budget} s; ` +
      `load average ${loadAverage()}`
  )
  const started: Array<RoleProcess> = []
  try {
    const bare = await startBaseline()
    started.push(bare)
    const clusters = new Map<number, Cluster>()
    await Promise.all(sizes.map(async (size) => clusters.set(size, await startCluster(size, o, started))))
    const gateways = new Map<number, RoleProcess>()
    await Promise.all(gatewaySizes.map(async (size) => gateways.set(size, await startGateway(clusters.get(size)!, o, started))))
    log(`cluster: ${started.length} processes up in ${elapsed().toFixed(1)} s`)

    let seed = 1
    const targetOf = (c: ClusterCase, url: string): Target => ({
      name: c.id,
      url: c.workload === "hot" ? `${url}/increment` : `${url}/counters/c0/increment`,
      method: "POST",
      body,
      ...(c.workload === "random" ? { requestLua: randomCountersLua(seed++ * 7919 + Math.floor(Math.random() * 1e6)) } : {})
    })
    /** Where a case's load goes: one URL and its connections per load generator. */
    const loadsOf = (c: ClusterCase): ReadonlyArray<{ readonly url: string; readonly connections: number }> => {
      const cluster = clusters.get(c.nodes)!
      switch (c.spread) {
        case "one":
          return [{ url: cluster.nodes[0]!.url, connections: CONNECTIONS }]
        case "gateway":
          return [{ url: gateways.get(c.nodes)!.url, connections: CONNECTIONS }]
        case "all":
          return splitConnections(CONNECTIONS, cluster.size).map((k, i) => ({ url: cluster.nodes[i]!.url, connections: k }))
      }
    }
    const loadRun = async (c: ClusterCase, secs: number): Promise<LoadResult> =>
      combineLoads(await Promise.all(loadsOf(c).map((l) => generator.run(targetOf(c, l.url), secs, l.connections))))
    const bareTarget: Target = { name: BARE_NAME, url: `${bare.url}/increment`, method: "POST", body }

    // warm-up: JIT and connections of every process, both workloads; every cluster (and
    // the bare counter) at once, which is enough for the JIT and keeps the run short
    for (const workload of ["hot", "random"] as const) {
      const warm = sizes.flatMap((size): ReadonlyArray<ClusterCase> =>
        cases.some((c) => c.nodes === size && c.workload === workload)
          ? [{ id: "warm-up", nodes: size, workload, spread: "all" }]
          : []
      )
      if (workload === "hot") warm.push(...gatewaySizes.map((size): ClusterCase => ({ id: "warm-up", nodes: size, workload, spread: "gateway" })))
      await Promise.all([
        ...warm.map((c) => loadRun(c, warmup)),
        ...(workload === "hot" ? [generator.run(bareTarget, warmup, CONNECTIONS)] : [])
      ])
    }
    log(`cluster: warmed up at ${elapsed().toFixed(1)} s`)

    const bareRuns: Array<LoadResult & { readonly cpuUs?: number | undefined }> = []
    const byCase = new Map<string, Array<CaseRound>>(cases.map((c) => [c.id, []]))
    const plan = roundPlan(cases)
    let cut = ""
    measuring: for (let round = 1; round <= rounds; round++) {
      let lastBare: number | undefined
      for (const step of plan) {
        if (elapsed() + seconds + RUN_OVERHEAD_SECONDS > budget) {
          cut = `round ${round} stopped before ${step === "bare" ? "a bare run" : step.id}: it would end past the ${budget} s budget`
          log(`cluster: ${cut}`)
          break measuring
        }
        if (step === "bare") {
          const pid = bare.process.pid
          const c0 = cpuSeconds(pid)
          const r = await generator.run(bareTarget, seconds, CONNECTIONS)
          const c1 = cpuSeconds(pid)
          const cpuUs = c0 === undefined || c1 === undefined || r.requests === 0 ? undefined : ((c1 - c0) * 1e6) / r.requests
          bareRuns.push({ ...r, cpuUs })
          lastBare = r.rps
          log(`  round ${round}/${rounds} bare: ${r.rps.toFixed(0)} req/s, p99 ${r.p99ms.toFixed(2)} ms`)
          continue
        }
        const cluster = clusters.get(step.nodes)!
        const gateway = step.spread === "gateway" ? gateways.get(step.nodes) : undefined
        const before = await snapshot(cluster, gateway, false)
        const load = await loadRun(step, seconds)
        const after = await snapshot(cluster, gateway, true)
        const r = caseRound(step, load, before, after)
        const withRatio: CaseRound = { ...r, ratio: lastBare === undefined ? undefined : ratioOf(r.load.rps, lastBare) }
        byCase.get(step.id)!.push(withRatio)
        log(
          `  round ${round}/${rounds} ${step.id}: ${r.load.rps.toFixed(0)} req/s` +
            `${withRatio.ratio === undefined ? "" : ` (${withRatio.ratio.toFixed(2)}x bare)`}, p99 ${r.load.p99ms.toFixed(2)} ms` +
            `${r.writerCpuUs === undefined ? "" : `, writer ${r.writerCpuUs.toFixed(1)} µs/w`}` +
            `${busiestPeer(r) === undefined ? "" : `, peer ${busiestPeer(r)!.toFixed(1)} µs/rw`}` +
            `${r.nodesCpuUs === undefined ? "" : `, nodes ${r.nodesCpuUs.toFixed(1)} µs/w`}` +
            `${r.gatewayCpuUs === undefined ? "" : `, gateway ${r.gatewayCpuUs.toFixed(1)} µs/req`}` +
            `, ${r.pushesPerWrite.toFixed(3)} pushes/w${r.load.failures > 0 ? `, ${r.load.failures} failures` : ""}`
        )
      }
    }
    log(`cluster: measured in ${elapsed().toFixed(1)} s; load average ${loadAverage()}`)

    const measured = cases.filter((c) => byCase.get(c.id)!.length > 0)
    const goals = clusterGoals(byCase)
    const bareRps = bareRuns.length === 0 ? undefined : median(bareRuns.map((r) => r.rps))
    log("")
    log(compactTable(measured.map((c) => ({ id: c.id, rounds: byCase.get(c.id)! })), bareRps))
    log("")
    for (const line of goalLines(goals)) log(line)

    const tmpfs = onTmpfs(root)
    const setup = `wrk -t1 -c${CONNECTIONS}, POST {"by":1}; nodes with --peers, gossip and eager push on (defaults)` +
      `${o.nodeArgs.length > 0 ? `, node args ${o.nodeArgs.join(" ")}` : ""}` +
      `${tmpfs ? "; data dirs on tmpfs (fdatasync is free there)" : ", data dirs on disk"}`
    const results: Array<BenchResult> = []
    if (bareRuns.length > 0) {
      results.push({
        bench: "cluster",
        name: BARE_NAME,
        figures: [
          figure("throughput", median(bareRuns.map((r) => r.rps)), "req/s", "higher"),
          figure("p50", median(bareRuns.map((r) => r.p50ms)), "ms", "lower"),
          figure("p99", median(bareRuns.map((r) => r.p99ms)), "ms", "lower"),
          ...(bareRuns.every((r) => r.cpuUs !== undefined)
            ? [figure("server CPU", median(bareRuns.map((r) => r.cpuUs!)), "us/req", "lower")]
            : [])
        ],
        notes: [
          `median of ${bareRuns.length} runs of ${seconds} s, one before every ${BARE_EVERY} cases of a round`,
          cut
        ].filter((s) => s !== "").join("; ")
      })
    }
    for (const c of measured) results.push(caseResult(c, byCase.get(c.id)!, seconds, setup))
    for (const g of goals) {
      if (g.value === undefined || g.relativeTo === "bare") continue // ratios to bare are on their case's row
      results.push(goalResult(g))
    }
    return results
  } finally {
    await Promise.all(started.map((p) => stopProcess(p.process)))
    removeDirectory(root)
  }
}

const caseResult = (c: ClusterCase, rounds: ReadonlyArray<CaseRound>, seconds: number, setup: string): BenchResult => {
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
      setup,
      c.spread === "all" ? `one wrk per node (${splitConnections(CONNECTIONS, c.nodes).join("+")} connections; p50 request-weighted, p99 the worst)` : "",
      c.workload === "random" ? "counter name drawn per request in the wrk Lua script" : "",
      `median of ${rounds.length} interleaved round(s) of ${seconds} s`,
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

const goalResult = (g: GoalOutcome): BenchResult => {
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

// ---------------------------------------------------------------------------------------
// command line

export type CliOptions = Omit<ClusterBenchOptions, "log">

/** The command line of `node dist/bench/cluster.js`, or the one-line error naming the bad option. */
export const parseArgs = (
  argv: ReadonlyArray<string>
): { readonly _tag: "Run"; readonly options: CliOptions } | { readonly _tag: "List" } | { readonly _tag: "Invalid"; readonly error: string } => {
  const known = new Set(["--quick", "--list", "--only", "--rounds", "--seconds", "--budget", "--node-args", "--gateway-args", "--profile"])
  const withValue = new Set(["--only", "--rounds", "--seconds", "--budget", "--node-args", "--gateway-args", "--profile"])
  const values = new Map<string, string>()
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (!known.has(a)) return { _tag: "Invalid", error: `unknown option ${a}` }
    if (!withValue.has(a)) continue
    const v = argv[i + 1]
    if (v === undefined) return { _tag: "Invalid", error: `${a} needs a value` }
    values.set(a, v)
    i++
  }
  if (argv.includes("--list")) return { _tag: "List" }
  const positive = (flag: string, integer: boolean): number | string | undefined => {
    const v = values.get(flag)
    if (v === undefined) return undefined
    const n = Number(v)
    return Number.isFinite(n) && n > 0 && (!integer || Number.isInteger(n)) ? n : `${flag} must be a positive ${integer ? "integer" : "number"}, got ${JSON.stringify(v)}`
  }
  const rounds = positive("--rounds", true)
  const seconds = positive("--seconds", true)
  const budget = positive("--budget", false)
  for (const x of [rounds, seconds, budget]) if (typeof x === "string") return { _tag: "Invalid", error: x }
  const only = values.get("--only")?.split(",").map((s) => s.trim()).filter((s) => s !== "")
  if (only !== undefined) {
    const unknown = only.filter((id) => !CASES.some((c) => c.id === id))
    if (unknown.length > 0 || only.length === 0) {
      return { _tag: "Invalid", error: `--only: unknown case ${unknown.join(", ") || "(none given)"} (known: ${CASES.map((c) => c.id).join(", ")})` }
    }
  }
  const words = (flag: string) => values.get(flag)?.split(/\s+/).filter((s) => s !== "")
  const nodeArgs = words("--node-args")
  const gatewayArgs = words("--gateway-args")
  const profileDir = values.get("--profile")
  return {
    _tag: "Run",
    options: {
      quick: argv.includes("--quick"),
      ...(only === undefined ? {} : { only }),
      ...(rounds === undefined ? {} : { rounds: rounds as number }),
      ...(seconds === undefined ? {} : { seconds: seconds as number }),
      ...(budget === undefined ? {} : { budgetSeconds: budget as number }),
      ...(nodeArgs === undefined ? {} : { nodeArgs }),
      ...(gatewayArgs === undefined ? {} : { gatewayArgs }),
      ...(profileDir === undefined ? {} : { profileDir: Path.resolve(profileDir) })
    }
  }
}

if (isMain(import.meta.url)) {
  const parsed = parseArgs(process.argv.slice(2))
  if (parsed._tag === "Invalid") {
    process.stderr.write(`cluster: ${parsed.error}\n`)
    process.exit(2)
  } else if (parsed._tag === "List") {
    for (const c of CASES) process.stdout.write(`${c.id.padEnd(11)} ${caseTitle(c)}\n`)
  } else {
    stopAllOnSignals()
    const { profileDir } = parsed.options
    if (profileDir !== undefined) Fs.mkdirSync(profileDir, { recursive: true })
    void main((options) => run({ ...parsed.options, ...options }))
  }
}
