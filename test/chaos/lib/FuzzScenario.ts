/**
 * The gossip fuzz phase: a keyed 2-node cluster and an unkeyed one, each with some state;
 * half the frames go to a node of each. Afterwards the node is up and fast, its state
 * (/state and every counter) is exactly as before, its /metrics count the rejected frames,
 * and gossip between the two nodes still works.
 */
import * as path from "node:path"
import { readCounters, waitConverged } from "./Checker.js"
import { chaosNet, Cluster } from "./Cluster.js"
import { emptyStats, fuzz, type FuzzStats } from "./FrameFuzz.js"
import { latencyProbe, percentile } from "./HttpHostile.js"
import { pollUntil, request } from "./Http.js"
import { FRAMES_IN, fetchMetrics, REJECTED_FRAMES, sumMatching } from "./Metrics.js"
import { Prng } from "./Prng.js"
import { sleep } from "./Proc.js"
import type { Summary } from "./Summary.js"

const AREA = "fuzz"

/** Fatal frames the decoder must reject for certain (the others may just leave it waiting). */
const DEFINITE = new Set(["flipped bits", "wrong key", "missing tag", "unexpected tag", "huge length", "length too short", "bad version", "unknown flags", "truncated tag"])

export interface FuzzOptions {
  readonly runDir: string
  readonly seed: number
  readonly frames: number
  readonly budgetMs: number
}

export const runFuzz = async (o: FuzzOptions, summary: Summary): Promise<void> => {
  const rng = new Prng(o.seed, "fuzz")
  const total: FuzzStats = emptyStats()
  const started = Date.now()
  for (const [i, keyed] of [true, false].entries()) {
    const label = keyed ? "keyed" : "unkeyed"
    const key = keyed ? `fuzz-key-${rng.next()}` : undefined
    const cluster = await Cluster.create({
      runDir: path.join(o.runDir, label),
      nodes: 2,
      discovery: false,
      gateway: false,
      staticPeers: true,
      ...(key === undefined ? {} : { clusterKey: key }),
      nodeArgs: ["--sync-interval", "300ms", "--heartbeat-interval", "250ms"],
      logLevel: "warn",
      firstHost: 50 + 10 * i
    })
    const [target, peer] = cluster.nodes
    try {
      await cluster.start()
      for (const [p, by] of [["/increment", 11], ["/counters/fuzzed/increment", 40], ["/counters/fuzzed/decrement", 3]] as const) {
        await request({ host: target!.host, port: target!.httpPort, method: "POST", path: p, body: JSON.stringify({ by }), timeoutMs: 5000 })
      }
      const conv = await waitConverged(cluster.nodes, ["default", "fuzzed"], 20_000)
      summary.check(AREA, `${label}: setup converges`, conv.converged)
      const stateBefore = JSON.stringify(await target!.getJson("/state"))
      const countersBefore = JSON.stringify([...(await readCounters(target!))].sort())
      const metricsBefore = (await fetchMetrics(target!)).samples
      const rejectedBefore = sumMatching(metricsBefore, REJECTED_FRAMES)
      const inBefore = sumMatching(metricsBefore, FRAMES_IN)

      const stats = emptyStats()
      const { ms } = await fuzz(
        rng.fork(label),
        {
          target: {
            host: target!.host,
            port: target!.gossipPort,
            key,
            fakeGossipAddr: `${chaosNet()}.${250 - i}:9`,
            fakeHttpAddr: `${chaosNet()}.${250 - i}:9`
          },
          frames: Math.ceil(o.frames / 2),
          concurrency: 16,
          maxFramesPerSession: 800,
          budgetMs: Math.floor(o.budgetMs / 2)
        },
        stats
      )
      total.frames += stats.frames
      total.sessions += stats.sessions
      total.bytes += stats.bytes
      total.stalled += stats.stalled
      total.writeErrors += stats.writeErrors
      total.afterFatal += stats.afterFatal
      for (const [k, v] of stats.fatalByKind) total.fatalByKind.set(`${label}: ${k}`, v)
      const rate = Math.round(stats.frames / (ms / 1000))
      summary.figure(`fuzz frames sent to a ${label} node`, `${stats.frames} in ${(ms / 1000).toFixed(1)}s (${rate}/s, ${stats.sessions} connections)`)
      summary.check(AREA, `${label}: ${Math.ceil(o.frames / 2)} frames sent within the budget`, stats.frames >= Math.ceil(o.frames / 2), `${stats.frames} frames in ${ms}ms`)

      summary.check(AREA, `${label}: the node is still running`, target!.running)
      // let the node drain what it buffered, then compare
      await sleep(1000)
      await target!.waitReady(10_000).catch(() => undefined)
      const stateAfter = JSON.stringify(await target!.getJson("/state"))
      const countersAfter = JSON.stringify([...(await readCounters(target!))].sort())
      summary.check(AREA, `${label}: /state unchanged`, stateAfter === stateBefore, `${stateBefore} -> ${stateAfter}`)
      summary.check(AREA, `${label}: every counter unchanged`, countersAfter === countersBefore, `${countersBefore} -> ${countersAfter}`)
      const metrics = await fetchMetrics(target!)
      const rejectedAfter = sumMatching(metrics.samples, REJECTED_FRAMES)
      const definite = [...stats.fatalByKind].filter(([k]) => DEFINITE.has(k)).reduce((a, [, v]) => a + v, 0)
      const delta = rejectedAfter.sum - rejectedBefore.sum
      summary.check(
        AREA,
        `${label}: /metrics counts the rejected frames (>= the ${definite} certainly-bad frames sent)`,
        rejectedAfter.names.length > 0 && delta >= definite,
        `metric ${rejectedAfter.names.join(",") || "(none matching frames.*rejected)"} grew by ${delta}`
      )
      summary.figure(`${label} node: rejected frames counted (connections closed)`, delta)
      summary.figure(`${label} node: frames decoded and accepted`, sumMatching(metrics.samples, FRAMES_IN).sum - inBefore.sum)
      const probe = await latencyProbe(target!, "/counter", 30)
      const max = Math.max(...probe.ms)
      summary.check(AREA, `${label}: the node answers fast afterwards (30 GET /counter within 3s each)`, probe.failures === 0 && max <= 3000, `p50 ${percentile(probe.ms, 50)} max ${max}`)
      // gossip still works both ways
      await request({ host: peer!.host, port: peer!.httpPort, method: "POST", path: "/counters/after-fuzz/increment", body: JSON.stringify({ by: 3 }), timeoutMs: 5000 })
      await request({ host: target!.host, port: target!.httpPort, method: "POST", path: "/counters/after-fuzz/increment", body: JSON.stringify({ by: 4 }), timeoutMs: 5000 })
      const gossip = await pollUntil("gossip after the fuzz", 15_000, 200, async () => {
        const a = (await target!.getJson("/counters/after-fuzz")) as { value?: number }
        const b = (await peer!.getJson("/counters/after-fuzz")) as { value?: number }
        return a.value === 7 && b.value === 7 ? true : undefined
      }).catch((e: unknown) => String(e))
      summary.check(AREA, `${label}: gossip between the nodes still converges afterwards`, gossip === true, String(gossip))
    } finally {
      await cluster.stop()
    }
  }
  summary.figure("fuzz frames sent (total)", total.frames)
  summary.figure("fuzz connections", total.sessions)
  summary.figure("fuzz frames sent after a bad frame on the same connection", total.afterFatal)
  summary.figure("fuzz MB sent", (total.bytes / 1e6).toFixed(1))
  summary.figure("fuzz phase (s)", ((Date.now() - started) / 1000).toFixed(1))
  summary.figure("fuzz connections the node left hanging (> 15 s)", total.stalled)
  summary.check(AREA, `at least ${o.frames} frames sent in total`, total.frames >= o.frames, `${total.frames}`)
}
