/** Settings of the discovery role, with the contract's defaults. */
import { Context, Duration, Layer, Option, Redacted } from "effect"

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
