/**
 * `DiscoveryClient` over a fixed list (from `--peers` on a node, `--nodes` on the gateway):
 * always reachable, never changes. A field the list does not give is the empty string.
 * Combine with `DiscoveryHttp.layer` through `layerUnion` (DiscoveryClient.ts).
 *
 * Use as `import * as DiscoveryStatic from "./DiscoveryStatic.js"`.
 */
import { Effect, Layer } from "effect"
import type { DiscoveredPeer } from "./DiscoveryClient.js"
import { DiscoveryClient, unionPeers } from "./DiscoveryClient.js"

/** `--peers a:9001,b:9002`: gossip addresses. */
export const fromGossipAddrs = (addrs: ReadonlyArray<string>): ReadonlyArray<DiscoveredPeer> =>
  addrs.map((addr) => addr.trim()).filter((addr) => addr !== "").map((gossipAddr) => ({
    gossipAddr,
    httpAddr: "",
    nodeId: ""
  }))

/**
 * `--nodes http://a:8010,http://b:8011`: node HTTP endpoints, kept as `host:port`
 * (`http://` and a trailing `/` are optional; no port means 80).
 */
export const fromNodeUrls = (urls: ReadonlyArray<string>): ReadonlyArray<DiscoveredPeer> =>
  urls.map((url) => url.trim()).filter((url) => url !== "").map((url) => ({
    gossipAddr: "",
    httpAddr: httpHostPort(url),
    nodeId: ""
  }))

const httpHostPort = (url: string): string => {
  try {
    const parsed = new URL(url.includes("://") ? url : `http://${url}`)
    return `${parsed.hostname}:${parsed.port === "" ? (parsed.protocol === "https:" ? "443" : "80") : parsed.port}`
  } catch {
    return url
  }
}

/** A fixed list of peers (deduplicated by address). */
export const layer = (peers: ReadonlyArray<DiscoveredPeer>): Layer.Layer<DiscoveryClient> => {
  const list = unionPeers([peers])
  return Layer.succeed(
    DiscoveryClient,
    DiscoveryClient.of({ peers: Effect.succeed(list), reachable: Effect.succeed(true) })
  )
}

/**
 * No discovery: a client that lists no peers, for a node or gateway configured without
 * one (static peers and peer exchange only). Consumers require a `DiscoveryClient`, so the
 * role says which one it composed, this one included.
 */
export const layerNone: Layer.Layer<DiscoveryClient> = layer([])

/** From `--peers` (gossip addresses). */
export const layerGossipAddrs = (addrs: ReadonlyArray<string>): Layer.Layer<DiscoveryClient> =>
  layer(fromGossipAddrs(addrs))

/** From `--nodes` (node HTTP URLs). */
export const layerNodeUrls = (urls: ReadonlyArray<string>): Layer.Layer<DiscoveryClient> => layer(fromNodeUrls(urls))
