/**
 * Settings of the node role: the `NodeConfig` tag holding a plain object, its `defaults`,
 * `layer(partial)` for tests, and `config`, which reads every option of the role (declared
 * once in `settings`, see Setting.ts) from flags and `DCOUNTER_*` variables, derives the
 * defaults that depend on other options and checks the options against each other.
 *
 * The settings added after the first release are optional in the shape (`?`), so a test's
 * `layer(partial)` keeps the behaviour it had; the accessors below give their defaults.
 */
import { Config, type ConfigError, Context, Duration, Either, Layer, Option, Redacted } from "effect"
import type { DnsName } from "../discoveryClient/DnsName.js"
import * as CommonSettings from "./CommonSettings.js"
import * as Setting from "./Setting.js"
import * as Values from "./Values.js"

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
  /** how often the discovery client re-reads its peers (server or DNS); none: `syncInterval` */
  readonly refreshInterval?: Option.Option<Duration.Duration> | undefined
  /** how long lazily appended WAL entries (merged gossip) may wait before they are made durable */
  readonly walFlushInterval?: Duration.Duration | undefined
  /** a WAL snapshot after this long with at least one record since the last... */
  readonly snapshotInterval?: Duration.Duration | undefined
  /** ...or after this many records, whichever comes first */
  readonly snapshotEveryRecords?: number | undefined
}

/** The discovery refresh: `--refresh-interval`, else `--sync-interval`. */
export const discoveryRefreshOf = (config: NodeConfigShape): Duration.Duration =>
  Option.getOrElse(config.refreshInterval ?? Option.none(), () => config.syncInterval)

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
  respPassword: Option.none(),
  walFlushInterval: Duration.millis(50),
  snapshotInterval: Duration.minutes(10),
  snapshotEveryRecords: 100_000
}

export class NodeConfig extends Context.Tag("dcounter/NodeConfig")<NodeConfig, NodeConfigShape>() {
  static readonly layer = (partial: Partial<NodeConfigShape> = {}) =>
    Layer.succeed(NodeConfig, { ...defaults, ...partial })
}

// ---------------------------------------------------------------------------------------
// The options of `dcounter --role node`

const addr = Setting.withDefault(
  {
    name: "addr",
    value: "host:port",
    description: "Gossip TCP address to listen on and advertise to peers (peers must be able to reach it).",
    default: defaults.addr
  },
  Values.hostPort,
  defaults.addr
)

const httpAddr = Setting.optional(
  {
    name: "http-addr",
    value: "host:port",
    description: "Address of the node's HTTP API.",
    default: "same host as --addr, port 8010 + (gossip port - 9000)"
  },
  Values.hostPort
)

const discovery = Setting.optional(
  {
    name: "discovery",
    value: "host:port|dns:NAME[:PORT]|dns+srv:NAME",
    description:
      "Discovery server to register with and learn peers from; or dns:NAME (A/AAAA records, each address on " +
      "this node's gossip port), dns:NAME:PORT, or dns+srv:NAME (SRV records give host and port), re-read " +
      "every --refresh-interval.",
    default: "none"
  },
  Values.discoverySource
)

const peers = Setting.withDefault(
  {
    name: "peers",
    value: "host:port,...",
    description: "Static gossip peers, comma separated; may be combined with --discovery.",
    default: "none"
  },
  Values.hostPortList,
  defaults.peers
)

const dataDir = Setting.optional(
  {
    name: "data-dir",
    value: "path",
    description: "Directory of the node's write-ahead log, snapshots and replica id (locked while running).",
    default: "./data/<--addr with : as _>"
  },
  Values.nonEmpty
)

const syncInterval = Setting.withDefault(
  {
    name: "sync-interval",
    value: "duration",
    description: "How often the node compares digests with a few random peers (anti-entropy).",
    default: Values.formatDuration(defaults.syncInterval)
  },
  Values.duration,
  defaults.syncInterval
)

const fullSyncInterval = Setting.optional(
  {
    name: "full-sync-interval",
    value: "duration",
    description:
      "A second, slower anti-entropy round to a few peers. Full state goes only to a peer that holds none of " +
      "this node's history (new, restarted).",
    default: "10 x --sync-interval"
  },
  Values.duration
)

const maxSyncPeers = Setting.withDefault(
  {
    name: "max-sync-peers",
    value: "count",
    description: "How many peers each sync round talks to.",
    default: String(defaults.maxSyncPeers)
  },
  Values.integer(1, 1000),
  defaults.maxSyncPeers
)

const heartbeatInterval = Setting.withDefault(
  {
    name: "heartbeat-interval",
    value: "duration",
    description: "How often the node pings its peers and heartbeats to discovery.",
    default: Values.formatDuration(defaults.heartbeatInterval)
  },
  Values.duration,
  defaults.heartbeatInterval
)

const maxFails = Setting.withDefault(
  {
    name: "max-fails",
    value: "count",
    description: "Missed pings in a row after which a peer is suspected.",
    default: String(defaults.maxFails)
  },
  Values.integer(1, 1000),
  defaults.maxFails
)

const failureTimeout = Setting.withDefault(
  {
    name: "failure-timeout",
    value: "duration",
    description: "A suspect peer not heard from for this long is declared dead.",
    default: Values.formatDuration(defaults.failureTimeout)
  },
  Values.duration,
  defaults.failureTimeout
)

const eagerPush = Setting.withDefault(
  {
    name: "eager-push",
    value: "true|false",
    description: "Push local writes to peers at once (false: only the periodic sync spreads them).",
    default: String(defaults.eagerPush)
  },
  Values.boolean,
  defaults.eagerPush
)

const pushWindow = Setting.withDefault(
  {
    name: "push-window",
    value: "duration",
    description:
      "The first change after a quiet window is pushed to the peers at once; under load at most one eager push " +
      "leaves per window, carrying every write of it.",
    default: Values.formatDuration(defaults.pushWindow)
  },
  Values.duration,
  defaults.pushWindow
)

const respAddr = Setting.optional(
  {
    name: "resp-addr",
    value: "host:port",
    description:
      "Also serve the Redis protocol (RESP2/RESP3) here: INCR, INCRBY, DECR, DECRBY (answered once durable), " +
      "GET, MGET, EXISTS, SCAN from any Redis client (see docs/resp.md).",
    default: "off"
  },
  Values.hostPort
)

const respPassword = Setting.optional(
  {
    name: "resp-password",
    value: "secret",
    description: "Password Redis-protocol clients must give (AUTH or HELLO ... AUTH default <password>).",
    default: "none (no AUTH)"
  },
  Values.nonEmpty
)

const respPasswordFile = Setting.optional(
  {
    name: "resp-password-file",
    value: "path",
    description: "Read --resp-password from this file (one trailing newline ignored); exclusive with --resp-password.",
    default: "none"
  },
  Values.nonEmpty
)

const advertiseAddr = Setting.optional(
  {
    name: "advertise-addr",
    value: "host:port",
    description:
      "Gossip address peers, discovery and the gateway are told, when it is not --addr (a pod IP, a NAT). " +
      "Required when --addr binds a wildcard (0.0.0.0, ::), which is never advertised.",
    default: "--addr"
  },
  Values.advertisableHostPort
)

const advertiseHttpAddr = Setting.optional(
  {
    name: "advertise-http-addr",
    value: "host:port",
    description: "HTTP address discovery and the gateway are told, when it is not --http-addr.",
    default: "--http-addr, or the --advertise-addr host with the --http-addr port when --http-addr is a wildcard"
  },
  Values.advertisableHostPort
)

const dnsServer = Setting.optional(
  {
    name: "dns-server",
    value: "ip:port",
    description: "DNS server that --discovery dns:... asks (an IP address, like 10.96.0.10:53).",
    default: "the system's resolver"
  },
  Values.dnsServer
)

const refreshInterval = Setting.optional(
  {
    name: "refresh-interval",
    value: "duration",
    description:
      "How often the peers are re-read from --discovery (the discovery server's list, or the DNS records).",
    default: "--sync-interval"
  },
  Values.duration
)

const walFlushInterval = Setting.withDefault(
  {
    name: "wal-flush-interval",
    value: "duration",
    description:
      "How long state merged from peers may wait before it is made durable (local writes are durable before " +
      "they are answered, whatever this is); longer: fewer disk syncs, more to fetch again from peers after a crash.",
    default: Values.formatDuration(defaults.walFlushInterval!)
  },
  Values.duration,
  defaults.walFlushInterval!
)

const snapshotInterval = Setting.withDefault(
  {
    name: "snapshot-interval",
    value: "duration",
    description:
      "Snapshot the state and drop the WAL segments it covers after this long with at least one new record " +
      "(or after --snapshot-every-records, whichever comes first); bounds the replay at start-up.",
    default: Values.formatDuration(defaults.snapshotInterval!)
  },
  Values.duration,
  defaults.snapshotInterval!
)

const snapshotEveryRecords = Setting.withDefault(
  {
    name: "snapshot-every-records",
    value: "count",
    description: "Snapshot after this many WAL records since the last snapshot (or after --snapshot-interval).",
    default: String(defaults.snapshotEveryRecords)
  },
  Values.integer(1, 1_000_000_000),
  defaults.snapshotEveryRecords!
)

/** The role's own options, in the order of the help. */
export const settings: ReadonlyArray<Setting.SettingDoc> = [
  addr,
  httpAddr,
  discovery,
  peers,
  dataDir,
  syncInterval,
  fullSyncInterval,
  maxSyncPeers,
  heartbeatInterval,
  maxFails,
  failureTimeout,
  eagerPush,
  pushWindow,
  respAddr,
  respPassword,
  respPasswordFile,
  advertiseAddr,
  advertiseHttpAddr,
  dnsServer,
  refreshInterval,
  walFlushInterval,
  snapshotInterval,
  snapshotEveryRecords
]

const fail = (message: string) => Either.left(Setting.fail(message))

/** `--resp-password`, or the content of `--resp-password-file` (one trailing newline dropped). */
const respPasswordConfig = Config.all([respPassword.config, respPasswordFile.config]).pipe(
  Config.mapOrFail(([given, file]): Either.Either<Option.Option<Redacted.Redacted<string>>, ConfigError.ConfigError> => {
    if (Option.isSome(given) && Option.isSome(file)) {
      return fail("--resp-password and --resp-password-file are exclusive: give one")
    }
    if (Option.isSome(given)) return Either.right(Option.some(Redacted.make(given.value)))
    if (Option.isNone(file)) return Either.right(Option.none())
    const path = file.value
    return CommonSettings.readSecretFile(path).pipe(
      Either.map((text) => text.replace(/\r?\n$/, "")),
      Either.filterOrLeft((password) => password !== "", () => "it is empty"),
      Either.mapBoth({
        onLeft: (why) => Setting.fail(`invalid --resp-password-file "${path}": ${why}`),
        onRight: (password) => Option.some(Redacted.make(password))
      })
    )
  })
)

interface Advertised {
  readonly addr: Option.Option<string>
  readonly httpAddr: Option.Option<string>
}

/**
 * `--advertise-addr` and `--advertise-http-addr`. A wildcard bind (0.0.0.0, ::) is never
 * advertised: `--addr` on a wildcard needs `--advertise-addr`; `--http-addr` on a wildcard
 * is advertised with the host of the advertised gossip address (its own port kept).
 */
const advertised = (
  addr: string,
  httpAddr: string,
  givenAddr: Option.Option<string>,
  givenHttp: Option.Option<string>
): Either.Either<Advertised, ConfigError.ConfigError> => {
  if (Option.isNone(givenAddr) && Values.isWildcardHost(Values.hostOf(addr))) {
    return fail(
      `missing --advertise-addr: --addr "${addr}" binds every interface, which cannot be advertised; ` +
        "give --advertise-addr host:port (the address peers reach this node at)"
    )
  }
  const gossipHost = Values.hostOf(Option.getOrElse(givenAddr, () => addr))
  const httpAddrOut = Option.isSome(givenHttp) || !Values.isWildcardHost(Values.hostOf(httpAddr))
    ? givenHttp
    : Option.some(`${gossipHost.includes(":") ? `[${gossipHost}]` : gossipHost}:${Values.portOf(httpAddr)}`)
  return Either.right({ addr: givenAddr, httpAddr: httpAddrOut })
}

/** `dcounter --role node`: every option, validated, with the defaults derived from other options. */
export const config: Config.Config<NodeConfigShape> = Config.all({
  addr: addr.config,
  httpAddr: httpAddr.config,
  discovery: discovery.config,
  peers: peers.config,
  dataDir: dataDir.config,
  syncInterval: syncInterval.config,
  fullSyncInterval: fullSyncInterval.config,
  maxSyncPeers: maxSyncPeers.config,
  heartbeatInterval: heartbeatInterval.config,
  maxFails: maxFails.config,
  failureTimeout: failureTimeout.config,
  clusterKey: CommonSettings.clusterKeyConfig,
  eagerPush: eagerPush.config,
  pushWindow: pushWindow.config,
  respAddr: respAddr.config,
  respPassword: respPasswordConfig,
  advertiseAddr: advertiseAddr.config,
  advertiseHttpAddr: advertiseHttpAddr.config,
  dnsServer: dnsServer.config,
  refreshInterval: refreshInterval.config,
  walFlushInterval: walFlushInterval.config,
  snapshotInterval: snapshotInterval.config,
  snapshotEveryRecords: snapshotEveryRecords.config
}).pipe(
  Config.mapOrFail((given): Either.Either<NodeConfigShape, ConfigError.ConfigError> => {
    const addr = given.addr
    const httpAddr = Option.getOrElse(given.httpAddr, () => defaultHttpAddr(addr))
    if (Option.isNone(given.httpAddr)) {
      const port = Values.portOf(httpAddr)
      if (!Number.isInteger(port) || port < 1 || port > 65535) {
        return fail(
          `invalid --addr "${addr}": the default --http-addr port 8010 + (${Values.portOf(addr)} - 9000) ` +
            "is out of range; give --http-addr"
        )
      }
    }
    if (httpAddr === addr) return fail(`invalid --http-addr "${httpAddr}": it must differ from --addr`)
    if (Option.isSome(given.respAddr) && (given.respAddr.value === addr || given.respAddr.value === httpAddr)) {
      return fail(`invalid --resp-addr "${given.respAddr.value}": it must differ from --addr and --http-addr`)
    }
    return Either.map(advertised(addr, httpAddr, given.advertiseAddr, given.advertiseHttpAddr), (advertise) => ({
      ...given,
      httpAddr,
      discovery: Option.flatMap(given.discovery, (source) => source._tag === "Server" ? Option.some(source.addr) : Option.none()),
      discoveryDns: Option.flatMap(given.discovery, (source) => source._tag === "Dns" ? Option.some(source.dns) : Option.none()),
      dataDir: Option.getOrElse(given.dataDir, () => defaultDataDir(addr)),
      fullSyncInterval: Option.getOrElse(given.fullSyncInterval, () => Duration.times(given.syncInterval, 10)),
      advertiseAddr: advertise.addr,
      advertiseHttpAddr: advertise.httpAddr
    }))
  })
)
