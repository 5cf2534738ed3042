/**
 * Convergence benchmark: how long after a write is acknowledged does EVERY node hold it?
 *
 * N in-process nodes (the real node services: CounterStore, PeerManager, Gossip) on TCP
 * loopback (`TransportTcp`, free ports), each on a simulated disk (`WalMemory`: the WAL is
 * not what this measures). Each write increments a counter of its own on one node (round
 * robin), spaced a few ms apart; the clock starts when `increment` resolves (the
 * acknowledgement) and stops when the last node has merged that counter's entry (seen on
 * each node's change stream). p50/p99/max over >= 200 writes, for 5 and 50 nodes, with
 * our configuration (eager delta push, 2 ms window) and with the seed's (no eager push,
 * anti-entropy every 2 s to 2 random peers), measured in the same run.
 *
 *     npx tsc -p tsconfig.build.json && node dist/bench/convergence.js [--quick]
 */
import { createServer } from "node:net"
import { Context, Duration, Effect, Layer, Logger, LogLevel, Queue } from "effect"
import type { NodeConfigShape } from "../src/config/NodeConfig.js"
import { NodeConfig } from "../src/config/NodeConfig.js"
import type { CounterName } from "../src/crdt/CounterName.js"
import type { HostPort } from "../src/protocol/Message.js"
import { CounterStore } from "../src/node/CounterStore.js"
import { Gossip } from "../src/node/Gossip.js"
import * as NodeRole from "../src/node/NodeRole.js"
import * as DataDirMemory from "../src/storage/DataDirMemory.js"
import * as MemoryDisk from "../src/storage/MemoryDisk.js"
import * as WalMemory from "../src/storage/WalMemory.js"
import { Transport } from "../src/transport/Transport.js"
import * as TransportTcp from "../src/transport/TransportTcp.js"
import type { BenchOptions, BenchResult } from "./BenchResult.js"
import { figure, isMain, main, ratioOf } from "./BenchResult.js"

// ---------------------------------------------------------------------------------------
// an in-process TCP cluster

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

export interface TcpNode {
  readonly addr: HostPort
  readonly store: CounterStore["Type"]
  readonly gossip: Gossip["Type"]
  readonly transport: Transport["Type"]
}

/** The seed's gossip: no eager push, anti-entropy every 2 s to 2 peers, full sync every 20 s. */
export const seedConfig: Partial<NodeConfigShape> = {
  eagerPush: false,
  syncInterval: Duration.seconds(2),
  fullSyncInterval: Duration.seconds(20),
  maxSyncPeers: 2
}

/** Ours: the contract's defaults (eager push, 2 ms window, 2 s anti-entropy). */
export const ourConfig: Partial<NodeConfigShape> = {}

/** `size` nodes in this process, each knowing every other by `--peers`, on TCP loopback. */
export const startTcpCluster = (size: number, config: Partial<NodeConfigShape>) =>
  Effect.gen(function*() {
    const ports = yield* Effect.promise(async () => {
      const out: Array<number> = []
      while (out.length < size) {
        const p = await freePort()
        if (!out.includes(p)) out.push(p)
      }
      return out
    })
    const addrs = ports.map((p) => `127.0.0.1:${p}` as HostPort)
    const nodes: Array<TcpNode> = []
    for (let i = 0; i < size; i++) {
      const disk = MemoryDisk.make()
      const nodeConfig = NodeConfig.layer({
        ...config,
        addr: addrs[i]!,
        httpAddr: `127.0.0.1:${20000 + i}`,
        peers: addrs.filter((_, j) => j !== i),
        dataDir: disk.path
      })
      const layer = NodeRole.layerServices().pipe(
        Layer.provideMerge(
          NodeRole.transportFor((self, c) =>
            TransportTcp.layer({ listen: c.addr as HostPort, self, clusterKey: c.clusterKey })
          )
        ),
        Layer.provideMerge(WalMemory.layer(disk)),
        Layer.provideMerge(DataDirMemory.layer(disk)),
        Layer.provide(nodeConfig)
      )
      const ctx = yield* Layer.build(layer).pipe(Effect.orDie)
      nodes.push({
        addr: addrs[i]!,
        store: Context.get(ctx, CounterStore),
        gossip: Context.get(ctx, Gossip),
        transport: Context.get(ctx, Transport)
      })
    }
    return nodes
  })

/** Waits until every node has a connected link to every other (connections open lazily). */
export const awaitConnected = (nodes: ReadonlyArray<TcpNode>, limit: Duration.Duration) =>
  Effect.gen(function*() {
    const want = nodes.length * (nodes.length - 1)
    const deadline = Date.now() + Duration.toMillis(limit)
    while (Date.now() < deadline) {
      const links = yield* Effect.forEach(nodes, (n) => n.transport.connections)
      if (links.flat().filter((l) => l.status === "connected").length >= want) return true
      yield* Effect.sleep(Duration.millis(200))
    }
    return false
  })

// ---------------------------------------------------------------------------------------
// measurement

const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!

export interface ConvergenceRun {
  readonly nodes: number
  readonly writes: number
  readonly converged: number
  readonly p50: number
  readonly p99: number
  readonly max: number
}

/**
 * Starts a cluster, waits until every node knows every other, then makes `writes` writes
 * `spacingMs` apart and returns the ack-to-all-nodes latencies.
 */
export const measure = (options: {
  readonly size: number
  readonly writes: number
  readonly spacingMs: number
  readonly config: Partial<NodeConfigShape>
  readonly waitMs: number
  readonly log: (line: string) => void
}): Promise<ConvergenceRun> =>
  Effect.gen(function*() {
    const startedAt = performance.now()
    const nodes = yield* startTcpCluster(options.size, options.config)
    yield* awaitConnected(nodes, Duration.seconds(60))
    options.log(`  ${options.size} nodes up and fully connected in ${Math.round(performance.now() - startedAt)} ms`)
    yield* Effect.sleep(Duration.seconds(1))
    const acked = new Map<string, number>()
    /** for each write, how many nodes other than its writer have it, and when the last did */
    const seen = new Map<string, { count: number; last: number }>()
    const others = options.size - 1
    const done = yield* Queue.bounded<string>(options.writes + 1)
    for (const node of nodes) {
      const changes = yield* node.store.changes
      yield* Queue.take(changes).pipe(
        Effect.map((change) => {
          if (change.origin._tag === "Local") return
          const now = performance.now()
          for (const [name] of change.entries) {
            const s = seen.get(name) ?? { count: 0, last: 0 }
            s.count++
            s.last = now
            seen.set(name, s)
            if (s.count === others) done.unsafeOffer(name)
          }
        }),
        Effect.forever,
        Effect.forkScoped
      )
    }
    const started = performance.now()
    for (let k = 0; k < options.writes; k++) {
      const name = `w${k}` as CounterName
      const node = nodes[k % nodes.length]!
      yield* node.store.increment(name, 1)
      acked.set(name, performance.now())
      if (options.spacingMs > 0) yield* Effect.sleep(Duration.millis(options.spacingMs))
    }
    options.log(`  ${options.writes} writes made in ${Math.round(performance.now() - started)} ms; waiting for convergence`)
    let converged = 0
    yield* Queue.take(done).pipe(
      Effect.tap(() => Effect.sync(() => converged++)),
      Effect.repeat({ while: () => converged < options.writes }),
      Effect.timeout(Duration.millis(options.waitMs)),
      Effect.ignore
    )
    const latencies: Array<number> = []
    for (const [name, t0] of acked) {
      const s = seen.get(name)
      if (s !== undefined && s.count >= others) latencies.push(s.last - t0)
    }
    latencies.sort((a, b) => a - b)
    return {
      nodes: options.size,
      writes: options.writes,
      converged: latencies.length,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      max: latencies[latencies.length - 1] ?? NaN
    }
  }).pipe(
    Effect.scoped,
    Logger.withMinimumLogLevel(LogLevel.Error),
    Effect.runPromise
  )

export const run = async (options: BenchOptions = {}): Promise<ReadonlyArray<BenchResult>> => {
  const log = options.log ?? ((line: string) => process.stderr.write(line + "\n"))
  const writes = options.quick === true ? 200 : 300
  const results: Array<BenchResult> = []
  for (const size of [5, 50]) {
    const spacingMs = size === 5 ? 5 : 20
    // 50 nodes in ONE process Ping each other 2,450 times a second: on 2 shared cores that
    // alone starves the event loop, so the 50-node runs probe every 5 s (both configs)
    const heartbeat: Partial<NodeConfigShape> = size === 5 ? {} : { heartbeatInterval: Duration.seconds(5) }
    log(`convergence: ${size} nodes, seed config (no eager push, sync 2 s)`)
    const seed = await measure({ size, writes, spacingMs, config: { ...seedConfig, ...heartbeat }, waitMs: 40_000, log })
    log(`convergence: ${size} nodes, our config (eager push, 2 ms window)`)
    const ours = await measure({ size, writes, spacingMs, config: { ...ourConfig, ...heartbeat }, waitMs: 20_000, log })
    const row = (r: ConvergenceRun) =>
      [
        figure("p99", r.p99, "ms", "lower"),
        figure("p50", r.p50, "ms", "lower"),
        figure("max", r.max, "ms", "lower"),
        figure("converged", r.converged, "writes", "higher")
      ] as const
    results.push({
      bench: "convergence",
      name: `${size} nodes, seed gossip (no eager push, 2 s anti-entropy)`,
      figures: row(seed),
      notes: `${seed.writes} writes, ${spacingMs} ms apart, TCP loopback, in-process nodes` +
        (size === 5 ? "" : ", heartbeat 5 s")
    })
    const ratio = ratioOf(ours.p99, seed.p99)
    results.push({
      bench: "convergence",
      name: `${size} nodes, dcounter gossip (eager delta push)`,
      figures: row(ours),
      baseline: `${size} nodes, seed gossip (no eager push, 2 s anti-entropy)`,
      ...(ratio !== undefined ? { ratio } : {}),
      ...(size === 5
        ? { goal: "p99 ack-to-all-nodes in tens of ms", met: ours.converged === ours.writes && ours.p99 < 100 }
        : {}),
      notes: `${ours.writes} writes, ${spacingMs} ms apart; ack = increment resolved (durable), end = last node merged it` +
        (size === 5 ? "" : ", heartbeat 5 s")
    })
  }
  return results
}

if (isMain(import.meta.url)) void main(run)
