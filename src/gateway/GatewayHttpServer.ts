/**
 * Serves the gateway `HttpApi` on a TCP address, with `/openapi.json`, `/docs`, `/metrics`
 * and the dashboard at `/`, and errors in the contract's shape (`{"error", "message"}`,
 * also for malformed JSON, unknown routes, wrong methods and unexpected failures, which are
 * logged).
 *
 * This is the one place that knows how the API is served: the stock
 * `HttpApiBuilder.serve()` over `NodeHttpServer`.
 */
import { createServer } from "node:http"
import type { HttpApi, HttpApp } from "@effect/platform"
import {
  Headers,
  HttpApiBuilder,
  HttpApiError,
  HttpApiSwagger,
  HttpServer,
  HttpServerError,
  HttpServerRequest,
  HttpServerResponse
} from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Cause, Effect, Layer, Option, Predicate } from "effect"
import { isCounterName } from "../crdt/CounterName.js"
import * as Prometheus from "../observability/Prometheus.js"
import * as Dashboard from "./Dashboard.js"
import { BadRequest, GatewayApi } from "./GatewayApi.js"

/** `host:port` (host may be `[v6]`) -> listen options. */
export const listenOptions = (addr: string): { readonly host: string; readonly port: number } => {
  const i = addr.lastIndexOf(":")
  const host = addr.slice(0, i)
  return {
    host: host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host,
    port: Number(addr.slice(i + 1))
  }
}

/**
 * A one-line account of a decode failure. The alternatives of an optional body (`null`,
 * `undefined`) add nothing for the reader and are left out.
 */
const describeDecodeError = (error: HttpApiError.HttpApiDecodeError): string => {
  const issues = error.issues.filter((issue) => !/^Expected (null|undefined), actual/.test(issue.message))
  return issues.length === 0
    ? "the request does not match the expected schema"
    : issues
      .map((issue) => (issue.path.length === 0 ? issue.message : `${issue.path.join(".")}: ${issue.message}`))
      .join("; ")
}

const isBodyDecodeFailure = (u: unknown): boolean =>
  HttpServerError.isServerError(u) && u._tag === "RequestError" && u.reason === "Decode"

const jsonError = (status: number, error: string, message: string) =>
  HttpServerResponse.unsafeJson({ error, message }, { status })

/** Paths with a route (any method), for telling 405 from 404. */
const knownPath = (path: string): boolean =>
  ["/", "/metrics", "/openapi.json", "/docs", "/counter", "/increment", "/decrement", "/counters", "/nodes", "/health"]
    .includes(path) || /^\/counters\/[^/]+(\/(increment|decrement))?$/.test(path)

/** Errors in the contract's shape (see the module comment). */
export const layerContractErrors = HttpApiBuilder.middleware(GatewayApi, (app) =>
  Effect.catchAllCause(app, (cause) =>
    Effect.gen(function*() {
      const failure: Option.Option<unknown> = Cause.failureOption(cause)
      if (Option.isSome(failure)) {
        if (failure.value instanceof HttpApiError.HttpApiDecodeError) {
          return yield* Effect.fail(BadRequest.of(describeDecodeError(failure.value)))
        }
        if (Predicate.isTagged(failure.value, "RouteNotFound")) {
          const request = yield* HttpServerRequest.HttpServerRequest
          const path = request.url.split("?")[0] ?? request.url
          const named = /^\/counters\/([^/]+)(?:\/(?:increment|decrement))?$/.exec(path)
          if (named !== null && !isCounterName(decodeURIComponent(named[1]!))) {
            // the stock router does not match parameters over 100 characters
            return yield* Effect.fail(BadRequest.of("name: a counter name is 1 to 128 characters of [A-Za-z0-9._:-]"))
          }
          return knownPath(path)
            ? jsonError(405, "method_not_allowed", `${request.method} is not allowed on ${path}`)
            : jsonError(404, "not_found", `no route ${request.method} ${path}`)
        }
        return yield* Effect.failCause(cause)
      }
      const defect = Cause.dieOption(cause)
      if (Option.isSome(defect)) {
        if (isBodyDecodeFailure(defect.value)) {
          return yield* Effect.fail(BadRequest.of("the request body is not valid JSON"))
        }
        const request = yield* HttpServerRequest.HttpServerRequest
        yield* Effect.logError(`gateway: ${request.method} ${request.url} failed`, cause)
        return jsonError(500, "internal", "the gateway failed to answer this request")
      }
      return yield* Effect.failCause(cause)
    })))

/** `/` (dashboard) and `/metrics` (Prometheus text), beside the API routes. */
const layerExtraRoutes = HttpApiBuilder.Router.use((router) =>
  Effect.all([
    router.get("/", Effect.succeed(HttpServerResponse.html(Dashboard.html))),
    router.get(
      "/metrics",
      Effect.map(Prometheus.scrape, (text) =>
        HttpServerResponse.text(text, { contentType: Prometheus.contentType }))
    )
  ])
)

/**
 * Bodies are JSON whatever `Content-Type` says (`curl -d '{"by":5}'` sends
 * `application/x-www-form-urlencoded`): a body is never read as a form, so a malformed one
 * is a 400 and never counts as an empty body.
 */
const jsonBodies = <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R> =>
  Effect.updateService(app, HttpServerRequest.HttpServerRequest, (request) =>
    request.method === "POST"
      ? request.modify({ headers: Headers.set(request.headers, "content-type", "application/json") })
      : request)

/**
 * Serves `HttpApi.Api` on `addr` (`host:port`; port 0 picks a free one). The output keeps
 * `HttpServer` so callers can read the bound address.
 */
export const layer = (options: {
  readonly addr: string
}): Layer.Layer<HttpServer.HttpServer, HttpServerError.ServeError, HttpApi.Api> => {
  const server = NodeHttpServer.layer(() => createServer({ keepAliveTimeout: 65_000 }), listenOptions(options.addr))
  return HttpApiBuilder.serve(jsonBodies).pipe(
    Layer.provide(layerExtraRoutes),
    Layer.provide(HttpApiSwagger.layer({ path: "/docs" })),
    Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" })),
    Layer.provide(layerContractErrors),
    Layer.provide(server),
    Layer.merge(Layer.effect(HttpServer.HttpServer, HttpServer.HttpServer).pipe(Layer.provide(server)))
  )
}
