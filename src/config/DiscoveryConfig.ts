/**
 * Settings of the discovery role: the `DiscoveryConfig` tag holding a plain object, its
 * `defaults`, `layer(partial)` for tests, and `config`, which reads every option of the
 * role (declared once in `settings`, see Setting.ts) from flags and `DCOUNTER_*` variables.
 */
import { Config, Context, Duration, Layer, Option, type Redacted } from "effect"
import * as CommonSettings from "./CommonSettings.js"
import * as Setting from "./Setting.js"
import * as Values from "./Values.js"

export interface DiscoveryConfigShape {
  readonly addr: string
  /** a peer not heard from for this long is dropped from /peers */
  readonly peerTtl: Duration.Duration
  /** registry bound; registering past it answers 507 */
  readonly maxPeers: number
  readonly clusterKey: Option.Option<Redacted.Redacted<string>>
}

export const defaults: DiscoveryConfigShape = {
  addr: "127.0.0.1:8000",
  peerTtl: Duration.seconds(5),
  maxPeers: 10_000,
  clusterKey: Option.none()
}

export class DiscoveryConfig extends Context.Tag("dcounter/DiscoveryConfig")<DiscoveryConfig, DiscoveryConfigShape>() {
  static readonly layer = (partial: Partial<DiscoveryConfigShape> = {}) =>
    Layer.succeed(DiscoveryConfig, { ...defaults, ...partial })
}

const addr = Setting.withDefault(
  { name: "addr", value: "host:port", description: "Address of the discovery HTTP API.", default: defaults.addr },
  Values.hostPort,
  defaults.addr
)

const peerTtl = Setting.withDefault(
  {
    name: "peer-ttl",
    value: "duration",
    description: "A node not heard from (register or heartbeat) for this long is dropped from /peers.",
    default: Values.formatDuration(defaults.peerTtl)
  },
  Values.duration,
  defaults.peerTtl
)

const maxPeers = Setting.withDefault(
  {
    name: "max-peers",
    value: "count",
    description: "Most nodes the registry holds; registering past it is refused (507).",
    default: String(defaults.maxPeers)
  },
  Values.integer(1, 10_000_000),
  defaults.maxPeers
)

/** The role's own options, in the order of the help. */
export const settings: ReadonlyArray<Setting.SettingDoc> = [addr, peerTtl, maxPeers]

/** `dcounter --role discovery`: every option, validated. */
export const config: Config.Config<DiscoveryConfigShape> = Config.all({
  addr: addr.config,
  peerTtl: peerTtl.config,
  maxPeers: maxPeers.config,
  clusterKey: CommonSettings.clusterKeyConfig
})
