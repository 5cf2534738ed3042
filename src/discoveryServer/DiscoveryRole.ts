/**
 * The discovery role (`dcounter --role discovery`): the registry and its HTTP API on
 * `--addr`, configured by `DiscoveryConfig`. Logs the address it listens on. The output
 * keeps `Registry` and `ApiServer` (the bound address) for tests and for composing.
 */
import { Duration, Effect, Layer, Option } from "effect"
import { DiscoveryConfig } from "../config/DiscoveryConfig.js"
import { ApiServer, type ApiServerError } from "../http/ApiServer.js"
import * as DiscoveryHandlers from "./DiscoveryHandlers.js"
import * as DiscoveryHttpServer from "./DiscoveryHttpServer.js"
import * as Registry from "./Registry.js"

const logListening = Layer.effectDiscard(
  Effect.gen(function*() {
    const config = yield* DiscoveryConfig
    const server = yield* ApiServer
    yield* Effect.logInfo(
      `discovery listening on ${server.url} (peer TTL ${Duration.format(config.peerTtl)}, ` +
        `at most ${config.maxPeers} peers, cluster key ${Option.isSome(config.clusterKey) ? "required" : "off"})`
    )
  })
)

/** The role over a given registry layer (tests swap in an instrumented one). */
export const layerWithRegistry = <E, R>(
  registry: Layer.Layer<Registry.Registry, E, R>
): Layer.Layer<Registry.Registry | ApiServer, ApiServerError | E, DiscoveryConfig | R> =>
  Layer.unwrapEffect(
    Effect.map(DiscoveryConfig, (config) =>
      DiscoveryHttpServer.layer({ addr: config.addr, clusterKey: config.clusterKey }).pipe(
        Layer.provide(DiscoveryHandlers.layer({ clusterKey: config.clusterKey })),
        (server) => Layer.merge(server, logListening.pipe(Layer.provide(server))),
        Layer.provideMerge(registry)
      ))
  )

/** The discovery role, configured by `DiscoveryConfig`. */
export const layer: Layer.Layer<Registry.Registry | ApiServer, ApiServerError, DiscoveryConfig> = layerWithRegistry(
  Registry.layerConfig
)
