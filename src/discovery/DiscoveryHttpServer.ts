/**
 * Serves `DiscoveryApi` on a TCP address, through the project's `ApiServer` (routing,
 * decoding and the contract's errors compiled from the API definition, plus
 * `/openapi.json`, `/docs` and `/metrics`). This is the one place that knows how the
 * discovery API is served.
 */
import type { HttpApiGroup } from "@effect/platform"
import type { Layer } from "effect"
import * as ApiServer from "../http/ApiServer.js"
import type { ClusterAuth } from "./DiscoveryApi.js"
import { DiscoveryApi } from "./DiscoveryApi.js"

/** Serves `DiscoveryApi` on `addr` (`host:port`; port 0 picks a free one, see `ApiServer.address`). */
export const layer = (options: {
  readonly addr: string
}): Layer.Layer<
  ApiServer.ApiServer,
  ApiServer.ApiServerError,
  HttpApiGroup.ApiGroup<"discovery", "discovery"> | HttpApiGroup.ApiGroup<"discovery", "health"> | ClusterAuth
> => ApiServer.layer(DiscoveryApi, { addr: options.addr })
