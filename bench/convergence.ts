/**
 * Convergence benchmark: how long after a write is acknowledged does EVERY node hold it?
 *
 * N nodes (the real node services: CounterStore, PeerManager, Gossip, TransportTcp) on TCP
 * loopback (free ports). With one node per process (5 nodes) each node has a real data
 * directory (`DataDirFile` + `WalFile`, under a temp dir removed afterwards): an ack
 * includes the WAL's fdatasync. Nodes sharing a process (50 nodes, `--in-process`) run on a
 * simulated disk (`WalMemory`): 50 WALs fsyncing on one disk would measure the disk, not
 * the gossip. Each write increments a counter of its own on one node (round robin), spaced a
 * few ms apart; the clock starts when `increment` resolves (the acknowledgement) and stops
 * when the last node has merged that counter's entry (seen on each node's change stream).
 * p50/p99/max over >= 200 writes, for 5 and 50 nodes, with our configuration (eager delta
 * push, 10 ms window) and with the seed's (no eager push, anti-entropy every 2 s to 2 random
 * peers), measured in the same run.
 *
 * Where the nodes run: 5 nodes in 5 child processes (one node each); 50 nodes spread round
 * robin over one child process per core (at least 2). Times are taken on CLOCK_MONOTONIC,
 * which the processes share; each child runs a full GC once its nodes are connected (a
 * fresh process's first one would otherwise land in the writes). `--in-process` runs every
 * node in this one process instead. Measured on 2 cores: one process for 50 nodes is CPU
 * bound (~100% of a core: ~270 us of CPU per gossip frame, GC ~10% of the time, event-loop
 * delay p99 ~40-100 ms) and its p99 is ~1.5x that of 2 processes; 5 processes for 50 nodes
 * is worse than 2 (more runnable processes than cores, a heap and GC per process).
 * Each run also reports the event-loop delay, GC pauses and CPU time during the writes and
 * the wait: where a tail comes from.
 *
 *     npx tsc -p tsconfig.build.json && node dist/bench/convergence.js [--quick]
 *       [--sizes 5,50] [--shards N] [--in-process]
 */
import { fork } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { createServer } from "node:net"
import * as Fs from "node:fs"
import { cpus, tmpdir } from "node:os"
import * as Path from "node:path"
import { monitorEventLoopDelay, PerformanceObserver } from "node:perf_hooks"
import { fileURLToPath } from "node:url"
import { Context, Duration, Effect, Layer, Logger, LogLevel, Queue } from "effect"
import type { NodeConfigShape } from "../src/config/NodeConfig.js"
import { NodeConfig } from "../src/config/NodeConfig.js"
import type { CounterName } from "../src/crdt/CounterName.js"
import type { HostPort } from "../src/protocol/Message.js"
import { CounterStore } from "../src/node/CounterStore.js"
import { Gossip } from "../src/node/Gossip.js"
import * as NodeRole from "../src/node/NodeRole.js"
import * as DiscoveryStatic from "../src/discoveryClient/DiscoveryStatic.js"
import * as DataDirFile from "../src/storage/DataDirFile.js"
import * as DataDirMemory from "../src/storage/DataDirMemory.js"
import * as MemoryDisk from "../src/storage/MemoryDisk.js"
import * as WalFile from "../src/storage/WalFile.js"
import * as WalMemory from "../src/storage/WalMemory.js"
import { Transport } from "../src/transport/Transport.js"
import * as TransportTcp from "../src/transport/TransportTcp.js"
import type { BenchOptions, BenchResult } from "./BenchResult.js"
import { figure, isMain, main, ratioOf } from "./BenchResult.js"

const thisFile = fileURLToPath(import.meta.url)

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

/** Ours: the contract's defaults (eager push, 10 ms push window, 2 s anti-entropy). */
export const ourConfig: Partial<NodeConfigShape> = {}

/** `size` distinct free loopback addresses. */
export const freeAddrs = async (size: number): Promise<ReadonlyArray<HostPort>> => {
  const out: Array<number> = []
  while (out.length < size) {
    const p = await freePort()
    if (!out.includes(p)) out.push(p)
  }
  return out.map((p) => `127.0.0.1:${p}` as HostPort)
}

/** `size` nodes in this process, each knowing every other by `--peers`, on TCP loopback. */
export const startTcpCluster = (size: number, config: Partial<NodeConfigShape>) =>
  Effect.gen(function*() {
    const addrs = yield* Effect.promise(() => freeAddrs(size))
    return yield* startNodes(addrs, addrs.map((_, i) => i), config)
  })

/**
 * Where the nodes keep their data: a simulated disk (`WalMemory`), or a real data directory
 * per node (`DataDirFile` + `WalFile`: appends are fdatasynced) under this directory.
 */
export type Disk = { readonly _tag: "Memory" } | { readonly _tag: "File"; readonly root: string }

/**
 * The nodes at `indices` of the cluster whose gossip addresses are `addrs`, in this
 * process; each knows every other address by `--peers` (nodes of other processes too).
 */
export const startNodes = (
  addrs: ReadonlyArray<HostPort>,
  indices: ReadonlyArray<number>,
  config: Partial<NodeConfigShape>,
  disk: Disk = { _tag: "Memory" }
) =>
  Effect.gen(function*() {
    const nodes: Array<TcpNode> = []
    for (const i of indices) {
      const memory = MemoryDisk.make()
      const dataDir = disk._tag === "File" ? Path.join(disk.root, `node-${i}`) : memory.path
      const nodeConfig = NodeConfig.layer({
        ...config,
        addr: addrs[i]!,
        httpAddr: `127.0.0.1:${20000 + i}`,
        peers: addrs.filter((_, j) => j !== i),
        dataDir
      })
      const storage = disk._tag === "File"
        ? WalFile.layer().pipe(Layer.provideMerge(DataDirFile.layer(dataDir)))
        : WalMemory.layer(memory).pipe(Layer.provideMerge(DataDirMemory.layer(memory)))
      const layer = NodeRole.layerServices().pipe(
        Layer.provideMerge(
          NodeRole.transportFor((self, c) =>
            TransportTcp.layer({ listen: c.addr as HostPort, self, clusterKey: c.clusterKey })
          )
        ),
        Layer.provideMerge(storage),
        Layer.provide(DiscoveryStatic.layerNone),
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

/**
 * Waits until every node has a connected link to every other (connections open lazily);
 * `peersEach` when some of the peers run in other processes.
 */
export const awaitConnected = (
  nodes: ReadonlyArray<TcpNode>,
  limit: Duration.Duration,
  peersEach: number = nodes.length - 1
) =>
  Effect.gen(function*() {
    const want = nodes.length * peersEach
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
  /** where a tail can come from, over the writes and the wait for convergence */
  readonly diagnostics: Diagnostics
}

export interface Diagnostics {
  /** event-loop delay (how late a timer fired), ms */
  readonly loopDelayP99: number
  readonly loopDelayMax: number
  /** garbage collection: pauses and their total, ms */
  readonly gcPauses: number
  readonly gcTotalMs: number
  readonly gcMaxMs: number
  /** CPU time of this process (user + system) per wall second, % of one core */
  readonly cpuPercent: number
  /** each write's latency with when it was acknowledged (ms since the first write) */
  readonly samples: ReadonlyArray<{ readonly at: number; readonly latency: number }>
}

/** Event-loop delay, GC pauses and CPU time from `start()` to `stop()`. */
const watch = () => {
  const loop = monitorEventLoopDelay({ resolution: 5 })
  const gc: Array<number> = []
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gc.push(e.duration)
  })
  let cpu0 = process.cpuUsage()
  let wall0 = performance.now()
  return {
    start: () => {
      loop.enable()
      observer.observe({ entryTypes: ["gc"] })
      cpu0 = process.cpuUsage()
      wall0 = performance.now()
    },
    stop: (): Omit<Diagnostics, "samples"> => {
      loop.disable()
      observer.disconnect()
      const cpu = process.cpuUsage(cpu0)
      const wall = performance.now() - wall0
      return {
        loopDelayP99: loop.percentile(99) / 1e6,
        loopDelayMax: loop.max / 1e6,
        gcPauses: gc.length,
        gcTotalMs: gc.reduce((a, b) => a + b, 0),
        gcMaxMs: gc.reduce((a, b) => Math.max(a, b), 0),
        cpuPercent: wall > 0 ? ((cpu.user + cpu.system) / 1000 / wall) * 100 : NaN
      }
    }
  }
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
    const watcher = watch()
    watcher.start()
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
    const watched = watcher.stop()
    const latencies: Array<number> = []
    const samples: Array<{ at: number; latency: number }> = []
    for (const [name, t0] of acked) {
      const s = seen.get(name)
      if (s !== undefined && s.count >= others) {
        latencies.push(s.last - t0)
        samples.push({ at: t0 - started, latency: s.last - t0 })
      }
    }
    latencies.sort((a, b) => a - b)
    return {
      nodes: options.size,
      writes: options.writes,
      converged: latencies.length,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      max: latencies[latencies.length - 1] ?? NaN,
      diagnostics: { ...watched, samples }
    }
  }).pipe(
    Effect.scoped,
    Logger.withMinimumLogLevel(LogLevel.Error),
    Effect.runPromise
  )

// ---------------------------------------------------------------------------------------
// a cluster spread over child processes

/** A configuration by name, so that a child process can rebuild it. */
export type Preset = "seed" | "ours"

const presetConfig = (preset: Preset, heartbeatMs: number | undefined): Partial<NodeConfigShape> => ({
  ...(preset === "seed" ? seedConfig : ourConfig),
  ...(heartbeatMs === undefined ? {} : { heartbeatInterval: Duration.millis(heartbeatMs) })
})

/**
 * Milliseconds on CLOCK_MONOTONIC, which every process of one Linux machine shares
 * (`performance.now()` counts from each process's own start).
 */
const sharedClock = (): number => Number(process.hrtime.bigint()) / 1e6

/** Write number k goes to node k mod size, on counter `w<k>`. */
const writeName = (k: number): string => `w${k}`
const writerOf = (name: string, size: number): number => Number(name.slice(1)) % size

type ToShard =
  | {
    readonly _tag: "Init"
    readonly addrs: ReadonlyArray<HostPort>
    readonly indices: ReadonlyArray<number>
    readonly preset: Preset
    readonly heartbeatMs: number | undefined
    readonly disk: Disk
  }
  | { readonly _tag: "Write"; readonly name: string; readonly node: number }
  | { readonly _tag: "Report" }

type FromShard =
  | { readonly _tag: "Ready" }
  | { readonly _tag: "Failed"; readonly error: string }
  | { readonly _tag: "Acked"; readonly name: string; readonly at: number }
  | { readonly _tag: "Complete"; readonly name: string; readonly last: number }
  | { readonly _tag: "Diagnostics"; readonly diagnostics: Omit<Diagnostics, "samples"> }

/**
 * One shard (a child process): starts its nodes, waits until each is connected to all
 * `addrs`, then makes the writes it is told to, and reports, per counter, when the last of
 * its nodes (the writer excepted) merged it.
 */
const shard = (
  init: Extract<ToShard, { _tag: "Init" }>,
  inbox: Queue.Dequeue<ToShard>,
  send: (m: FromShard) => Promise<void>
) =>
  Effect.gen(function*() {
    const size = init.addrs.length
    const nodes = yield* startNodes(init.addrs, init.indices, presetConfig(init.preset, init.heartbeatMs), init.disk)
    if (!(yield* awaitConnected(nodes, Duration.seconds(60), size - 1))) {
      return yield* Effect.promise(() => send({ _tag: "Failed", error: "not connected to every node within 60 s" }))
    }
    const byIndex = new Map(init.indices.map((i, j) => [i, nodes[j]!] as const))
    const seen = new Map<string, number>()
    for (const node of nodes) {
      const changes = yield* node.store.changes
      yield* Queue.take(changes).pipe(
        Effect.map((change) => {
          if (change.origin._tag === "Local") return
          const now = sharedClock()
          for (const [name] of change.entries) {
            const count = (seen.get(name) ?? 0) + 1
            seen.set(name, count)
            const writer = writerOf(name, size)
            if (count === init.indices.filter((i) => i !== writer).length) void send({ _tag: "Complete", name, last: now })
          }
        }),
        Effect.forever,
        Effect.forkScoped
      )
    }
    // A freshly started process runs its first full GC soon after its start-up garbage; a
    // node that has been running has long done so: it happens here, not during the writes.
    const gc: unknown = Reflect.get(globalThis, "gc")
    if (typeof gc === "function") gc()
    const watcher = watch()
    let watching = false
    yield* Effect.promise(() => send({ _tag: "Ready" }))
    while (true) {
      const m = yield* Queue.take(inbox)
      if (m._tag === "Write") {
        if (!watching) {
          watcher.start()
          watching = true
        }
        const node = byIndex.get(m.node)
        if (node === undefined) continue
        yield* node.store.increment(m.name as CounterName, 1)
        void send({ _tag: "Acked", name: m.name, at: sharedClock() })
      } else if (m._tag === "Report") {
        if (!watching) watcher.start()
        return yield* Effect.promise(() => send({ _tag: "Diagnostics", diagnostics: watcher.stop() }))
      }
    }
  })

/** The child process's side: `node dist/bench/convergence.js --shard` (forked with IPC). */
const runShard = (): void => {
  const send = (m: FromShard): Promise<void> =>
    new Promise((resolve) => {
      if (process.send === undefined || !process.connected) return resolve()
      process.send(m, () => resolve())
    })
  const inbox = Effect.runSync(Queue.bounded<ToShard>(1024))
  let started = false
  process.on("message", (m: ToShard) => {
    if (m._tag !== "Init") {
      inbox.unsafeOffer(m)
      return
    }
    if (started) return
    started = true
    void shard(m, inbox, send).pipe(
      Effect.scoped,
      Effect.timeout(Duration.minutes(3)),
      Logger.withMinimumLogLevel(LogLevel.Error),
      Effect.runPromiseExit
    ).then(async (exit) => {
      if (exit._tag === "Failure") await send({ _tag: "Failed", error: String(exit.cause) })
      process.exit(0)
    })
  })
  // the parent is gone (it exited or was killed): so is the point of this process
  process.on("disconnect", () => process.exit(0))
}

/** The parent's side of one child: its messages as they come, its exit. */
interface ShardHandle {
  readonly proc: ChildProcess
  readonly indices: ReadonlyArray<number>
  readonly exited: Promise<void>
}

const withTimeout = <A>(what: string, ms: number, p: Promise<A>): Promise<A> =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms)
    p.then(
      (a) => {
        clearTimeout(timer)
        resolve(a)
      },
      (e: unknown) => {
        clearTimeout(timer)
        reject(e)
      }
    )
  })

const sleepMs = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * As `measure`, with the nodes spread round robin over `shards` child processes (node i in
 * shard i mod shards), so that one event loop and one heap do not carry the whole cluster.
 * Each shard reports when the last of its nodes merged a write, on a clock all processes
 * share; a write has converged when every shard has reported it.
 */
export const measureSharded = async (options: {
  readonly size: number
  readonly shards: number
  readonly writes: number
  readonly spacingMs: number
  readonly preset: Preset
  readonly heartbeatMs: number | undefined
  /** a real data directory per node (file WAL, fdatasync per ack) instead of a simulated disk */
  readonly fileDisk: boolean
  readonly waitMs: number
  readonly log: (line: string) => void
}): Promise<ConvergenceRun> => {
  const { size, writes } = options
  const shards = Math.max(1, Math.min(options.shards, size))
  const startedAt = performance.now()
  const addrs = await freeAddrs(size)
  // the parent owns the data directories: removed in the finally below, even if a shard was killed
  const dataRoot = options.fileDisk ? Fs.mkdtempSync(Path.join(tmpdir(), "dcounter-bench-convergence-")) : undefined
  const disk: Disk = dataRoot === undefined ? { _tag: "Memory" } : { _tag: "File", root: dataRoot }
  const groups = Array.from({ length: shards }, (_, s) => addrs.map((_, i) => i).filter((i) => i % shards === s))
  const acked = new Map<string, number>()
  const waitingAck = new Map<string, () => void>()
  const completes = new Map<string, Array<number>>()
  const diagnostics: Array<Omit<Diagnostics, "samples">> = []
  let ready = 0
  let failure: string | undefined
  let onProgress: () => void = () => {}
  const handles: Array<ShardHandle> = groups.map((indices) => {
    const proc = fork(thisFile, ["--shard"], {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      execArgv: [...process.execArgv, "--expose-gc"]
    })
    proc.on("message", (m: FromShard) => {
      switch (m._tag) {
        case "Ready":
          ready++
          break
        case "Failed":
          failure ??= m.error
          break
        case "Acked":
          acked.set(m.name, m.at)
          waitingAck.get(m.name)?.()
          break
        case "Complete": {
          const list = completes.get(m.name) ?? []
          list.push(m.last)
          completes.set(m.name, list)
          break
        }
        case "Diagnostics":
          diagnostics.push(m.diagnostics)
          break
      }
      onProgress()
    })
    const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()))
    proc.send({ _tag: "Init", addrs, indices, preset: options.preset, heartbeatMs: options.heartbeatMs, disk } satisfies ToShard)
    return { proc, indices, exited }
  })
  const anyExited = Promise.race(handles.map((h) => h.exited.then(() => h)))
  /**
   * Resolves once `done()` holds (checked after every message); rejects on a failure, or
   * when a shard exits while `exitFails` (shards exit by themselves once they reported).
   */
  const until = (what: string, ms: number, done: () => boolean, exitFails = true): Promise<void> =>
    withTimeout(
      what,
      ms,
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (failure !== undefined) reject(new Error(`${what}: a shard failed: ${failure}`))
          else if (done()) resolve()
        }
        onProgress = check
        if (exitFails) void anyExited.then((h) => reject(new Error(`${what}: shard pid ${h.proc.pid} exited`)))
        check()
      })
    )
  const needed = (name: string): number => {
    const writer = writerOf(name, size)
    return groups.filter((g) => g.some((i) => i !== writer)).length
  }
  try {
    await until("start-up", 90_000, () => ready === shards)
    options.log(
      `  ${size} nodes in ${shards} processes up and fully connected in ${Math.round(performance.now() - startedAt)} ms`
    )
    await sleepMs(1_000)
    const firstAt = sharedClock()
    const writesStarted = performance.now()
    for (let k = 0; k < writes; k++) {
      const name = writeName(k)
      const node = k % size
      const answered = new Promise<void>((resolve) => waitingAck.set(name, resolve))
      handles[node % shards]!.proc.send({ _tag: "Write", name, node } satisfies ToShard)
      await withTimeout(`write ${name}`, 10_000, answered)
      waitingAck.delete(name)
      if (options.spacingMs > 0) await sleepMs(options.spacingMs)
    }
    options.log(`  ${writes} writes made in ${Math.round(performance.now() - writesStarted)} ms; waiting for convergence`)
    const converged = () => {
      let n = 0
      for (const name of acked.keys()) if ((completes.get(name)?.length ?? 0) >= needed(name)) n++
      return n
    }
    await until("convergence", options.waitMs, () => converged() === writes).catch((e: unknown) =>
      options.log(`  ${e instanceof Error ? e.message : String(e)}`)
    )
    for (const h of handles) h.proc.send({ _tag: "Report" } satisfies ToShard)
    await until("diagnostics", 10_000, () => diagnostics.length === shards, false).catch((e: unknown) =>
      options.log(`  ${e instanceof Error ? e.message : String(e)}`)
    )
    const latencies: Array<number> = []
    const samples: Array<{ at: number; latency: number }> = []
    for (const [name, at] of acked) {
      const list = completes.get(name) ?? []
      if (list.length < needed(name)) continue
      const latency = Math.max(at, ...list) - at
      latencies.push(latency)
      samples.push({ at: at - firstAt, latency })
    }
    latencies.sort((a, b) => a - b)
    const max = (f: (d: Omit<Diagnostics, "samples">) => number) => diagnostics.reduce((a, d) => Math.max(a, f(d)), 0)
    const sum = (f: (d: Omit<Diagnostics, "samples">) => number) => diagnostics.reduce((a, d) => a + f(d), 0)
    return {
      nodes: size,
      writes,
      converged: latencies.length,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      max: latencies[latencies.length - 1] ?? NaN,
      diagnostics: {
        loopDelayP99: max((d) => d.loopDelayP99),
        loopDelayMax: max((d) => d.loopDelayMax),
        gcPauses: sum((d) => d.gcPauses),
        gcTotalMs: sum((d) => d.gcTotalMs),
        gcMaxMs: max((d) => d.gcMaxMs),
        cpuPercent: sum((d) => d.cpuPercent),
        samples
      }
    }
  } finally {
    await Promise.all(
      handles.map(async (h) => {
        if (h.proc.exitCode !== null || h.proc.signalCode !== null) return
        const timer = setTimeout(() => h.proc.kill("SIGKILL"), 10_000)
        h.proc.kill("SIGTERM")
        await h.exited
        clearTimeout(timer)
      })
    )
    if (dataRoot !== undefined) Fs.rmSync(dataRoot, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------------------------------
// the benchmark

export interface ConvergenceOptions extends BenchOptions {
  /** cluster sizes (default 5 and 50) */
  readonly sizes?: ReadonlyArray<number>
  /**
   * child processes a cluster of more than 5 nodes is spread over (default: one per core,
   * at least 2); clusters of up to 5 nodes run one node per process
   */
  readonly shards?: number
  /** all nodes in this process instead */
  readonly inProcess?: boolean
}

/** Up to this many nodes, each runs in a process of its own. */
const DEDICATED_MAX = 5

const describeDiagnostics = (d: Diagnostics, shards: number | undefined): string =>
  `event-loop delay p99 ${d.loopDelayP99.toFixed(0)} ms (max ${d.loopDelayMax.toFixed(0)})` +
  `${shards === undefined ? "" : " in the worst process"}; GC ${d.gcTotalMs.toFixed(0)} ms in ${d.gcPauses} pauses ` +
  `(longest ${d.gcMaxMs.toFixed(0)} ms); CPU ${d.cpuPercent.toFixed(0)}% of a core` +
  `${shards === undefined ? "" : ` over ${shards} processes`}, during the writes and the wait`

export const run = async (options: ConvergenceOptions = {}): Promise<ReadonlyArray<BenchResult>> => {
  const log = options.log ?? ((line: string) => process.stderr.write(line + "\n"))
  const writes = options.quick === true ? 200 : 300
  const results: Array<BenchResult> = []
  const p99Of = new Map<number, number>()
  for (const size of options.sizes ?? [5, 50]) {
    const spacingMs = size <= 5 ? 5 : 20
    // every node Pings every other each heartbeat: 50 nodes send 2,450 Pings a second at
    // the default 1 s, which on 2 shared cores starves the processes running them, so
    // clusters beyond 10 nodes probe every 5 s (both configs)
    const heartbeatMs = size <= 10 ? undefined : 5_000
    const shards = options.inProcess === true
      ? undefined
      : size <= DEDICATED_MAX
      ? size
      : Math.min(size, options.shards ?? Math.max(2, cpus().length))
    // one node per process: a real data directory each; nodes sharing a process: a simulated disk
    const fileDisk = shards === size
    const where = shards === undefined
      ? "all nodes in one process, simulated disk (memory WAL)"
      : fileDisk
      ? "one process per node, each with a real data dir (file WAL, fdatasync before the ack)"
      : `nodes spread over ${shards} processes (${Math.ceil(size / shards)} or fewer each), ` +
        "simulated disk (memory WAL: 50 WALs fsyncing on one disk would measure the disk)"
    const once = (preset: Preset, waitMs: number) =>
      shards === undefined
        ? measure({ size, writes, spacingMs, config: presetConfig(preset, heartbeatMs), waitMs, log })
        : measureSharded({ size, shards, writes, spacingMs, preset, heartbeatMs, fileDisk, waitMs, log })
    log(`convergence: ${size} nodes, seed config (no eager push, sync 2 s); ${where}`)
    const seed = await once("seed", 40_000)
    log(`convergence: ${size} nodes, our config (eager push, 10 ms push window); ${where}`)
    const ours = await once("ours", 20_000)
    log(`  ${describeDiagnostics(ours.diagnostics, shards)}`)
    p99Of.set(size, ours.p99)
    const row = (r: ConvergenceRun) =>
      [
        figure("p99", r.p99, "ms", "lower"),
        figure("p50", r.p50, "ms", "lower"),
        figure("max", r.max, "ms", "lower"),
        figure("converged", r.converged, "writes", "higher")
      ] as const
    const setup = `${spacingMs} ms apart, TCP loopback, ${where}` +
      (heartbeatMs === undefined ? "" : `, heartbeat ${heartbeatMs / 1000} s`)
    results.push({
      bench: "convergence",
      name: `${size} nodes, seed gossip (no eager push, 2 s anti-entropy)`,
      figures: row(seed),
      notes: `${seed.writes} writes, ${setup}`
    })
    const ratio = ratioOf(ours.p99, seed.p99)
    const small = p99Of.get(5)
    const goal = size === 5
      ? { goal: "p99 ack-to-all-nodes in tens of ms", met: ours.converged === ours.writes && ours.p99 < 100 }
      : small !== undefined && size > 5
      ? { goal: `p99 <= 3x the 5-node p99 (${(3 * small).toFixed(0)} ms)`, met: ours.converged === ours.writes && ours.p99 <= 3 * small }
      : {}
    results.push({
      bench: "convergence",
      name: `${size} nodes, dcounter gossip (eager delta push)`,
      figures: row(ours),
      baseline: `${size} nodes, seed gossip (no eager push, 2 s anti-entropy)`,
      ...(ratio !== undefined ? { ratio } : {}),
      ...goal,
      notes: `${ours.writes} writes, ${setup}; ack = increment resolved (durable), end = last node merged it; ` +
        describeDiagnostics(ours.diagnostics, shards)
    })
  }
  return results
}

const argValue = (flag: string): string | undefined => {
  const i = process.argv.indexOf(flag)
  return i >= 0 ? process.argv[i + 1] : undefined
}

if (isMain(import.meta.url)) {
  if (process.argv.includes("--shard")) runShard()
  else {
    const sizes = argValue("--sizes")?.split(",").map(Number).filter((n) => Number.isInteger(n) && n > 1)
    const shards = Number(argValue("--shards"))
    void main((options) =>
      run({
        ...options,
        ...(sizes === undefined || sizes.length === 0 ? {} : { sizes }),
        ...(Number.isInteger(shards) && shards > 0 ? { shards } : {}),
        inProcess: process.argv.includes("--in-process")
      })
    )
  }
}
