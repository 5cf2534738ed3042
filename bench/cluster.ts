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
 * All clusters run at once (idle ones cost little: what an idle node spends is read during
 * the bare runs and reported), so that rounds can go over every case; the hot-counter cases
 * run first in each round, the random-counter ones (which leave tens of thousands of counters
 * in the clusters' state for anti-entropy to carry) last. The whole run keeps to a wall-time
 * budget (140 s by default, under its 180 s bound in the suite): runs that would end past it
 * are left out, with a note. The cases and the figures of a run are in ClusterCases.ts, the
 * goals and rows in ClusterReport.ts.
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
import type { BenchOptions, BenchResult } from "./BenchResult.js"
import { isMain, loadFigures, main, median, ratioOf } from "./BenchResult.js"
import type { CaseRound, ClusterCase, Snapshot } from "./ClusterCases.js"
import { BARE_EVERY, BARE_NAME, busiestPeer, CASES, caseRound, caseTitle, randomCountersLua, roundPlan } from "./ClusterCases.js"
import { caseResult, clusterGoals, compactTable, goalLines, goalResult, noiseWarning } from "./ClusterReport.js"
import type { LoadGenerator, LoadResult, Target } from "./LoadGenerator.js"
import { combineLoads, hasWrk, splitConnections, wrk } from "./LoadGenerator.js"
import { parseMetrics } from "./MetricsText.js"
import type { RoleProcess } from "./Processes.js"
import {
  cpuSeconds,
  freePorts,
  httpGet,
  removeDirectory,
  startBaseline,
  startRole,
  stopAll,
  stopAllOnSignals,
  temporaryDirectory
} from "./Processes.js"

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

/**
 * How long a node may take to be ready (its peers alive to it), a gateway to see its nodes:
 * a dozen processes start at once, and on a loaded 2-core machine that takes a while.
 */
const READY_WITHIN_MS = 90_000

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

/**
 * `size` nodes knowing each other by `--peers`, each ready once every peer is alive to it;
 * `ports`: 2 x size free ports (gossip, then HTTP).
 */
const startCluster = async (
  size: number,
  ports: ReadonlyArray<number>,
  o: ProcessOptions,
  started: Array<RoleProcess>
): Promise<Cluster> => {
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
        ready: (health) => alivePeers(health) >= size - 1,
        withinMs: READY_WITHIN_MS
      }
    )
    started.push(node)
    return node
  }))
  return { size, nodes }
}

const startGateway = async (
  cluster: Cluster,
  port: number,
  o: ProcessOptions,
  started: Array<RoleProcess>
): Promise<RoleProcess> => {
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
      ready: (health) => healthyNodes(health) >= cluster.size,
      withinMs: READY_WITHIN_MS
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
const body = JSON.stringify({ by: 1 })
const DEFAULT_BUDGET_SECONDS = 140
/** A run's wall time beyond its `-d` seconds: wrk start-up and report, the /metrics reads. */
const RUN_OVERHEAD_SECONDS = 0.8

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
  const loadAtStart = Os.loadavg()[0] ?? 0
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
    // every port at once, so that no two processes are given the same one
    const ports = [...(await freePorts(2 * sizes.reduce((a, b) => a + b, 0) + gatewaySizes.length))]
    const take = (n: number): ReadonlyArray<number> => ports.splice(0, n)
    const clusters = new Map<number, Cluster>()
    await Promise.all(sizes.map((size) => {
      const mine = take(2 * size)
      return startCluster(size, mine, o, started).then((c) => clusters.set(size, c))
    }))
    const gateways = new Map<number, RoleProcess>()
    await Promise.all(gatewaySizes.map((size) => {
      const [port] = take(1)
      return startGateway(clusters.get(size)!, port!, o, started).then((g) => gateways.set(size, g))
    }))
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
    /** CPU ms per second of each idle node during the bare runs */
    const idleNodeMillis: Array<number> = []
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
          // the nodes are idle meanwhile: what they spend on timers (heartbeats, anti-entropy)
          const idle = [...clusters.values()].flatMap((c) => c.nodes.map((n) => n.process.pid))
          const c0 = cpuSeconds(pid)
          const i0 = idle.map(cpuSeconds)
          const w0 = performance.now()
          const r = await generator.run(bareTarget, seconds, CONNECTIONS)
          const c1 = cpuSeconds(pid)
          const i1 = idle.map(cpuSeconds)
          const wall = (performance.now() - w0) / 1000
          const cpuUs = c0 === undefined || c1 === undefined || r.requests === 0 ? undefined : ((c1 - c0) * 1e6) / r.requests
          bareRuns.push({ ...r, cpuUs })
          idleNodeMillis.push(...i1.flatMap((c, i) => (c === undefined || i0[i] === undefined ? [] : [((c - i0[i]!) * 1000) / wall])))
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
    const idleNote = idleNodeMillis.length === 0
      ? ""
      : `an idle node (while the bare counter ran) spent ${median(idleNodeMillis).toFixed(1)} ms of CPU per second ` +
        `(median; max ${Math.max(...idleNodeMillis).toFixed(1)}): part of every node's CPU per write, more so at low throughput`
    if (idleNote !== "") log(`note: ${idleNote}`)
    const noise = noiseWarning(
      bareRuns.map((r) => r.rps),
      Math.max(loadAtStart, Os.loadavg()[0] ?? 0),
      Os.cpus().length
    ) ?? ""
    if (noise !== "") log(`warning: ${noise}`)

    const tmpfs = onTmpfs(root)
    const setup = `wrk -t1 -c${CONNECTIONS}, POST {"by":1}; nodes with --peers, gossip and eager push on (defaults)` +
      `${o.nodeArgs.length > 0 ? `, node args ${o.nodeArgs.join(" ")}` : ""}` +
      `${tmpfs ? "; data dirs on tmpfs (fdatasync is free there)" : ", data dirs on disk"}`
    const results: Array<BenchResult> = []
    if (bareRuns.length > 0) {
      results.push({
        bench: "cluster",
        name: BARE_NAME,
        figures: loadFigures(bareRuns, bareRuns.map((r) => r.cpuUs)),
        notes: [
          `median of ${bareRuns.length} runs of ${seconds} s, one before every ${BARE_EVERY} cases of a round`,
          idleNote,
          noise,
          cut
        ].filter((s) => s !== "").join("; ")
      })
    }
    for (const c of measured) results.push(caseResult(c, byCase.get(c.id)!, { seconds, connections: CONNECTIONS, setup }))
    for (const g of goals) {
      if (g.value === undefined || g.relativeTo === "bare") continue // ratios to bare are on their case's row
      results.push(goalResult(g))
    }
    return results
  } finally {
    // every process started here, also one still starting when another failed to
    await stopAll()
    removeDirectory(root)
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
