/**
 * Settings of the gateway role: the `GatewayConfig` tag holding a plain object, its
 * `defaults`, `layer(partial)` for tests, and `config`, which reads every option of the
 * role (declared once in `settings`, see Setting.ts) from flags and `DCOUNTER_*` variables.
 */
import { Config, type ConfigError, Context, Duration, Either, Layer, Option, type Redacted } from "effect"
import type { DnsName } from "../discoveryClient/DnsName.js"
import * as CommonSettings from "./CommonSettings.js"
import * as Setting from "./Setting.js"
import * as Values from "./Values.js"

export interface GatewayConfigShape {
  readonly addr: string
  readonly discovery: Option.Option<string>
  /** static node HTTP endpoints, e.g. `http://127.0.0.1:8010` */
  readonly nodes: ReadonlyArray<string>
  readonly refreshInterval: Duration.Duration
  readonly clusterKey: Option.Option<Redacted.Redacted<string>>
  /** `--nodes dns:NAME:HTTP_PORT`: node HTTP endpoints from DNS (A/AAAA records) */
  readonly nodesDns?: ReadonlyArray<DnsName> | undefined
  /** `--dns-server host:port`: the resolver to ask (none: the system's) */
  readonly dnsServer?: Option.Option<string> | undefined
  /** bound on one forwarded read, failover included (unset: the forwarder's default) */
  readonly readTimeout?: Duration.Duration | undefined
  /** bound on one forwarded write or batch of writes (unset: the forwarder's default) */
  readonly writeTimeout?: Duration.Duration | undefined
}

export const defaults: GatewayConfigShape = {
  addr: "127.0.0.1:8080",
  discovery: Option.none(),
  nodes: [],
  refreshInterval: Duration.seconds(2),
  clusterKey: Option.none(),
  readTimeout: Duration.seconds(2),
  writeTimeout: Duration.seconds(10)
}

export class GatewayConfig extends Context.Tag("dcounter/GatewayConfig")<GatewayConfig, GatewayConfigShape>() {
  static readonly layer = (partial: Partial<GatewayConfigShape> = {}) =>
    Layer.succeed(GatewayConfig, { ...defaults, ...partial })
}

const addr = Setting.withDefault(
  {
    name: "addr",
    value: "host:port",
    description: "Address of the gateway HTTP API and dashboard.",
    default: defaults.addr
  },
  Values.hostPort,
  defaults.addr
)

const discovery = Setting.optional(
  {
    name: "discovery",
    value: "host:port",
    description: "Discovery server to learn the nodes from. Give --discovery, --nodes or both.",
    default: "none"
  },
  Values.hostPort
)

const nodes = Setting.withDefault(
  {
    name: "nodes",
    value: "url|dns:NAME:HTTP_PORT,...",
    description:
      "Static node HTTP endpoints, comma separated (http://a:8010,http://b:8011); an item dns:NAME:HTTP_PORT " +
      "takes the nodes from DNS (A/AAAA records, e.g. a headless Service), re-resolved every --refresh-interval.",
    default: "none"
  },
  Values.nodeSources,
  { urls: defaults.nodes, dns: [] }
)

const refreshInterval = Setting.withDefault(
  {
    name: "refresh-interval",
    value: "duration",
    description: "How often the node list is refreshed and every node's /health is checked.",
    default: Values.formatDuration(defaults.refreshInterval)
  },
  Values.duration,
  defaults.refreshInterval
)

const dnsServer = Setting.optional(
  {
    name: "dns-server",
    value: "ip:port",
    description: "DNS server that --nodes dns:... asks (an IP address, like 10.96.0.10:53).",
    default: "the system's resolver"
  },
  Values.dnsServer
)

const readTimeout = Setting.withDefault(
  {
    name: "read-timeout",
    value: "duration",
    description: "Bound on a read forwarded to the nodes (tried on the next healthy node when one fails); then 503.",
    default: Values.formatDuration(defaults.readTimeout!)
  },
  Values.duration,
  defaults.readTimeout!
)

const writeTimeout = Setting.withDefault(
  {
    name: "write-timeout",
    value: "duration",
    description:
      "Bound on a write (or batch of writes) forwarded to a node; past it the outcome is unknown and the " +
      "answer is 503 indeterminate, never a retry on another node.",
    default: Values.formatDuration(defaults.writeTimeout!)
  },
  Values.duration,
  defaults.writeTimeout!
)

/** The role's own options, in the order of the help. */
export const settings: ReadonlyArray<Setting.SettingDoc> = [
  addr,
  discovery,
  nodes,
  refreshInterval,
  dnsServer,
  readTimeout,
  writeTimeout
]

/** `dcounter --role gateway`: every option, validated; it needs a way to find nodes. */
export const config: Config.Config<GatewayConfigShape> = Config.all({
  addr: addr.config,
  discovery: discovery.config,
  nodes: nodes.config,
  refreshInterval: refreshInterval.config,
  clusterKey: CommonSettings.clusterKeyConfig,
  dnsServer: dnsServer.config,
  readTimeout: readTimeout.config,
  writeTimeout: writeTimeout.config
}).pipe(
  Config.mapOrFail(({ nodes, ...rest }): Either.Either<GatewayConfigShape, ConfigError.ConfigError> =>
    Option.isNone(rest.discovery) && nodes.urls.length === 0 && nodes.dns.length === 0
      ? Either.left(Setting.fail("the gateway needs --discovery host:port or --nodes http://host:port,... to find nodes"))
      : Either.right({ ...rest, nodes: nodes.urls, nodesDns: nodes.dns })
  )
)
