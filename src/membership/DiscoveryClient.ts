/**
 * The discovery client port, used by nodes (to register and find peers) and the gateway
 * (to find nodes). `DiscoveryHttp.layer` talks to the discovery role over HTTP;
 * `DiscoveryStatic.layer` serves a fixed list (from `--peers` / `--nodes`). A node may
 * combine both.
 */
import type { Effect } from "effect"
import { Context } from "effect"

export interface DiscoveredPeer {
  readonly gossipAddr: string
  readonly httpAddr: string
  readonly nodeId: string
}

export class DiscoveryClient extends Context.Tag("dcounter/DiscoveryClient")<
  DiscoveryClient,
  {
    /** The latest known peers (cached; never fails, may be stale while discovery is down). */
    readonly peers: Effect.Effect<ReadonlyArray<DiscoveredPeer>>
    /** Whether the last call to discovery succeeded (static: always true). */
    readonly reachable: Effect.Effect<boolean>
  }
>() {}
