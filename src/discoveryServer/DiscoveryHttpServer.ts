/**
 * Serves `DiscoveryApi` on a TCP address, through the project's `ApiServer` (routing,
 * decoding and the contract's errors compiled from the API definition, plus
 * `/openapi.json`, `/docs` and `/metrics`). This is the one place that knows how the
 * discovery API is served.
 */
import type { HttpApiGroup } from "@effect/platform"
import type { Layer } from "effect"
import { Option, Redacted } from "effect"
import * as ApiServer from "../http/ApiServer.js"
import * as ClusterKey from "./ClusterKey.js"
import type { ClusterAuth } from "../protocol/DiscoveryApi.js"
import { DiscoveryApi } from "../protocol/DiscoveryApi.js"

/** `Authorization: Bearer <key>` with the cluster key (constant-time compare). */
const bearerMatches = (key: Redacted.Redacted<string>) =>
(headers: Readonly<Record<string, string | Array<string> | undefined>>): boolean => {
  const value = headers["authorization"]
  if (typeof value !== "string" || !value.startsWith("Bearer ")) return false
  return ClusterKey.matches(key, Redacted.make(value.slice("Bearer ".length)))
}

/**
 * Serves `DiscoveryApi` on `addr` (`host:port`; port 0 picks a free one, see
 * `ApiServer.address`). With a cluster key, `/openapi.json` and `/docs` require it too,
 * like every route but `/health`, `/livez`, `/readyz` and `/metrics`.
 */
export const layer = (options: {
  readonly addr: string
  readonly clusterKey?: Option.Option<Redacted.Redacted<string>> | undefined
}): Layer.Layer<
  ApiServer.ApiServer,
  ApiServer.ApiServerError,
  | HttpApiGroup.ApiGroup<"discovery", "discovery">
  | HttpApiGroup.ApiGroup<"discovery", "health">
  | HttpApiGroup.ApiGroup<"discovery", "probes">
  | ClusterAuth
> =>
  ApiServer.layer(DiscoveryApi, {
    addr: options.addr,
    authorizeDocs: Option.match(options.clusterKey ?? Option.none(), {
      onNone: () => undefined,
      onSome: bearerMatches
    })
  })
