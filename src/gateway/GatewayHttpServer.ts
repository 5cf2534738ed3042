/**
 * Serves `GatewayApi` on a TCP address through the project's `ApiServer` (routing,
 * decoding and the contract's errors compiled from the API definition, plus
 * `/openapi.json`, `/docs` and `/metrics`), with the dashboard at `GET /` as a raw route.
 * This is the one place that knows how the gateway API is served.
 */
import type { HttpApiGroup } from "@effect/platform"
import type { Layer } from "effect"
import * as ApiServer from "../http/ApiServer.js"
import * as Dashboard from "./Dashboard.js"
import { GatewayApi } from "./GatewayApi.js"

const page = Buffer.from(Dashboard.html, "utf8")

/** `GET /`: the dashboard, a fixed page. */
const dashboard: ApiServer.RawRoute = {
  method: "GET",
  path: "/",
  handler: (_req, res) => {
    res.writeHead(200, {
      "content-type": "text/html; charset=utf-8",
      "content-length": String(page.length),
      "cache-control": "no-cache"
    })
    res.end(page)
  }
}

/** Serves `GatewayApi` on `addr` (`host:port`; port 0 picks a free one, see `ApiServer.address`). */
export const layer = (options: {
  readonly addr: string
}): Layer.Layer<
  ApiServer.ApiServer,
  ApiServer.ApiServerError,
  HttpApiGroup.ApiGroup<"gateway", "counter"> | HttpApiGroup.ApiGroup<"gateway", "cluster"> | HttpApiGroup.ApiGroup<"gateway", "probes">
> => ApiServer.layer(GatewayApi, { addr: options.addr, extraRoutes: [dashboard] })
