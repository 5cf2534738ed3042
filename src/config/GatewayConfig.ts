/** Settings of the gateway role, with the contract's defaults. */
import { Context, Duration, Layer, Option, Redacted } from "effect"

export interface GatewayConfigShape {
  readonly addr: string
  readonly discovery: Option.Option<string>
  /** static node HTTP endpoints, e.g. `http://127.0.0.1:8010` */
  readonly nodes: ReadonlyArray<string>
  readonly refreshInterval: Duration.Duration
  readonly clusterKey: Option.Option<Redacted.Redacted<string>>
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
