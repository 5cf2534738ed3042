/**
 * The gateway role (`dcounter --role gateway`): the node pool (static `--nodes` and/or
 * discovery, health-checked every `--refresh-interval`), the forwarding rules, and the HTTP
 * API with the dashboard on `--addr`, configured by `GatewayConfig` alone: the modules'
 * options are built from it here. Logs the addresses it listens on. The output keeps
 * `NodePool` and `ApiServer` (the bound address) for tests and composition.
 */
import { Duration, Effect, Layer, Option } from "effect"
import { GatewayConfig, type GatewayConfigShape } from "../config/GatewayConfig.js"
import { ApiServer, type ApiServerError } from "../http/ApiServer.js"
import { type DiscoveryClient, layerUnion } from "../discoveryClient/DiscoveryClient.js"
import * as DiscoveryDns from "../discoveryClient/DiscoveryDns.js"
import * as DiscoveryHttp from "../discoveryClient/DiscoveryHttp.js"
import * as DiscoveryStatic from "../discoveryClient/DiscoveryStatic.js"
import * as DnsName from "../discoveryClient/DnsName.js"
import * as GatewayHandlers from "./GatewayHandlers.js"
import * as GatewayHttpServer from "./GatewayHttpServer.js"
import * as NodeClient from "./NodeClient.js"
import * as NodePool from "./NodePool.js"
import * as Upstream from "./Upstream.js"

const logListening = Layer.effectDiscard(
  Effect.gen(function*() {
    const config = yield* GatewayConfig
    const address = (yield* ApiServer).url
    const nodes = yield* (yield* NodePool.NodePool).nodes
    const sources = [
      ...(config.nodes.length > 0 ? [`${config.nodes.length} static node(s)`] : []),
      ...Option.match(config.discovery, { onNone: () => [], onSome: (d) => [`discovery ${d}`] }),
      ...(config.nodesDns ?? []).map(DnsName.format)
    ].join(" + ")
    yield* Effect.logInfo(
      `gateway listening on ${address} (dashboard ${address}/, nodes from ${sources}, ` +
        `${nodes.filter((n) => n.healthy).length}/${nodes.length} healthy, refresh every ${
          Duration.format(config.refreshInterval)
        })`
    )
  })
)

/**
 * The gateway's discovery client, as the config names it: the discovery server
 * (`--discovery`) and each `--nodes dns:...` name, as one; none when neither is given
 * (static `--nodes` only, which the pool reads from the config itself).
 */
export const layerDiscovery: Layer.Layer<DiscoveryClient, never, GatewayConfig> = Layer.unwrapEffect(
  Effect.map(GatewayConfig, (config) => {
    const server = Option.match(config.discovery, {
      onNone: () => [],
      onSome: (discovery) => [
        DiscoveryHttp.layer({
          discovery,
          heartbeatInterval: config.refreshInterval,
          refreshInterval: config.refreshInterval,
          clusterKey: config.clusterKey
        })
      ]
    })
    const dns = (config.nodesDns ?? []).map((name) =>
      DiscoveryDns.layer({
        name,
        target: "http",
        dnsServer: config.dnsServer ?? Option.none(),
        refreshInterval: config.refreshInterval
      })
    )
    const layers = [...server, ...dns]
    return layers.length === 0 ? DiscoveryStatic.layerNone : layers.length === 1 ? layers[0]! : layerUnion(...layers)
  })
)

/** The forwarder's tunables of `GatewayConfig` (unset: its own defaults). */
export const upstreamOptionsOf = (config: GatewayConfigShape): Upstream.UpstreamOptions => ({
  ...Upstream.defaultOptions,
  ...(config.readTimeout === undefined ? {} : { readTimeout: config.readTimeout }),
  ...(config.writeTimeout === undefined ? {} : { writeTimeout: config.writeTimeout })
})

/**
 * Pool, client and forwarding, without the HTTP server (for tests and embedding). The
 * discovery client is composed here, exactly one, as the config names it.
 */
export const layerCore: Layer.Layer<NodePool.NodePool | Upstream.Upstream, never, GatewayConfig> = Layer.unwrapEffect(
  Effect.map(GatewayConfig, (config) =>
    Upstream.layer(upstreamOptionsOf(config)).pipe(
      Layer.provideMerge(NodePool.layer()),
      Layer.provide(NodeClient.layer()),
      Layer.provide(layerDiscovery)
    ))
)

export const layer: Layer.Layer<NodePool.NodePool | ApiServer, ApiServerError, GatewayConfig> = Layer.unwrapEffect(
  Effect.map(GatewayConfig, (config) =>
    GatewayHttpServer.layer({ addr: config.addr }).pipe(
      Layer.provide(GatewayHandlers.layer),
      (server) => Layer.merge(server, logListening.pipe(Layer.provide(server))),
      Layer.provideMerge(layerCore)
    ))
)
