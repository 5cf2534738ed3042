/**
 * Serves the discovery `HttpApi` (the `HttpApi.Api` service built by DiscoveryHandlers) on
 * a TCP address, with `/openapi.json` and `/docs`, and errors in the contract's shape
 * (`{"error", "message"}`, also for malformed JSON, unknown routes, wrong methods and
 * unexpected failures, which are logged).
 *
 * This is the one place that knows how the API is served: today the stock
 * `HttpApiBuilder.serve()` over `NodeHttpServer`; switching to the project's `ApiServer`
 * changes only `layer` below.
 */
import { createServer } from "node:http"
import type { HttpApi } from "@effect/platform"
import {
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
import { BadRequest, DiscoveryApi } from "./DiscoveryApi.js"

/** `host:port` (host may be `[v6]`) -> listen options. */
export const listenOptions = (addr: string): { readonly host: string; readonly port: number } => {
  const i = addr.lastIndexOf(":")
  const host = addr.slice(0, i)
  return {
    host: host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host,
    port: Number(addr.slice(i + 1))
  }
}

/** A one-line, human account of a decode failure. */
const describeDecodeError = (error: HttpApiError.HttpApiDecodeError): string =>
  error.issues.length === 0
    ? "the request does not match the expected schema"
    : error.issues
      .map((issue) => (issue.path.length === 0 ? issue.message : `${issue.path.join(".")}: ${issue.message}`))
      .join("; ")

const isBodyDecodeFailure = (u: unknown): boolean =>
  HttpServerError.isServerError(u) && u._tag === "RequestError" && u.reason === "Decode"

const jsonError = (status: number, error: string, message: string) =>
  HttpServerResponse.unsafeJson({ error, message }, { status })

/** Every path the server answers, for telling 405 from 404. */
const knownPaths: ReadonlySet<string> = new Set([
  ...Object.values(DiscoveryApi.groups).flatMap((group) =>
    Object.values(group.endpoints).map((endpoint) => endpoint.path)
  ),
  "/openapi.json",
  "/docs"
])

/**
 * API-level middleware (it wraps the router, before errors are encoded), so that every
 * error has the contract's shape:
 * - a body that is not JSON (a defect inside the stock builder) or that does not match
 *   its schema -> 400 `bad_request`;
 * - an unknown route -> 404 `not_found`; a known path with another method -> 405
 *   `method_not_allowed`;
 * - any other defect -> logged, 500 `internal`.
 * Typed API errors (401, 404 not_registered, 507) pass through to their schemas.
 */
export const layerContractErrors = HttpApiBuilder.middleware(DiscoveryApi, (app) =>
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
          return knownPaths.has(path)
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
        yield* Effect.logError(`discovery: ${request.method} ${request.url} failed`, cause)
        return jsonError(500, "internal", "the discovery server failed to answer this request")
      }
      return yield* Effect.failCause(cause)
    })))

/**
 * Serves `HttpApi.Api` on `addr` (`host:port`; port 0 picks a free one). The output keeps
 * `HttpServer` so callers can read the bound address.
 */
export const layer = (options: {
  readonly addr: string
}): Layer.Layer<HttpServer.HttpServer, HttpServerError.ServeError, HttpApi.Api> => {
  const server = NodeHttpServer.layer(() => createServer({ keepAliveTimeout: 65_000 }), listenOptions(options.addr))
  return HttpApiBuilder.serve().pipe(
    Layer.provide(HttpApiSwagger.layer({ path: "/docs" })),
    Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" })),
    Layer.provide(layerContractErrors),
    Layer.provide(server),
    Layer.merge(Layer.effect(HttpServer.HttpServer, HttpServer.HttpServer).pipe(Layer.provide(server)))
  )
}
