/**
 * Handlers of the discovery HTTP API over the `Registry` (`ApiServer.group` layers, which
 * are also standard `HttpApiBuilder.group` layers), plus the cluster-key security
 * middleware. `layer` is everything a server of `DiscoveryApi` needs.
 */
import type { HttpApiGroup } from "@effect/platform"
import { Effect, Layer, Metric, Option } from "effect"
import * as ApiServer from "../http/ApiServer.js"
import type { Redacted } from "effect"
import * as ClusterKey from "./ClusterKey.js"
import {
  ClusterAuth,
  DiscoveryApi,
  NotRegistered,
  RegistryFull as RegistryFullError,
  Unauthorized
} from "../protocol/DiscoveryApi.js"
import { Registry } from "./Registry.js"
import * as Prometheus from "../observability/Prometheus.js"
import * as Probes from "../api/Probes.js"

export const unauthorizedRequests = Metric.counter("dcounter_discovery_unauthorized_total", {
  description: "requests refused for a missing or wrong cluster key",
  incremental: true
})
Prometheus.declared(unauthorizedRequests)

/**
 * `Authorization: Bearer <key>` check. Without a key every request passes; with one, a
 * request without the exact key fails with 401 `unauthorized`.
 */
export const layerClusterAuth = (clusterKey: Option.Option<Redacted.Redacted<string>>): Layer.Layer<ClusterAuth> =>
  Layer.succeed(
    ClusterAuth,
    ClusterAuth.of({
      bearer: (token) =>
        Option.match(clusterKey, {
          onNone: () => Effect.void,
          onSome: (key) =>
            ClusterKey.matches(key, token)
              ? Effect.void
              : Effect.zipRight(
                Metric.increment(unauthorizedRequests),
                Effect.fail(Unauthorized.of("this discovery requires `Authorization: Bearer <cluster key>`"))
              )
        })
    })
  )

export const layerDiscoveryGroup = ApiServer.group(DiscoveryApi, "discovery", (handlers) =>
  Effect.gen(function*() {
    const registry = yield* Registry
    return handlers
      .handle("register", ({ payload }) =>
        registry.register(payload).pipe(
          Effect.tap(() => Effect.logInfo(`registered ${payload.addr} (http ${payload.httpAddr}, node ${payload.nodeId})`)),
          Effect.as({}),
          Effect.catchTag("RegistryFull", (error) =>
            Effect.zipRight(
              Effect.logWarning(error.message),
              Effect.fail(RegistryFullError.of(error.message))
            ))
        ))
      .handle("heartbeat", ({ payload }) =>
        registry.heartbeat(payload.addr).pipe(
          Effect.as({}),
          Effect.catchTag("PeerNotRegistered", (error) =>
            Effect.zipRight(
              Effect.logDebug(`heartbeat from unregistered ${payload.addr}: answered 404`),
              Effect.fail(NotRegistered.of(error.message))
            ))
        ))
      .handle("peers", () =>
        Effect.map(registry.peers, (entries) =>
          entries.map((entry) => ({
            addr: entry.addr,
            httpAddr: entry.httpAddr,
            nodeId: entry.nodeId,
            lastSeen: new Date(entry.lastSeen)
          }))))
      .handle("deregister", ({ payload }) =>
        registry.deregister(payload.addr).pipe(
          Effect.tap((wasLive) => wasLive ? Effect.logInfo(`deregistered ${payload.addr}`) : Effect.void),
          Effect.as({})
        ))
  }))

export const layerHealthGroup = ApiServer.group(DiscoveryApi, "health", (handlers) =>
  Effect.gen(function*() {
    const registry = yield* Registry
    return handlers.handle("health", () =>
      Effect.map(registry.peers, (peers) => ({ status: "ok" as const, role: "discovery" as const, peers: peers.length })))
  }))

/** Discovery is ready once it answers: its registry lives in memory, nothing to wait for. */
export const layerProbesGroup = ApiServer.group(DiscoveryApi, "probes", (handlers) =>
  handlers
    .handle("livez", () => Effect.succeed(Probes.live))
    .handle("readyz", () => Probes.readiness([{ name: "http", ok: true, unmet: "" }])))

/** The handlers and the security of `DiscoveryApi`, ready to be served. */
export const layer = (options: {
  readonly clusterKey: Option.Option<Redacted.Redacted<string>>
}): Layer.Layer<
  | HttpApiGroup.ApiGroup<"discovery", "discovery">
  | HttpApiGroup.ApiGroup<"discovery", "health">
  | HttpApiGroup.ApiGroup<"discovery", "probes">
  | ClusterAuth,
  never,
  Registry
> =>
  Layer.mergeAll(layerDiscoveryGroup, layerHealthGroup, layerProbesGroup).pipe(
    Layer.provideMerge(layerClusterAuth(options.clusterKey))
  )
