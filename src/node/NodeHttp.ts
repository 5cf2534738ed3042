/**
 * The node's HTTP handlers (standard `HttpApiBuilder.group` layers over `NodeApi`) and the
 * one function that serves them (`serve`). Handlers only translate: CounterStore and
 * PeerManager do the work; a write answers once it is durable; a bad request changes
 * nothing (it is refused by the schema before a handler runs).
 */
import { createServer } from "node:http"
import type { HttpApi } from "@effect/platform"
import {
  HttpApiBuilder,
  HttpApiError,
  HttpApiSwagger,
  HttpIncomingMessage,
  HttpRouter,
  HttpServer,
  HttpServerError,
  HttpServerRequest,
  HttpServerResponse
} from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Cause, Effect, Layer, Option, Predicate } from "effect"
import { NodeConfig } from "../config/NodeConfig.js"
import type { CounterName } from "../crdt/CounterName.js"
import { DEFAULT_COUNTER } from "../crdt/CounterName.js"
import { PeerManager } from "../membership/PeerManager.js"
import type { WriteError } from "./CounterStore.js"
import { CounterStore } from "./CounterStore.js"
import {
  BadRequest,
  CounterOverflow,
  MAX_BODY_BYTES,
  NodeApi,
  PayloadTooLarge,
  Unavailable
} from "./NodeApi.js"

// ---------------------------------------------------------------------------------------
// handlers

const byOf = (payload: { readonly by?: number | undefined } | null): number => payload?.by ?? 1

const toHttpError = (e: WriteError): CounterOverflow | Unavailable =>
  e._tag === "Overflow" ? CounterOverflow.of(e.message) : Unavailable.of(e.message)

export const CounterHandlers = HttpApiBuilder.group(NodeApi, "counter", (handlers) =>
  Effect.gen(function*() {
    const store = yield* CounterStore
    const nodeId: string = store.replicaId
    const answer = (value: number) => ({ value, nodeId })
    return handlers
      .handle("counter", () => Effect.map(store.value(DEFAULT_COUNTER), answer))
      .handle("increment", ({ payload }) =>
        store.increment(DEFAULT_COUNTER, byOf(payload)).pipe(Effect.mapBoth({ onFailure: toHttpError, onSuccess: answer })))
      .handle("decrement", ({ payload }) =>
        store.decrement(DEFAULT_COUNTER, byOf(payload)).pipe(Effect.mapBoth({ onFailure: toHttpError, onSuccess: answer })))
      .handle("localCounter", () => Effect.map(store.localValue(DEFAULT_COUNTER), answer))
      .handle("state", () =>
        Effect.map(store.counterState(DEFAULT_COUNTER), (s) => ({
          nodeId,
          increments: s.increments,
          decrements: s.decrements,
          value: s.value
        })))
  }))

export const CountersHandlers = HttpApiBuilder.group(NodeApi, "counters", (handlers) =>
  Effect.gen(function*() {
    const store = yield* CounterStore
    const nodeId: string = store.replicaId
    const answer = (name: CounterName) => (value: number) => ({ name, value, nodeId })
    return handlers
      .handle("list", () => Effect.map(store.values, (counters) => ({ counters })))
      .handle("get", ({ path }) => Effect.map(store.value(path.name), answer(path.name)))
      .handle("increment", ({ path, payload }) =>
        store.increment(path.name, byOf(payload)).pipe(
          Effect.mapBoth({ onFailure: toHttpError, onSuccess: answer(path.name) })
        ))
      .handle("decrement", ({ path, payload }) =>
        store.decrement(path.name, byOf(payload)).pipe(
          Effect.mapBoth({ onFailure: toHttpError, onSuccess: answer(path.name) })
        ))
  }))

export const ClusterHandlers = HttpApiBuilder.group(NodeApi, "cluster", (handlers) =>
  Effect.gen(function*() {
    const store = yield* CounterStore
    const peers = yield* PeerManager
    const config = yield* NodeConfig
    return handlers
      .handle("peers", () =>
        Effect.map(peers.peers, (list) => ({
          peers: list.map((p) => ({
            addr: p.addr,
            status: p.status,
            httpAddr: p.httpAddr ?? null,
            nodeId: p.replicaId ?? null,
            fails: p.fails,
            lastSeen: new Date(p.lastSeen).toISOString(),
            heard: p.heard,
            sources: p.sources
          }))
        })))
      .handle("health", () =>
        Effect.gen(function*() {
          const list = yield* peers.peers
          const count = (s: string) => list.filter((p) => p.status === s).length
          return {
            status: "ok" as const,
            role: "node" as const,
            nodeId: store.replicaId,
            addr: config.addr,
            httpAddr: config.httpAddr,
            peers: { alive: count("alive"), suspect: count("suspect"), dead: count("dead") },
            counters: (yield* store.values).length
          }
        }))
  }))

/** `HttpApi.Api` for the node: the definition with every handler. */
export const layerApi: Layer.Layer<HttpApi.Api, never, CounterStore | PeerManager | NodeConfig> = HttpApiBuilder.api(
  NodeApi
).pipe(Layer.provide([CounterHandlers, CountersHandlers, ClusterHandlers]))

// ---------------------------------------------------------------------------------------
// serving

/** `host:port` (host may be `[v6]`) -> listen options. */
export const listenOptions = (addr: string): { readonly host: string; readonly port: number } => {
  const i = addr.lastIndexOf(":")
  const host = addr.slice(0, i)
  return {
    host: host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host,
    port: Number(addr.slice(i + 1))
  }
}

const describeDecodeError = (error: HttpApiError.HttpApiDecodeError): string =>
  error.issues.length === 0
    ? "the request does not match the expected schema"
    : error.issues
      .map((issue) => (issue.path.length === 0 ? issue.message : `${issue.path.join(".")}: ${issue.message}`))
      .join("; ")

const jsonError = (status: number, error: string, message: string) =>
  HttpServerResponse.unsafeJson({ error, message }, { status })

/** Path patterns of every route, to tell 405 (known path, other method) from 404. */
const knownPaths: ReadonlyArray<RegExp> = [
  ...Object.values(NodeApi.groups).flatMap((group) =>
    Object.values(group.endpoints).map((endpoint) => endpoint.path)
  ),
  "/openapi.json",
  "/docs"
].map((path) => new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/:[A-Za-z]+/g, "[^/]+")}$`))

const tooLarge = () => PayloadTooLarge.of(`the request body is larger than ${MAX_BODY_BYTES} bytes`)

/**
 * API-level middleware so every error has the contract's shape: a body over 64 KB -> 413;
 * a body that is not JSON or does not match its schema, or a bad counter name -> 400;
 * unknown route -> 404; known path, other method -> 405; any other defect -> logged, 500.
 */
export const layerContractErrors = HttpApiBuilder.middleware(NodeApi, (app) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const length = Number(request.headers["content-length"] ?? 0)
    if (length > MAX_BODY_BYTES) return yield* Effect.fail(tooLarge())
    return yield* HttpIncomingMessage.withMaxBodySize(app, Option.some(MAX_BODY_BYTES))
  }).pipe(
    Effect.catchAllCause((cause) =>
      Effect.gen(function*() {
        const failure: Option.Option<unknown> = Cause.failureOption(cause)
        if (Option.isSome(failure)) {
          if (failure.value instanceof HttpApiError.HttpApiDecodeError) {
            return yield* Effect.fail(BadRequest.of(describeDecodeError(failure.value)))
          }
          if (Predicate.isTagged(failure.value, "RouteNotFound")) {
            const request = yield* HttpServerRequest.HttpServerRequest
            const path = request.url.split("?")[0] ?? request.url
            return knownPaths.some((re) => re.test(path))
              ? jsonError(405, "method_not_allowed", `${request.method} is not allowed on ${path}`)
              : jsonError(404, "not_found", `no route ${request.method} ${path}`)
          }
          return yield* Effect.failCause(cause)
        }
        const defect = Cause.dieOption(cause)
        if (Option.isSome(defect)) {
          const d = defect.value
          if (HttpServerError.isServerError(d) && d._tag === "RequestError" && d.reason === "Decode") {
            if (String(d.cause).includes("maxBytes")) return yield* Effect.fail(tooLarge())
            return yield* Effect.fail(BadRequest.of("the request body is not valid JSON"))
          }
          const request = yield* HttpServerRequest.HttpServerRequest
          yield* Effect.logError(`node http: ${request.method} ${request.url} failed`, cause)
          return jsonError(500, "internal", "the node failed to answer this request")
        }
        return yield* Effect.failCause(cause)
      })
    )
  ))

/**
 * Serves `HttpApi.Api` on `addr` (`host:port`; port 0 picks a free one), with
 * `/openapi.json` and `/docs`. The output keeps `HttpServer` so callers can read the bound
 * address. The only place that knows how the API is served.
 */
export const serve = (addr: string): Layer.Layer<HttpServer.HttpServer, HttpServerError.ServeError, HttpApi.Api> => {
  const server = NodeHttpServer.layer(() => createServer({ keepAliveTimeout: 65_000 }), listenOptions(addr))
  return HttpApiBuilder.serve().pipe(
    // counter names are up to 128 characters; the stock router refuses params over 100
    Layer.provide(HttpRouter.setRouterConfig({ maxParamLength: 1024 })),
    Layer.provide(HttpApiSwagger.layer({ path: "/docs" })),
    Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" })),
    Layer.provide(layerContractErrors),
    Layer.provide(server),
    Layer.merge(Layer.effect(HttpServer.HttpServer, HttpServer.HttpServer).pipe(Layer.provide(server)))
  )
}

/** The node's HTTP server on `--http-addr`, over the running node's services. */
export const layer: Layer.Layer<
  HttpServer.HttpServer,
  HttpServerError.ServeError,
  CounterStore | PeerManager | NodeConfig
> = Layer.unwrapEffect(Effect.map(NodeConfig, (config) => serve(config.httpAddr))).pipe(Layer.provide(layerApi))
