/**
 * The node role: CRDT store behind the WAL, transport, membership, gossip, discovery and
 * the HTTP API, composed as layers.
 *
 *     NodeConfig -> NodeReadiness -> HTTP (probes answer, counter routes 503)
 *                -> DataDir -> Wal -> CounterStore
 *                -> Transport (Hello = advertised addresses + replica id) -> PeerManager -> Gossip
 *                -> DiscoveryClient (server, DNS, both, or none) -> services attached to HTTP
 *                   (and the Redis protocol, with --resp-addr)
 *
 * `layerServices` is the part every variant shares; `layerMemory` runs it on a simulated
 * disk and the in-process `MemoryNetwork` (tests, `dcounter simulate`); `layer` on files, TCP,
 * discovery and HTTP (`dcounter --role node`). Closing a node fails `/readyz` and stops
 * HTTP first (explicitly: it was built first), then the rest releases in reverse order:
 * gossip, then the queued writes are committed and the WAL flushed.
 *
 * `NodeConfig` is the only configuration of the production layers: the tunables an
 * operator may set are options there, and the modules' own options are built from it here.
 * `NodeServicesOptions` are for the memory variants (tests and simulations) only. The
 * discovery client is composed explicitly (`layerDiscovery`): exactly one, named by the
 * config, so the layer types show that PeerManager needs one.
 */
import { Context, Duration, Effect, Layer, Option } from "effect"
import {
  advertisedAddr,
  advertisedHttpAddr,
  discoveryRefreshOf,
  NodeConfig,
  type NodeConfigShape
} from "../config/NodeConfig.js"
import { portOf } from "../config/Values.js"
import { DiscoveryClient, layerUnion } from "../discoveryClient/DiscoveryClient.js"
import * as DiscoveryDns from "../discoveryClient/DiscoveryDns.js"
import * as DiscoveryHttp from "../discoveryClient/DiscoveryHttp.js"
import * as DiscoveryStatic from "../discoveryClient/DiscoveryStatic.js"
import * as DnsName from "../discoveryClient/DnsName.js"
import * as ApiServer from "../http/ApiServer.js"
import * as PeerManager from "./PeerManager.js"
import { Hello, PROTOCOL_VERSION } from "../protocol/Message.js"
import type { HostPort } from "../protocol/Message.js"
import { DataDir } from "../storage/DataDir.js"
import type { DataDirError } from "../storage/DataDir.js"
import * as DataDirFile from "../storage/DataDirFile.js"
import * as DataDirMemory from "../storage/DataDirMemory.js"
import type { MemoryDisk } from "../storage/MemoryDisk.js"
import type { Wal, WalCorrupted, WalError } from "../storage/Wal.js"
import * as WalFile from "../storage/WalFile.js"
import * as WalMemory from "../storage/WalMemory.js"
import type { MemoryNetwork } from "../transport/MemoryNetwork.js"
import * as RespServer from "./resp/RespServer.js"
import type { Transport, TransportError } from "../transport/Transport.js"
import * as TransportTcp from "../transport/TransportTcp.js"
import * as TransportMemory from "../transport/TransportMemory.js"
import * as CounterStore from "./CounterStore.js"
import * as Gossip from "./Gossip.js"
import * as KnownPeers from "./KnownPeers.js"
import * as NodeHttp from "./NodeHttp.js"
import * as NodeReadiness from "./NodeReadiness.js"

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
    gossipAddr: advertisedAddr(config) as HostPort,
    httpAddr: advertisedHttpAddr(config) as HostPort
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

/** CounterStore + PeerManager + Gossip over whatever DataDir, Wal, Transport and discovery are given. */
export const layerServices = (
  options: NodeServicesOptions = {}
): Layer.Layer<NodeServices, never, NodeConfig | DataDir | Wal | Transport | DiscoveryClient> =>
  Gossip.layer(options.gossip).pipe(
    Layer.provideMerge(PeerManager.layer(options.peers)),
    Layer.provideMerge(CounterStore.layer(options.store))
  )

/**
 * A node on a simulated disk and the in-process network: for tests and `dcounter simulate`.
 * Its discovery client is `options.discovery`, none by default (peers from `--peers` and
 * peer exchange).
 */
export const layerMemory = (
  disk: MemoryDisk,
  options: NodeServicesOptions & {
    readonly wal?: WalMemory.WalMemoryOptions
    readonly discovery?: Layer.Layer<DiscoveryClient>
  } = {}
): Layer.Layer<NodeServices | Transport | DataDir | Wal, DataDirError, NodeConfig | MemoryNetwork> =>
  layerServices(options).pipe(
    Layer.provide(options.discovery ?? DiscoveryStatic.layerNone),
    Layer.provideMerge(transportFor((self) => TransportMemory.layer(self))),
    Layer.provideMerge(WalMemory.layer(disk, options.wal)),
    Layer.provideMerge(DataDirMemory.layer(disk))
  )

/** What can stop a node from starting. */
export type NodeStartError =
  | DataDirError
  | WalCorrupted
  | WalError
  | TransportError
  | ApiServer.ApiServerError
  | RespServer.RespServerError

const logStarted = Layer.scopedDiscard(
  Effect.gen(function*() {
    const config = yield* NodeConfig
    const dataDir = yield* DataDir
    const http = (yield* ApiServer.ApiServer).url
    const discovery = Option.getOrElse(
      Option.orElse(config.discovery, () => Option.map(config.discoveryDns ?? Option.none(), DnsName.format)),
      () => "none"
    )
    yield* Effect.logInfo(
      `node ${dataDir.replicaId}${dataDir.fresh ? " (new replica)" : ""} up: gossip on ${config.addr}, ` +
        `HTTP on ${http}, advertised as ${advertisedAddr(config)} / ${advertisedHttpAddr(config)}, data dir ${dataDir.path}`
    )
    yield* Effect.logInfo(
      `node peers: ${config.peers.length > 0 ? config.peers.join(",") : "none given"}; discovery ${discovery}; ` +
        `eager push ${config.eagerPush ? `on (${Duration.format(config.pushWindow)} window)` : "off"}; ` +
        `sync ${Duration.format(config.syncInterval)}, full sync ${Duration.format(config.fullSyncInterval)}, ` +
        `heartbeat ${Duration.format(config.heartbeatInterval)}, max fails ${config.maxFails}, ` +
        `failure timeout ${Duration.format(config.failureTimeout)}; cluster key ${
          Option.isSome(config.clusterKey) ? "on" : "off"
        }`
    )
    yield* Effect.addFinalizer(() => Effect.logInfo(`node ${dataDir.replicaId} stopping`))
  })
)

/**
 * The node's discovery client, as the config names it: the discovery server
 * (`--discovery host:port`: registers this node, heartbeats, lists the others), DNS
 * (`--discovery dns:...`: A/AAAA answers on the advertised gossip port, or SRV), both when
 * both are set, or none. Each re-reads its peers every `--refresh-interval`.
 */
export const layerDiscovery: Layer.Layer<DiscoveryClient, never, NodeConfig | DataDir> = Layer.unwrapEffect(
  Effect.gen(function*() {
    const config = yield* NodeConfig
    const dataDir = yield* DataDir
    const refreshInterval = discoveryRefreshOf(config)
    const server = Option.map(config.discovery, (discovery) =>
      DiscoveryHttp.layer({
        discovery,
        self: { addr: advertisedAddr(config), httpAddr: advertisedHttpAddr(config), nodeId: dataDir.replicaId },
        heartbeatInterval: config.heartbeatInterval,
        refreshInterval,
        clusterKey: config.clusterKey
      }))
    const dns = Option.map(config.discoveryDns ?? Option.none(), (name) =>
      DiscoveryDns.layer({
        name,
        target: "gossip",
        defaultPort: portOf(advertisedAddr(config)),
        dnsServer: config.dnsServer ?? Option.none(),
        refreshInterval
      }))
    const layers = [...Option.toArray(server), ...Option.toArray(dns)]
    return layers.length === 0 ? DiscoveryStatic.layerNone : layers.length === 1 ? layers[0]! : layerUnion(...layers)
  })
)

/** Marks a start-up step done once `layer` is built (see NodeReadiness). */
const stepDone = (step: NodeReadiness.Step) => <A, E, R>(layer: Layer.Layer<A, E, R>) =>
  Layer.tap(layer, () => Effect.flatMap(NodeReadiness.NodeReadiness, (readiness) => readiness.done(step)))

/**
 * Hands the running services to the HTTP handlers; when the node stops, fails `/readyz`
 * and closes the HTTP API before anything else closes.
 */
const attach = Layer.scopedDiscard(
  Effect.gen(function*() {
    const readiness = yield* NodeReadiness.NodeReadiness
    const server = yield* ApiServer.ApiServer
    yield* readiness.attach({ store: yield* CounterStore.CounterStore, peers: yield* PeerManager.PeerManager })
    yield* Effect.addFinalizer(() => readiness.stopping.pipe(Effect.zipRight(server.close)))
  })
)

/**
 * The node role over a given data directory and WAL (`layer` gives the files; tests give
 * memory ones, and can hold their recovery): TCP gossip, discovery (a discovery server,
 * DNS, both or none: `layerDiscovery`), the HTTP API on `--http-addr`.
 *
 * The HTTP API starts first, so `/livez` answers and `/readyz` reports the missing step
 * while the WAL is recovered and the gossip listener starts (NodeReadiness); the counter
 * routes answer 503 until then. Closing stops HTTP first (after failing `/readyz`), then
 * gossip and membership, deregisters from discovery, closes the gossip sockets, commits the
 * queued writes and flushes the WAL, and last unlocks the data directory.
 */
export const layerOver = <E>(
  walAndDataDir: Layer.Layer<Wal | DataDir, E, NodeConfig>
): Layer.Layer<NodeServices | Transport | DataDir | ApiServer.ApiServer, NodeStartError | E, NodeConfig> =>
  Layer.unwrapEffect(
    Effect.map(NodeConfig, (config) => {
      const storage = CounterStore.layer().pipe(Layer.provideMerge(walAndDataDir), stepDone("wal"))
      const transport = transportFor((self) =>
        TransportTcp.layer({ listen: config.addr as HostPort, self, clusterKey: config.clusterKey })
      ).pipe(stepDone("gossip"))
      const services = Gossip.layer().pipe(
        Layer.provideMerge(KnownPeers.layer().pipe(Layer.provideMerge(PeerManager.layer()))),
        Layer.provideMerge(layerDiscovery),
        Layer.provideMerge(transport)
      )
      // the Redis-protocol listener (only with --resp-addr), beside HTTP over the same
      // services; once the data directory gave the replica id, every log line carries it
      const running = Layer.unwrapEffect(
        Effect.map(DataDir, (dataDir) =>
          Layer.annotateLogs(
            Layer.mergeAll(attach, logStarted, RespServer.layerFromConfig).pipe(Layer.provideMerge(services)),
            "nodeId",
            dataDir.replicaId
          ))
      )
      return running.pipe(
        Layer.provideMerge(storage),
        Layer.provideMerge(NodeHttp.layer),
        Layer.provideMerge(NodeReadiness.layer),
        Layer.map((context) => Context.omit(NodeReadiness.NodeReadiness)(context))
      )
    })
  )

/** The WAL tunables of `NodeConfig`, as the file WAL takes them (unset: its own defaults). */
export const walOptionsOf = (config: NodeConfigShape): WalFile.WalFileOptions => ({
  ...(config.walFlushInterval === undefined ? {} : { flushInterval: config.walFlushInterval }),
  ...(config.snapshotInterval === undefined ? {} : { snapshotInterval: config.snapshotInterval }),
  ...(config.snapshotEveryRecords === undefined ? {} : { snapshotEveryRecords: config.snapshotEveryRecords })
})

/** `dcounter --role node`: the role on real resources, data directory and file WAL (see `layerOver`). */
export const layer: Layer.Layer<NodeServices | Transport | DataDir | ApiServer.ApiServer, NodeStartError, NodeConfig> =
  Layer.unwrapEffect(
    Effect.map(NodeConfig, (config) =>
      layerOver(WalFile.layer(walOptionsOf(config)).pipe(Layer.provideMerge(DataDirFile.layer(config.dataDir)))))
  )
