/**
 * The discovery client port, used by nodes (to register and find peers) and the gateway
 * (to find nodes). `DiscoveryHttp.layer` talks to the discovery role over HTTP;
 * `DiscoveryStatic.layer` serves a fixed list (from `--peers` / `--nodes`). A node may
 * combine both.
 */
import { Context, Effect, Layer } from "effect"

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

// ---------------------------------------------------------------------------------------
// Combining sources (added by the discovery client work; additive).
// A field that a source does not know is the empty string: `--peers` knows only gossip
// addresses, `--nodes` only HTTP addresses.

/**
 * The peers of several sources as one list, deduplicated by address: two entries are the
 * same peer when their gossip addresses are equal, or, when one lacks it, their HTTP
 * addresses are. The first source's entry wins; fields it lacks are filled from later ones.
 * An entry with neither address is dropped.
 */
export const unionPeers = (sources: ReadonlyArray<ReadonlyArray<DiscoveredPeer>>): ReadonlyArray<DiscoveredPeer> => {
  type Merged = { gossipAddr: string; httpAddr: string; nodeId: string; readonly order: number }
  const fill = (into: Merged, from: DiscoveredPeer) => {
    if (into.gossipAddr === "") into.gossipAddr = from.gossipAddr
    if (into.httpAddr === "") into.httpAddr = from.httpAddr
    if (into.nodeId === "") into.nodeId = from.nodeId
  }
  const all = sources.flat()
  // 1. peers with a gossip address, merged by it
  const byGossip = new Map<string, Merged>()
  all.forEach((peer, order) => {
    if (peer.gossipAddr === "") return
    const known = byGossip.get(peer.gossipAddr)
    if (known === undefined) byGossip.set(peer.gossipAddr, { ...peer, order })
    else fill(known, peer)
  })
  // 2. peers known only by HTTP address: part of a peer above with that HTTP address, or
  //    merged with each other
  const httpOwner = new Map<string, Merged>()
  for (const merged of byGossip.values()) {
    if (merged.httpAddr !== "" && !httpOwner.has(merged.httpAddr)) httpOwner.set(merged.httpAddr, merged)
  }
  const httpOnly = new Map<string, Merged>()
  all.forEach((peer, order) => {
    if (peer.gossipAddr !== "" || peer.httpAddr === "") return
    const known = httpOwner.get(peer.httpAddr) ?? httpOnly.get(peer.httpAddr)
    if (known === undefined) httpOnly.set(peer.httpAddr, { ...peer, order })
    else fill(known, peer)
  })
  return [...byGossip.values(), ...httpOnly.values()]
    .sort((a, b) => a.order - b.order)
    .map(({ gossipAddr, httpAddr, nodeId }) => ({ gossipAddr, httpAddr, nodeId }))
}

/** One client over several: the union of their peers; reachable when all of them are. */
export const union = (clients: ReadonlyArray<DiscoveryClient["Type"]>): DiscoveryClient["Type"] => ({
  peers: Effect.map(Effect.all(clients.map((c) => c.peers)), unionPeers),
  reachable: Effect.map(Effect.all(clients.map((c) => c.reachable)), (all) => all.every((r) => r))
})

/**
 * Uses several discovery layers at once (e.g. `DiscoveryHttp.layer` and
 * `DiscoveryStatic.layer`): each is built in this layer's scope, in order.
 */
export const layerUnion = <E, R>(
  ...layers: ReadonlyArray<Layer.Layer<DiscoveryClient, E, R>>
): Layer.Layer<DiscoveryClient, E, R> =>
  Layer.scoped(
    DiscoveryClient,
    Effect.map(
      Effect.forEach(layers, (layer) => Effect.map(Layer.build(layer), (context) => Context.get(context, DiscoveryClient))),
      union
    )
  )
