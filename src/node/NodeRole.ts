/**
 * The node role: CRDT store behind the WAL, transport, membership, gossip, discovery and
 * the HTTP API, composed as layers.
 *
 *     NodeConfig -> DataDir -> Wal -> CounterStore
 *                -> Transport (Hello = addresses + replica id) -> PeerManager -> Gossip
 *                -> discovery client -> HTTP
 *
 * `layerServices` is the part every variant shares; `layerMemory` runs it on a simulated
 * disk and the in-process `Network` (tests, `dcounter simulate`); `layer` (in
 * NodeMain.ts) on files, TCP and HTTP. Layers release in reverse order, so a closing node
 * stops HTTP first, then gossip, then commits its queued writes and flushes the WAL.
 */
import { Effect, Layer } from "effect"
import { NodeConfig, type NodeConfigShape } from "../config/NodeConfig.js"
import * as PeerManager from "../membership/PeerManager.js"
import { Hello, PROTOCOL_VERSION } from "../protocol/Message.js"
import type { HostPort } from "../protocol/Message.js"
import { DataDir } from "../storage/DataDir.js"
import type { DataDirError } from "../storage/DataDir.js"
import * as DataDirMemory from "../storage/DataDirMemory.js"
import type { MemoryDisk } from "../storage/MemoryDisk.js"
import type { Wal } from "../storage/Wal.js"
import * as WalMemory from "../storage/WalMemory.js"
import type { Network } from "../transport/Network.js"
import type { Transport } from "../transport/Transport.js"
import * as TransportMemory from "../transport/TransportMemory.js"
import * as CounterStore from "./CounterStore.js"
import * as Gossip from "./Gossip.js"

export interface NodeServicesOptions {
  readonly store?: CounterStore.CounterStoreOptions
  readonly peers?: PeerManager.PeerManagerOptions
  readonly gossip?: Gossip.GossipOptions
}

/** What a running node offers to HTTP handlers, tests and simulations. */
export type NodeServices = CounterStore.CounterStore | PeerManager.PeerManager | Gossip.Gossip

/** The node's identity on the wire: its addresses and replica id. */
export const helloOf = (config: NodeConfigShape, replicaId: DataDir["Type"]["replicaId"]): Hello =>
  new Hello({
    protocol: PROTOCOL_VERSION,
    replicaId,
    gossipAddr: config.addr as HostPort,
    httpAddr: config.httpAddr as HostPort
  })

/** A transport layer built from the node's Hello, once the data directory gave the replica id. */
export const transportFor = <E, R>(
  make: (self: Hello, config: NodeConfigShape) => Layer.Layer<Transport, E, R>
): Layer.Layer<Transport, E, R | NodeConfig | DataDir> =>
  Layer.unwrapEffect(
    Effect.gen(function*() {
      const config = yield* NodeConfig
      const dataDir = yield* DataDir
      return make(helloOf(config, dataDir.replicaId), config)
    })
  )

/** CounterStore + PeerManager + Gossip over whatever DataDir, Wal and Transport are given. */
export const layerServices = (
  options: NodeServicesOptions = {}
): Layer.Layer<NodeServices, never, NodeConfig | DataDir | Wal | Transport> =>
  Gossip.layer(options.gossip).pipe(
    Layer.provideMerge(PeerManager.layer(options.peers)),
    Layer.provideMerge(CounterStore.layer(options.store))
  )

/** A node on a simulated disk and the in-process network: for tests and `dcounter simulate`. */
export const layerMemory = (
  disk: MemoryDisk,
  options: NodeServicesOptions & { readonly wal?: WalMemory.WalMemoryOptions } = {}
): Layer.Layer<NodeServices | Transport | DataDir | Wal, DataDirError, NodeConfig | Network> =>
  layerServices(options).pipe(
    Layer.provideMerge(transportFor((self) => TransportMemory.layer(self))),
    Layer.provideMerge(WalMemory.layer(disk, options.wal)),
    Layer.provideMerge(DataDirMemory.layer(disk))
  )
