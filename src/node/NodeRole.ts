/**
 * The node role: CRDT store behind the WAL, transport, membership, gossip, discovery and
 * the HTTP API, composed as layers.
 *
 *     NodeConfig -> NodeReadiness -> HTTP (probes answer, counter routes 503)
 *                -> DataDir -> Wal -> CounterStore
 *                -> Transport (Hello = advertised addresses + replica id) -> PeerManager -> Gossip
 *                -> discovery client (server or DNS) -> services attached to HTTP
 *                   (and the Redis protocol, with --resp-addr)
 *
 * `layerServices` is the part every variant shares; `layerMemory` runs it on a simulated
 * disk and the in-process `MemoryNetwork` (tests, `dcounter simulate`); `layer` on files, TCP,
 * discovery and HTTP (`dcounter --role node`). Closing a node fails `/readyz` and stops
 * HTTP first (explicitly: it was built first), then the rest releases in reverse order:
 * gossip, then the queued writes are committed and the WAL flushed.
 */
import { Context, Duration, Effect, Layer, Option } from "effect"
import { advertisedAddr, advertisedHttpAddr, NodeConfig, type NodeConfigShape } from "../config/NodeConfig.js"
import { portOf } from "../config/Values.js"
import * as DiscoveryDns from "../discoveryClient/DiscoveryDns.js"
import * as DiscoveryHttp from "../discoveryClient/DiscoveryHttp.js"
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
): Layer.Layer<NodeServices | Transport | DataDir | Wal, DataDirError, NodeConfig | MemoryNetwork> =>
  layerServices(options).pipe(
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

/** Peers from DNS when `--discovery dns:...` is set (A/AAAA answers on the advertised gossip port). */
const discoveryDns = (config: NodeConfigShape) =>
  Option.match(config.discoveryDns ?? Option.none(), {
    onNone: () => Layer.empty,
    onSome: (name) =>
      DiscoveryDns.layer({
        name,
        target: "gossip",
        defaultPort: portOf(advertisedAddr(config)),
        dnsServer: config.dnsServer ?? Option.none(),
        refreshInterval: config.syncInterval
      })
  })

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
 * The node role over a given data directory and WAL (`layerWith` gives the files; tests
 * give memory ones, and can hold their recovery): TCP gossip, discovery (a discovery
 * server, DNS or none), the HTTP API on `--http-addr`.
 *
 * The HTTP API starts first, so `/livez` answers and `/readyz` reports the missing step
 * while the WAL is recovered and the gossip listener starts (NodeReadiness); the counter
 * routes answer 503 until then. Closing stops HTTP first (after failing `/readyz`), then
 * gossip and membership, deregisters from discovery, closes the gossip sockets, commits the
 * queued writes and flushes the WAL, and last unlocks the data directory.
 */
export const layerOver = <E>(
  walAndDataDir: Layer.Layer<Wal | DataDir, E, NodeConfig>,
  options: NodeServicesOptions = {}
): Layer.Layer<NodeServices | Transport | DataDir | ApiServer.ApiServer, NodeStartError | E, NodeConfig> =>
  Layer.unwrapEffect(
    Effect.map(NodeConfig, (config) => {
      const storage = CounterStore.layer(options.store).pipe(Layer.provideMerge(walAndDataDir), stepDone("wal"))
      const transport = transportFor((self) =>
        TransportTcp.layer({ listen: config.addr as HostPort, self, clusterKey: config.clusterKey })
      ).pipe(stepDone("gossip"))
      const discovery = Option.match(config.discovery, {
        onNone: () => discoveryDns(config),
        onSome: (addr) =>
          Layer.unwrapEffect(
            Effect.map(DataDir, (dataDir) =>
              DiscoveryHttp.layer({
                discovery: addr,
                self: { addr: advertisedAddr(config), httpAddr: advertisedHttpAddr(config), nodeId: dataDir.replicaId },
                heartbeatInterval: config.heartbeatInterval,
                refreshInterval: config.syncInterval,
                clusterKey: config.clusterKey
              })
            )
          )
      })
      const services = Gossip.layer(options.gossip).pipe(
        Layer.provideMerge(KnownPeers.layer().pipe(Layer.provideMerge(PeerManager.layer(options.peers)))),
        Layer.provideMerge(discovery),
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

/** The node role on real resources: data directory and file WAL (see `layerOver`). */
export const layerWith = (
  options: NodeServicesOptions & { readonly wal?: WalFile.WalFileOptions } = {}
): Layer.Layer<NodeServices | Transport | DataDir | ApiServer.ApiServer, NodeStartError, NodeConfig> =>
  Layer.unwrapEffect(
    Effect.map(NodeConfig, (config) =>
      layerOver(WalFile.layer(options.wal).pipe(Layer.provideMerge(DataDirFile.layer(config.dataDir))), options))
  )

/** `dcounter --role node`. */
export const layer = layerWith()
