/**
 * Gossip cost benchmark: bytes/s and messages/s sent per node, for 5 in-process nodes on
 * TCP loopback (see convergence.ts), idle and under 1,000 writes/s spread over the nodes
 * (10 counters), with our configuration (eager delta push) and with the seed's (no eager
 * push, anti-entropy every 2 s), measured in the same run from the transport's counters.
 *
 *     npx tsc -p tsconfig.build.json && node dist/bench/gossip.js [--quick]
 */
import { Duration, Effect, Logger, LogLevel } from "effect"
import type { NodeConfigShape } from "../src/config/NodeConfig.js"
import type { CounterName } from "../src/crdt/CounterName.js"
import type { BenchOptions, BenchResult } from "./BenchResult.js"
import { figure, isMain, main, ratioOf } from "./BenchResult.js"
import type { TcpNode } from "./convergence.js"
import { awaitConnected, ourConfig, seedConfig, startTcpCluster } from "./convergence.js"

export interface GossipCost {
  readonly bytesPerSecond: number
  readonly messagesPerSecond: number
  readonly writesPerSecond: number
}

const totals = (nodes: ReadonlyArray<TcpNode>) =>
  Effect.map(Effect.forEach(nodes, (n) => n.transport.stats), (stats) => ({
    bytes: stats.reduce((a, s) => a + s.bytesOut, 0),
    frames: stats.reduce((a, s) => a + s.framesOut, 0)
  }))

/** Per-node averages over `seconds`, while `load` runs (if any). */
const window = (nodes: ReadonlyArray<TcpNode>, seconds: number, load: Effect.Effect<number> | undefined) =>
  Effect.gen(function*() {
    const before = yield* totals(nodes)
    const t0 = performance.now()
    const writes = load === undefined
      ? (yield* Effect.sleep(Duration.seconds(seconds)), 0)
      : yield* load
    const elapsed = (performance.now() - t0) / 1000
    const after = yield* totals(nodes)
    return {
      bytesPerSecond: (after.bytes - before.bytes) / elapsed / nodes.length,
      messagesPerSecond: (after.frames - before.frames) / elapsed / nodes.length,
      writesPerSecond: writes / elapsed
    } satisfies GossipCost
  })

/** About `rate` writes/s for `seconds`: a tick every 10 ms issues rate/100 writes, round robin. */
const writeLoad = (nodes: ReadonlyArray<TcpNode>, rate: number, seconds: number) =>
  Effect.gen(function*() {
    const perTick = Math.max(1, Math.round(rate / 100))
    const end = performance.now() + seconds * 1000
    let made = 0
    let next = performance.now()
    while (performance.now() < end) {
      const batch = Array.from({ length: perTick }, (_, i) => {
        const k = made + i
        return nodes[k % nodes.length]!.store.increment(`c${k % 10}` as CounterName, 1)
      })
      yield* Effect.all(batch, { concurrency: "unbounded", discard: true })
      made += perTick
      next += 10
      const wait = next - performance.now()
      if (wait > 0) yield* Effect.sleep(Duration.millis(wait))
    }
    return made
  }).pipe(Effect.orDie)

export const measure = (config: Partial<NodeConfigShape>, seconds: number) =>
  Effect.gen(function*() {
    const nodes = yield* startTcpCluster(5, config)
    yield* awaitConnected(nodes, Duration.seconds(30))
    yield* Effect.sleep(Duration.seconds(3))
    const idle = yield* window(nodes, seconds, undefined)
    const loaded = yield* window(nodes, seconds, writeLoad(nodes, 1000, seconds))
    return { idle, loaded }
  }).pipe(Effect.scoped, Logger.withMinimumLogLevel(LogLevel.Error), Effect.runPromise)

export const run = async (options: BenchOptions = {}): Promise<ReadonlyArray<BenchResult>> => {
  const log = options.log ?? ((line: string) => process.stderr.write(line + "\n"))
  const seconds = options.quick === true ? 4 : 10
  log(`gossip: 5 nodes, seed config, ${seconds} s idle then ${seconds} s at 1,000 writes/s`)
  const seed = await measure(seedConfig, seconds)
  log(`gossip: 5 nodes, our config, ${seconds} s idle then ${seconds} s at 1,000 writes/s`)
  const ours = await measure(ourConfig, seconds)
  const row = (c: GossipCost) => [
    figure("out", c.bytesPerSecond, "B/s per node", "lower"),
    figure("msgs", c.messagesPerSecond, "msgs/s per node", "lower"),
    figure("writes", c.writesPerSecond, "writes/s", "higher")
  ]
  const results: Array<BenchResult> = []
  for (const [phase, s, o] of [["idle", seed.idle, ours.idle], ["1,000 writes/s", seed.loaded, ours.loaded]] as const) {
    const seedName = `5 nodes ${phase}, seed gossip (no eager push)`
    results.push({
      bench: "gossip",
      name: seedName,
      figures: row(s),
      notes: "heartbeat 1 s, anti-entropy every 2 s to 2 peers, TCP loopback"
    })
    const ratio = ratioOf(o.bytesPerSecond, s.bytesPerSecond)
    results.push({
      bench: "gossip",
      name: `5 nodes ${phase}, dcounter gossip (eager delta push)`,
      figures: row(o),
      baseline: seedName,
      ...(ratio !== undefined ? { ratio } : {}),
      notes: "eager deltas batched per 2 ms window to every alive peer; anti-entropy as the seed"
    })
  }
  return results
}

if (isMain(import.meta.url)) void main(run)
