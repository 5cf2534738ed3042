/**
 * N nodes in one process on the in-process `MemoryNetwork`, each on its own `MemoryDisk`: the
 * harness of the cluster tests and of `dcounter simulate`. Nodes can be written to, read,
 * stopped, crashed (kill -9 of the disk's process), restarted on the same disk, or
 * restarted on a new empty disk (a lost data directory). Every node lives in its own
 * scope under the cluster's.
 */
import type { Scope } from "effect"
import { Context, Effect, ExecutionStrategy, Exit, Layer, Scope as S } from "effect"
import { NodeConfig, type NodeConfigShape } from "../config/NodeConfig.js"
import type { CounterName } from "../crdt/CounterName.js"
import type { DiscoveryClient } from "../discoveryClient/DiscoveryClient.js"
import { PeerManager } from "./PeerManager.js"
import type { HostPort } from "../protocol/Message.js"
import * as MemoryDiskModule from "../storage/MemoryDisk.js"
import type { MemoryDisk } from "../storage/MemoryDisk.js"
import { MemoryNetwork } from "../transport/MemoryNetwork.js"
import { Transport } from "../transport/Transport.js"
import { CounterStore, type WriteError } from "./CounterStore.js"
import { Gossip } from "./Gossip.js"
import * as NodeRole from "./NodeRole.js"

export interface MemoryClusterOptions {
  /** Number of nodes started at once (default 5). */
  readonly size: number
  /** Settings shared by every node (addresses and peers are set per node). */
  readonly config?: Partial<NodeConfigShape>
  /**
   * Which peers each node is given as `--peers`: every other node (`"all"`, the default),
   * only the first node (`"first"`: the others find each other by peer exchange), or none.
   */
  readonly seeds?: "all" | "first" | "none"
  readonly services?: NodeRole.NodeServicesOptions
  /** The first gossip port (default 9001); node i listens on host:basePort+i. */
  readonly basePort?: number
  readonly host?: string
  /** A discovery client for every node (e.g. a test double shared by the cluster). */
  readonly discovery?: (node: { readonly index: number; readonly addr: HostPort }) => Layer.Layer<DiscoveryClient>
}

/** A started node: its services, until it is stopped. */
export interface RunningNode {
  readonly store: CounterStore["Type"]
  readonly peers: PeerManager["Type"]
  readonly gossip: Gossip["Type"]
  readonly transport: Transport["Type"]
}

export interface ClusterNode {
  readonly index: number
  readonly addr: HostPort
  readonly httpAddr: string
  /** The node's current disk (replaced by `restart({ freshDisk: true })`). */
  readonly disk: MemoryDisk
  /** The running node, or undefined while stopped. */
  readonly running: RunningNode | undefined
}

export interface MemoryCluster {
  readonly network: MemoryNetwork["Type"]
  readonly nodes: ReadonlyArray<ClusterNode>
  /** The running services of node `i` (dies if it is stopped). */
  readonly node: (i: number) => RunningNode
  /** Starts one more node (a late joiner), with the given static peers (default: node 0). */
  readonly add: (peers?: ReadonlyArray<string>) => Effect.Effect<ClusterNode>
  readonly increment: (i: number, name: CounterName, by?: number) => Effect.Effect<number, WriteError>
  readonly decrement: (i: number, name: CounterName, by?: number) => Effect.Effect<number, WriteError>
  /** The value of `name` on every running node, in node order. */
  readonly values: (name: CounterName) => Effect.Effect<ReadonlyArray<number>>
  /** Whether every running node holds exactly the same state. */
  readonly converged: Effect.Effect<boolean>
  /** Graceful stop (scope closed: queued writes committed, WAL flushed). */
  readonly stop: (i: number) => Effect.Effect<void>
  /** kill -9: the disk loses what was not durable; the node's fibers stop. */
  readonly crash: (i: number) => Effect.Effect<void>
  /** Starts a stopped node again on its disk, or on a new empty disk (a lost data directory). */
  readonly restart: (i: number, options?: { readonly freshDisk?: boolean }) => Effect.Effect<void>
}

interface Slot {
  readonly index: number
  readonly addr: HostPort
  readonly httpAddr: string
  readonly peers: ReadonlyArray<string>
  disk: MemoryDisk
  running: RunningNode | undefined
  scope: Scope.CloseableScope | undefined
}

export const make = (options: MemoryClusterOptions): Effect.Effect<MemoryCluster, never, MemoryNetwork | Scope.Scope> =>
  Effect.gen(function*() {
    const network = yield* MemoryNetwork
    const clusterScope = yield* Effect.scope
    const host = options.host ?? "127.0.0.1"
    const basePort = options.basePort ?? 9001
    const slots: Array<Slot> = []
    const addrOf = (i: number) => `${host}:${basePort + i}` as HostPort
    // heartbeats on exact multiples of the interval unless asked otherwise: reproducible runs
    const services: NodeRole.NodeServicesOptions = {
      ...options.services,
      peers: { startJitter: false, ...options.services?.peers }
    }

    const start = (slot: Slot) =>
      Effect.gen(function*() {
        const scope = yield* S.fork(clusterScope, ExecutionStrategy.sequential)
        const config = NodeConfig.layer({
          ...options.config,
          addr: slot.addr,
          httpAddr: slot.httpAddr,
          peers: slot.peers,
          dataDir: slot.disk.path
        })
        const discovery = options.discovery?.({ index: slot.index, addr: slot.addr })
        const ctx = yield* Layer.buildWithScope(
          NodeRole.layerMemory(slot.disk, discovery === undefined ? services : { ...services, discovery }).pipe(
            Layer.provide(Layer.mergeAll(config, Layer.succeed(MemoryNetwork, network)))
          ),
          scope
        ).pipe(Effect.orDie)
        slot.scope = scope
        slot.running = {
          store: Context.get(ctx, CounterStore),
          peers: Context.get(ctx, PeerManager),
          gossip: Context.get(ctx, Gossip),
          transport: Context.get(ctx, Transport)
        }
      })

    const close = (slot: Slot) =>
      Effect.gen(function*() {
        const scope = slot.scope
        slot.scope = undefined
        slot.running = undefined
        if (scope !== undefined) yield* S.close(scope, Exit.void)
      })

    const newSlot = (index: number, peers: ReadonlyArray<string>): Slot => ({
      index,
      addr: addrOf(index),
      httpAddr: `${host}:${8010 + basePort + index - 9000}`,
      peers,
      disk: MemoryDiskModule.make(),
      running: undefined,
      scope: undefined
    })

    const seedsFor = (i: number): ReadonlyArray<string> => {
      switch (options.seeds ?? "all") {
        case "all":
          return Array.from({ length: options.size }, (_, j) => j).filter((j) => j !== i).map(addrOf)
        case "first":
          return i === 0 ? [] : [addrOf(0)]
        case "none":
          return []
      }
    }

    for (let i = 0; i < options.size; i++) slots.push(newSlot(i, seedsFor(i)))
    for (const slot of slots) yield* start(slot)

    const slot = (i: number): Slot => {
      const s = slots[i]
      if (s === undefined) throw new RangeError(`no node ${i} in a cluster of ${slots.length}`)
      return s
    }
    const node = (i: number): RunningNode => {
      const r = slot(i).running
      if (r === undefined) throw new Error(`node ${i} is not running`)
      return r
    }

    return {
      network,
      get nodes() {
        return slots.map((s): ClusterNode => ({
          index: s.index,
          addr: s.addr,
          httpAddr: s.httpAddr,
          disk: s.disk,
          running: s.running
        }))
      },
      node,
      add: (peers) =>
        Effect.gen(function*() {
          const s = newSlot(slots.length, peers ?? [addrOf(0)])
          slots.push(s)
          yield* start(s)
          return { index: s.index, addr: s.addr, httpAddr: s.httpAddr, disk: s.disk, running: s.running }
        }),
      increment: (i, name, by = 1) => Effect.suspend(() => node(i).store.increment(name, by)),
      decrement: (i, name, by = 1) => Effect.suspend(() => node(i).store.decrement(name, by)),
      values: (name) =>
        Effect.forEach(slots.filter((s) => s.running !== undefined), (s) => s.running!.store.value(name)),
      converged: Effect.gen(function*() {
        const digests = yield* Effect.forEach(slots.filter((s) => s.running !== undefined), (s) => s.running!.store.digest)
        return digests.every((d) => d === digests[0])
      }),
      stop: (i) => close(slot(i)),
      crash: (i) =>
        Effect.suspend(() => {
          slot(i).disk.crash()
          return close(slot(i))
        }),
      restart: (i, opts) =>
        Effect.gen(function*() {
          const s = slot(i)
          yield* close(s)
          if (opts?.freshDisk === true) s.disk = MemoryDiskModule.make()
          yield* start(s)
        })
    }
  })
