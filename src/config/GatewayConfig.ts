/** Settings of the gateway role, with the contract's defaults. */
import { Context, Duration, Layer, Option, Redacted } from "effect"
import type { DnsName } from "../discoveryClient/DnsName.js"

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
}

export const defaults: GatewayConfigShape = {
  addr: "127.0.0.1:8080",
  discovery: Option.none(),
  nodes: [],
  refreshInterval: Duration.seconds(2),
  clusterKey: Option.none()
}

export class GatewayConfig extends Context.Tag("dcounter/GatewayConfig")<GatewayConfig, GatewayConfigShape>() {
  static readonly layer = (partial: Partial<GatewayConfigShape> = {}) =>
    Layer.succeed(GatewayConfig, { ...defaults, ...partial })
}
