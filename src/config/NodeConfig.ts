/**
 * Settings of the node role, with the contract's defaults. `layer(partial)` is for tests;
 * the CLI (main.ts) builds the full object from flags and `DCOUNTER_*` variables.
 */
import { Context, Duration, Layer, Option, Redacted } from "effect"
import type { DnsName } from "../discoveryClient/DnsName.js"

export interface NodeConfigShape {
  /** gossip TCP address to listen on and advertise */
  readonly addr: string
  /** HTTP API address */
  readonly httpAddr: string
  readonly discovery: Option.Option<string>
  readonly peers: ReadonlyArray<string>
  readonly dataDir: string
  readonly syncInterval: Duration.Duration
  readonly fullSyncInterval: Duration.Duration
  readonly maxSyncPeers: number
  readonly heartbeatInterval: Duration.Duration
  readonly maxFails: number
  readonly failureTimeout: Duration.Duration
  readonly clusterKey: Option.Option<Redacted.Redacted<string>>
  /** eager delta push of local writes (off reproduces the seed's behaviour) */
  readonly eagerPush: boolean
  /** at most one eager push per window; the first change after a quiet window goes at once */
  readonly pushWindow: Duration.Duration
  /** Redis-protocol (RESP) listener address; none: no RESP listener */
  readonly respAddr: Option.Option<string>
  /** password RESP clients must AUTH with; none: no AUTH */
  readonly respPassword: Option.Option<Redacted.Redacted<string>>
  /** gossip address peers, discovery and the gateway are told (none: `addr`) */
  readonly advertiseAddr?: Option.Option<string> | undefined
  /** HTTP address discovery and the gateway are told (none: `httpAddr`) */
  readonly advertiseHttpAddr?: Option.Option<string> | undefined
  /** `--discovery dns:NAME[:PORT]` / `dns+srv:NAME`: peers from DNS (beside or instead of `discovery`) */
  readonly discoveryDns?: Option.Option<DnsName> | undefined
  /** `--dns-server host:port`: the resolver DNS discovery asks (none: the system's) */
  readonly dnsServer?: Option.Option<string> | undefined
}

/** The gossip address others are told: `--advertise-addr`, else `--addr`. */
export const advertisedAddr = (config: NodeConfigShape): string =>
  Option.getOrElse(config.advertiseAddr ?? Option.none(), () => config.addr)

/** The HTTP address others are told: `--advertise-http-addr`, else `--http-addr`. */
export const advertisedHttpAddr = (config: NodeConfigShape): string =>
  Option.getOrElse(config.advertiseHttpAddr ?? Option.none(), () => config.httpAddr)

/** `--http-addr` default: same host, port 8010 + (gossip port - 9000). */
export const defaultHttpAddr = (addr: string): string => {
  const i = addr.lastIndexOf(":")
  const host = addr.slice(0, i)
  const port = Number(addr.slice(i + 1))
  return `${host}:${8010 + (port - 9000)}`
}

/** `--data-dir` default: `./data/<gossip addr with : as _>`. */
export const defaultDataDir = (addr: string): string => `./data/${addr.replaceAll(":", "_")}`

export const defaults: NodeConfigShape = {
  addr: "127.0.0.1:9000",
  httpAddr: "127.0.0.1:8010",
  discovery: Option.none(),
  peers: [],
  dataDir: "./data/127.0.0.1_9000",
  syncInterval: Duration.seconds(2),
  fullSyncInterval: Duration.seconds(20),
  maxSyncPeers: 2,
  heartbeatInterval: Duration.seconds(1),
  maxFails: 5,
  failureTimeout: Duration.seconds(30),
  clusterKey: Option.none(),
  eagerPush: true,
  pushWindow: Duration.millis(10),
  respAddr: Option.none(),
  respPassword: Option.none()
}

export class NodeConfig extends Context.Tag("dcounter/NodeConfig")<NodeConfig, NodeConfigShape>() {
  static readonly layer = (partial: Partial<NodeConfigShape> = {}) =>
    Layer.succeed(NodeConfig, { ...defaults, ...partial })
}
