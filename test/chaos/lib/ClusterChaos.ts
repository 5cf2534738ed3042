/**
 * The main chaos scenario: discovery, N nodes (each on its own loopback address) and the
 * gateway under a bounded workload while faults are mixed at random: kill -9 and restart,
 * SIGTERM and restart, partitions between groups of nodes (iptables), discovery killed for
 * a long stretch and restarted empty, one node restarted on a wiped data directory. Then
 * the network heals, the workload stops, the cluster settles, and every node's value of
 * every counter is checked against the ledger's bounds.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { checkBounds, checkState, snapshot, waitConverged } from "./Checker.js"
import { Cluster, type NodeService } from "./Cluster.js"
import { Firewall, type PartitionMode } from "./Firewall.js"
import { pollUntil } from "./Http.js"
import { Prng } from "./Prng.js"
import { crashes, sleep } from "./Proc.js"
import type { Summary } from "./Summary.js"
import { type Target, Workload } from "./Workload.js"

export interface ChaosOptions {
  readonly runDir: string
  readonly seed: number
  readonly nodes: number
  /** how long faults are injected while the workload runs */
  readonly faultMs: number
  readonly minKills: number
  readonly discoveryOutageMs: number
  readonly settleTimeoutMs: number
  readonly counters: ReadonlyArray<string>
  readonly clusterKey?: string
}

export const CHAOS_COUNTERS = ["default", "likes", "views:home", "stock.item-7", "quota_A-1"] as const

const AREA = "cluster"

export const runClusterChaos = async (o: ChaosOptions, summary: Summary): Promise<void> => {
  const rng = new Prng(o.seed, "cluster")
  const faultRng = rng.fork("faults")
  const timeline = path.join(o.runDir, "timeline.log")
  const t0 = Date.now()
  const log = (line: string): void => {
    const text = `+${((Date.now() - t0) / 1000).toFixed(2)}s ${line}`
    fs.appendFileSync(timeline, `${text}\n`)
    if (process.env["CHAOS_VERBOSE"] === "1") console.log(text)
  }

  const cluster = await Cluster.create({
    runDir: o.runDir,
    nodes: o.nodes,
    discovery: true,
    gateway: true,
    ...(o.clusterKey === undefined ? {} : { clusterKey: o.clusterKey }),
    nodeArgs: [
      "--sync-interval",
      "500ms",
      "--full-sync-interval",
      "3s",
      "--heartbeat-interval",
      "250ms",
      "--max-fails",
      "3",
      "--failure-timeout",
      "3s"
    ],
    discoveryArgs: ["--peer-ttl", "2s"],
    gatewayArgs: ["--refresh-interval", "500ms"]
  })
  const firewall = Firewall.create()
  const nodes = cluster.nodes
  const gateway = cluster.gateway!
  const discovery = cluster.discovery!
  summary.nodeNames = nodes.map((n) => n.name)
  log(`run dir ${o.runDir}; nodes ${nodes.map((n) => `${n.name}=${n.gossipAddr}/http ${n.httpAddr}`).join(" ")}`)

  const targets: Array<Target> = [
    ...nodes.map((n) => ({ name: n.name, kind: "node" as const, host: n.host, port: n.httpPort })),
    { name: "gateway", kind: "gateway" as const, host: gateway.host, port: gateway.httpPort }
  ]
  // each node's current replica id, by name and by HTTP address, to attribute ops on default
  const replicas = new Map<string, string>()
  const workload = new Workload(
    rng.fork("workload"),
    () => targets,
    {
      clients: 6,
      pauseMs: 15,
      maxOps: 60_000,
      timeoutMs: 4000,
      counters: o.counters,
      gatewayShare: 0.3
    },
    (key) => replicas.get(key)
  )

  try {
    await cluster.start()
    for (const n of nodes) await learnReplica(n, replicas)
    log(`cluster started; replicas ${JSON.stringify(Object.fromEntries(nodes.map((n) => [n.name, replicas.get(n.name)])))}`)
    // every node must see the others before the faults start, so the baseline is sane
    await pollUntil("discovery lists every node", 20_000, 200, async () => {
      const peers = (await discovery.getJson("/peers")) as Array<{ addr?: string }>
      return nodes.every((n) => peers.some((p) => p.addr === n.gossipAddr)) ? true : undefined
    })
    workload.start()

    const faultsDone = runFaults({ o, cluster, firewall, workload, rng: faultRng, summary, log, replicas })
    await faultsDone
    log(`faults done; ${workload.issuedOps} ops issued`)

    // settle: network whole, everything running, writes stopped
    await firewall.heal()
    if (!discovery.running) {
      discovery.proc.start()
      await discovery.waitReady(RESTART_TIMEOUT_MS)
    }
    for (const n of nodes) {
      if (!n.running) {
        n.proc.start()
        await n.waitReady(RESTART_TIMEOUT_MS)
      } else await n.waitReady(RESTART_TIMEOUT_MS)
    }
    await workload.stop()
    log(`workload stopped: ${JSON.stringify(workload.ledger.outcomes)}`)
    summary.ledger = workload.ledger

    const settled = await waitConverged(nodes, o.counters, o.settleTimeoutMs)
    summary.figure("cluster convergence after faults (ms)", settled.converged ? settled.ms : `not within ${settled.ms}`)
    summary.check(
      AREA,
      "all nodes agree on every counter after the faults stop",
      settled.converged,
      settled.converged ? `${settled.ms}ms` : describeDisagreement(settled.last)
    )
    const { verdicts, problems } = checkBounds(workload.ledger, nodes, settled.last)
    summary.verdicts = verdicts
    summary.check(AREA, "every counter within [acked - indeterminate, acked + indeterminate] on every node", problems.length === 0, problems.join("; "))
    for (const n of nodes) {
      const bad = await checkState(n).catch((e: unknown) => String(e))
      summary.check(AREA, `${n.name} /state is consistent`, bad === undefined, bad ?? "")
    }
    const perReplica = await checkReplicaTotals(workload, nodes)
    summary.check(
      AREA,
      "default: every replica's increment and decrement totals within [acked, acked + indeterminate] on every node",
      perReplica.problems.length === 0,
      perReplica.problems.length === 0 ? `${perReplica.replicas} replicas checked` : perReplica.problems.slice(0, 5).join("; ")
    )
    const gw = (await gateway.getJson("/counter").catch(() => undefined)) as { value?: number } | undefined
    const nodeDefault = settled.last.values.get(nodes[0]!.name)?.get("default") ?? 0
    summary.check(AREA, "gateway /counter equals the nodes' value", gw?.value === nodeDefault, `gateway ${gw?.value}, nodes ${nodeDefault}`)
    summary.check(
      AREA,
      "no 2xx/4xx answer broke the contract's shapes",
      workload.ledger.violations.length === 0,
      workload.ledger.violations.slice(0, 5).join("; ")
    )
    summary.figure("ops issued", workload.issuedOps)
    summary.figure("ops acknowledged by nodes / by the gateway", `${workload.ackedByKind.node} / ${workload.ackedByKind.gateway}`)
    // the bounds prove nothing about a workload that got no answers
    const quiet = o.counters.filter((c) => {
      const l = workload.ledger.counter(c)
      return l.ackedInc === 0 || l.ackedDec === 0
    })
    summary.check(
      AREA,
      "the workload was acknowledged on every counter, by nodes and by the gateway",
      quiet.length === 0 && workload.ackedByKind.node >= 500 && workload.ackedByKind.gateway >= 100,
      `counters without acked increments and decrements: ${quiet.join(",") || "none"}; acked by nodes ${workload.ackedByKind.node}, by the gateway ${workload.ackedByKind.gateway}`
    )
  } finally {
    await workload.stop().catch(() => undefined)
    await firewall.heal().catch(() => undefined)
    firewall.close()
    await cluster.stop()
    log(`stopped; crashes so far ${crashes.length}`)
  }
}

const describeDisagreement = (s: Awaited<ReturnType<typeof snapshot>>): string => {
  const parts = [...s.values.entries()].map(([n, v]) => `${n}: ${JSON.stringify(Object.fromEntries(v))}`)
  return [...s.errors, ...parts].join("; ").slice(0, 2000)
}

const learnReplica = async (n: NodeService, replicas: Map<string, string>): Promise<void> => {
  const id = ((await n.getJson("/state")) as { nodeId?: unknown }).nodeId
  if (typeof id !== "string") throw new Error(`${n.name} /state has no nodeId`)
  replicas.set(n.name, id)
  replicas.set(n.httpAddr, id)
}

/**
 * GET /state shows the default counter's totals per replica, so each acknowledged op is
 * checked where it landed: a lost ack cannot hide behind another replica's indeterminate
 * ops, nor an increment behind a decrement.
 */
const checkReplicaTotals = async (workload: Workload, nodes: ReadonlyArray<NodeService>): Promise<{ problems: Array<string>; replicas: number }> => {
  const ledger = workload.ledger
  const problems: Array<string> = []
  let replicas = 0
  for (const n of nodes) {
    const st = (await n.getJson("/state")) as { increments?: Record<string, number>; decrements?: Record<string, number> }
    const ids = new Set([...ledger.replicas.keys(), ...Object.keys(st.increments ?? {}), ...Object.keys(st.decrements ?? {})])
    replicas = Math.max(replicas, ids.size)
    for (const id of ids) {
      const l = ledger.replicas.get(id) ?? { ackedInc: 0, ackedDec: 0, indetInc: 0, indetDec: 0 }
      const inc = st.increments?.[id] ?? 0
      const dec = st.decrements?.[id] ?? 0
      if (inc < l.ackedInc || inc > l.ackedInc + l.indetInc + ledger.unknown.indetInc) {
        problems.push(`${n.name}: replica ${id} increments ${inc}, acked ${l.ackedInc}, indeterminate ${l.indetInc} (+${ledger.unknown.indetInc} unknown)`)
      }
      if (dec < l.ackedDec || dec > l.ackedDec + l.indetDec + ledger.unknown.indetDec) {
        problems.push(`${n.name}: replica ${id} decrements ${dec}, acked ${l.ackedDec}, indeterminate ${l.indetDec} (+${ledger.unknown.indetDec} unknown)`)
      }
    }
  }
  return { problems, replicas }
}

interface FaultContext {
  readonly replicas: Map<string, string>
  readonly o: ChaosOptions
  readonly cluster: Cluster
  readonly firewall: Firewall
  readonly workload: Workload
  readonly rng: Prng
  readonly summary: Summary
  readonly log: (line: string) => void
}

const MIN_SIGTERMS = 3

/** Bound on a restart: seconds on an idle machine, much longer when others load the CPUs. */
const RESTART_TIMEOUT_MS = 120_000

const restart = async (ctx: FaultContext, n: NodeService, why: string): Promise<void> => {
  n.proc.start()
  try {
    await n.waitReady(RESTART_TIMEOUT_MS)
    await learnReplica(n, ctx.replicas)
  } catch (e) {
    ctx.summary.check(AREA, `${n.name} restarts after ${why}`, false, String(e))
    throw e
  }
}

const runFaults = async (ctx: FaultContext): Promise<void> => {
  const { o, cluster, firewall, rng, summary, log } = ctx
  const nodes = cluster.nodes
  const start = Date.now()
  const end = start + o.faultMs
  const elapsed = () => Date.now() - start
  const restarting = new Map<NodeService, Promise<void>>()
  let kills = 0
  let partitionTask: Promise<void> | undefined
  let partitionUntil = 0
  let sigtermMaxMs = 0
  let sigterms = 0

  // discovery outage: one long stretch, started at a random point of the first half
  const outageAt = rng.int(Math.floor(o.faultMs * 0.1), Math.floor(o.faultMs * 0.35))
  const outageTask = (async (): Promise<void> => {
    await sleep(outageAt)
    const d = cluster.discovery!
    log(`FAULT discovery kill -9 for ${o.discoveryOutageMs}ms`)
    await d.proc.kill9()
    summary.fault("discovery killed (long outage), restarted empty")
    await sleep(o.discoveryOutageMs)
    d.proc.start()
    await d.waitReady(RESTART_TIMEOUT_MS)
    log("discovery restarted (empty)")
    // nodes that were up when discovery came back must register again within a few
    // heartbeats (250ms here; allow 5s); a node killed or restarting meanwhile is excluded,
    // it registers when it is up again
    const started = Date.now()
    const upAt = new Map(nodes.filter((n) => n.running && !restarting.has(n)).map((n) => [n, n.proc.starts]))
    const listed = await pollUntil("every node that was up registered again", 10_000, 100, async () => {
      const peers = (await d.getJson("/peers")) as Array<{ addr?: string }>
      const eligible = [...upAt].filter(([n, starts]) => n.running && n.proc.starts === starts).map(([n]) => n)
      return eligible.every((n) => peers.some((p) => p.addr === n.gossipAddr)) ? Date.now() - started : undefined
    }).catch((e: unknown) => {
      summary.check(AREA, "nodes register again after discovery restarts empty", false, String(e))
      return undefined
    })
    if (listed !== undefined) {
      summary.check(AREA, "nodes register again after discovery restarts empty", listed <= 5000, `${listed}ms`)
      summary.figure("re-registration after discovery restart (ms)", listed)
    }
  })().catch((e: unknown) => {
    summary.check(AREA, "discovery restarts after its outage", false, String(e))
  })

  const wipeAt = rng.int(Math.floor(o.faultMs * 0.45), Math.floor(o.faultMs * 0.7))
  let wiped = false

  // the phase lasts faultMs, longer (up to twice) only if kills or SIGTERMs are still short
  const hardEnd = start + 2 * o.faultMs
  while (Date.now() < end || ((kills < o.minKills || sigterms < MIN_SIGTERMS) && Date.now() < hardEnd)) {
    const remaining = Math.max(0, end - Date.now())
    const killsBehind = o.minKills - kills
    // faults that are due take priority
    if (!wiped && elapsed() >= wipeAt) {
      if (partitionTask !== undefined) await partitionTask
      await Promise.all(restarting.values())
      await wipeOne(ctx, rng.pick(nodes))
      wiped = true
      continue
    }
    const mustKill = killsBehind > 0 && remaining < killsBehind * 2500
    // at least MIN_SIGTERMS graceful restarts too
    const mustTerm = !mustKill && sigterms < MIN_SIGTERMS && remaining < (MIN_SIGTERMS - sigterms) * 10_000
    const drawn = rng.float()
    const r = mustTerm ? 0.6 : drawn
    const down = nodes.filter((n) => !n.running || restarting.has(n)).length
    const maxDown = Math.floor(nodes.length / 2)
    if ((mustKill || r < 0.5) && down < maxDown) {
      const double = rng.bool(0.2) && maxDown - down >= 2
      const victims = rng.shuffle(nodes.filter((n) => n.running && !restarting.has(n))).slice(0, double ? 2 : 1)
      log(`FAULT kill -9 ${victims.map((v) => v.name).join(",")}`)
      await Promise.all(victims.map((v) => v.proc.kill9()))
      kills += victims.length
      summary.fault("node kill -9 + restart", victims.length)
      // restart in the background after a while, so faults overlap
      for (const v of victims) {
        const downFor = rng.int(50, 2500)
        restarting.set(
          v,
          (async () => {
            await sleep(downFor)
            try {
              await restart(ctx, v, "kill -9")
              log(`restarted ${v.name} (down ${downFor}ms)`)
            } catch (e) {
              log(`restart of ${v.name} FAILED: ${String(e)}`)
            } finally {
              restarting.delete(v)
            }
          })()
        )
      }
    } else if ((mustKill || r < 0.5) && down >= maxDown) {
      // too many down: wait for one restart
      if (restarting.size > 0) await Promise.race(restarting.values())
      else await sleep(200)
    } else if (r < 0.65) {
      const candidates = nodes.filter((n) => n.running && !restarting.has(n))
      if (candidates.length === 0 || down >= maxDown) {
        await sleep(200)
        continue
      }
      const v = rng.pick(candidates)
      log(`FAULT SIGTERM ${v.name}`)
      const exit = await v.proc.term(5000)
      summary.fault("node SIGTERM + restart")
      sigterms++
      sigtermMaxMs = Math.max(sigtermMaxMs, exit?.ms ?? 0)
      const ok = exit !== undefined && exit.code === 0 && exit.ms <= 3000
      summary.check(AREA, `${v.name} exits 0 within 3s of SIGTERM`, ok, JSON.stringify(exit))
      await sleep(rng.int(50, 800))
      await restart(ctx, v, "SIGTERM")
      log(`restarted ${v.name}`)
    } else if (r < 0.85 && partitionTask === undefined) {
      const shuffled = rng.shuffle(nodes)
      const cut = rng.int(1, nodes.length - 1)
      const groups = [shuffled.slice(0, cut), shuffled.slice(cut)]
      const mode: PartitionMode = rng.bool(0.6) ? "drop" : "reject"
      const hold = rng.int(2000, 8000)
      log(`FAULT partition (${mode}) ${groups.map((g) => g.map((n) => n.name).join("+")).join(" | ")} for ${hold}ms`)
      await firewall.partition(
        groups.map((g) => g.map((n) => n.host)),
        mode
      )
      summary.fault(`partition (${mode}) + heal`)
      partitionUntil = Date.now() + hold
      partitionTask = (async () => {
        await sleep(Math.max(0, partitionUntil - Date.now()))
        await firewall.heal()
        log("healed partition")
        partitionTask = undefined
      })()
    } else {
      await sleep(rng.int(200, 1000))
    }
    await sleep(rng.int(200, 1200))
  }
  if (partitionTask !== undefined) await partitionTask
  await Promise.all(restarting.values())
  await outageTask
  if (!wiped) await wipeOne(ctx, rng.pick(nodes))
  summary.figure("SIGTERM exit time, max (ms)", sigtermMaxMs)
  summary.check(AREA, `at least ${o.minKills} kill -9 of nodes`, kills >= o.minKills, `${kills}`)
  summary.check(AREA, `at least ${MIN_SIGTERMS} SIGTERM restarts of nodes`, sigterms >= MIN_SIGTERMS, `${sigterms}`)
}

/**
 * Restarts one node on a wiped data directory. Writes are paused and the cluster is let
 * to converge first, so everything the node acknowledged has reached its peers; the cluster's values must be exactly the same
 * afterwards on every node, the wiped one included (no loss, no double count).
 */
const wipeOne = async (ctx: FaultContext, victim: NodeService): Promise<void> => {
  const { cluster, workload, summary, log, firewall, o } = ctx
  const nodes = cluster.nodes
  log(`FAULT wipe ${victim.name}: pausing all writes`)
  await firewall.heal()
  const everyone = [...nodes.map((n) => n.name), "gateway"]
  await workload.quiesce(everyone)
  for (const n of nodes) if (!n.running) await restart(ctx, n, "a fault before the wipe")
  const before = await waitConverged(nodes, o.counters, 30_000)
  summary.check(AREA, "cluster converges before the wipe", before.converged, before.converged ? `${before.ms}ms` : describeDisagreement(before.last))
  const oldId = ((await victim.getJson("/state")) as { nodeId?: string }).nodeId
  await victim.proc.kill9()
  victim.wipeData()
  summary.fault("node restarted on a wiped data directory")
  await restart(ctx, victim, "a wiped data directory")
  const after = await waitConverged(nodes, o.counters, 30_000)
  const newId = ((await victim.getJson("/state")) as { nodeId?: string }).nodeId
  const same = o.counters.every((c) =>
    nodes.every((n) => (after.last.values.get(n.name)?.get(c) ?? 0) === (before.last.values.get(nodes[0]!.name)?.get(c) ?? 0))
  )
  summary.check(
    AREA,
    "after the wipe every node reports exactly the values from before (no loss, no double count)",
    after.converged && same,
    `before ${describeDisagreement(before.last)} after ${describeDisagreement(after.last)}`
  )
  summary.check(AREA, "the wiped node has a fresh replica id", oldId !== newId, `old ${oldId}, new ${newId}`)
  log(`wipe of ${victim.name} done (replica ${oldId} -> ${newId}); resuming writes`)
  workload.resume(everyone)
}
