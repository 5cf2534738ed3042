/**
 * Serves an `HttpApi` definition on a raw `node:http` server, from the same definition and
 * the same handlers as `HttpApiBuilder.serve()` on `NodeHttpServer` but at a fraction of its
 * cost per request (docs/performance.md compares them).
 *
 * Usage (role authors):
 *
 *     // Http.ts: handlers exactly as with HttpApiBuilder.group
 *     export const CountersLive = ApiServer.group(NodeApi, "counters", (handlers) =>
 *       handlers
 *         .handle("increment", ({ payload }) => store.increment("default", payload?.by ?? 1))
 *         .handle("get", ({ path }) => store.get(path.name)))
 *
 *     // the role layer
 *     const HttpLive = ApiServer.layer(NodeApi, { addr: config.httpAddr }).pipe(
 *       Layer.provide([CountersLive, StateLive])
 *     )
 *     // or, over an existing `HttpApi.Api` layer (as `HttpApiBuilder.serve()` takes it)
 *     const HttpLive = ApiServer.serve({ addr }).pipe(Layer.provide(layerApi))
 *
 * `ApiServer.group` is `HttpApiBuilder.group` plus a registration: the layer it returns
 * also works under `HttpApiBuilder.serve()`. Endpoints of groups built with the stock
 * `HttpApiBuilder.group`, endpoints registered with `handleRaw`, endpoints with
 * `HttpApiMiddleware` and multipart payloads are still served, through the platform's
 * route (about as slow as `HttpApiBuilder.serve()`); a debug line at startup names them.
 *
 * Per endpoint, routing (a static map, then parameterised patterns), the path, query,
 * header and payload decoders, the success encoder and the error encoders (with their
 * annotated status) are compiled once. A request runs its handler with
 * `Runtime.runFork` on a runtime captured at startup (the group's context over the
 * server's), without building the platform's request and response objects; the handler's
 * `request` argument is built only when the handler reads it. A handler is not interrupted
 * when its client goes away (a durable write under way completes; the answer is dropped).
 *
 * The answers of the contract: unknown route 404 `not_found`, wrong method 405
 * `method_not_allowed` with `Allow` (HEAD is answered by the GET route: its status and
 * headers, `content-length` included, without the body), malformed JSON / schema
 * mismatch / bad path 400 `bad_request` (the message names the field), body over `bodyLimit` 413
 * `payload_too_large` (answered without buffering the rest, then the connection is
 * closed), defects 500 `internal_error` (logged), typed errors as their schema encodes
 * them with their annotated status. An empty body is decoded as `undefined`, then `null`,
 * then `{}`: an endpoint whose payload is optional, nullable or has only optional fields
 * accepts no body at all. A body labelled as a form or as plain text is read as JSON too
 * (`curl -d '{"by":5}'` labels its JSON as a form): it counts what it says, or is a 400.
 *
 * Built in: `GET /openapi.json` (from `OpenApi.fromApi`), `GET /docs` (Swagger UI, assets
 * served by this server) and `GET /metrics` (Prometheus text). Extra raw `node:http`
 * routes can be added (`extraRoutes`) for HTML pages and server-sent events.
 *
 * Like `HttpApiBuilder.serve()`, the server finds the group layers' handlers through layers
 * memoised by reference in the same `Layer` build (`HttpApiBuilder.Router` and the handler
 * registry): build the group layers and the server in one layer, and serve one API per
 * build.
 *
 * Closing the layer's scope stops accepting connections, closes idle keep-alive
 * connections, lets in-flight requests finish for up to `drainTimeout` (default 2 s;
 * their answers carry `Connection: close`), then interrupts what is left and destroys the
 * remaining sockets, so the process can exit at once.
 */
import { HttpApi, HttpApiBuilder, HttpApiSchema, HttpRouter, OpenApi } from "@effect/platform"
import type { HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
import {
  Context,
  Data,
  Duration,
  Effect,
  FiberId,
  FiberRef,
  FiberRefs,
  Layer,
  Option,
  Runtime,
  RuntimeFlags
} from "effect"
import type { Scope } from "effect"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as Metrics from "../observability/HttpMetrics.js"
import * as BuildInfo from "../observability/BuildInfo.js"
import * as OpenApiDoc from "./internal/openapi.js"
import * as Prometheus from "../observability/Prometheus.js"
import { apiErrorSchemas, makeDecoder, makeResponseEncoder } from "./internal/codec.js"
import { docsAsset, docsPage } from "./internal/docs.js"
import { makeRequestHandler } from "./internal/handler.js"
import type { ServerState } from "./internal/handler.js"
import { HandlerRegistry } from "./internal/registry.js"
import type { RegisteredHandler } from "./internal/registry.js"
import { Router, UnsupportedPath } from "./internal/router.js"
import { makeHandlerScheduler } from "./internal/scheduler.js"
import { compileEndpoint, contentTypeJson, hasBody } from "./internal/targets.js"
import type { BuiltinTarget, RawHandler, Target } from "./internal/targets.js"
import { errorBody, writeBody } from "./internal/wire.js"

// ---------------------------------------------------------------------------------------
// public API

export interface Address {
  readonly host: string
  readonly port: number
}

/** The running server: where it listens. */
export class ApiServer extends Context.Tag("dcounter/http/ApiServer")<
  ApiServer,
  {
    readonly address: Address
    /** `http://host:port` */
    readonly url: string
    /**
     * Stops serving now, as closing the scope does (drains in-flight requests); idempotent.
     * For a role that must stop its HTTP API before services built after it (the node).
     */
    readonly close: Effect.Effect<void>
  }
>() {}

/** The server could not start: the address is taken or invalid, or a route is unusable. */
export class ApiServerError extends Data.TaggedError("ApiServerError")<{
  readonly reason: "Listen" | "Route"
  readonly message: string
  readonly cause?: unknown
}> {}

/**
 * A route answered by plain `node:http` code (an HTML page, server-sent events). The body
 * is not read for it; `params` holds the decoded path parameters (`*` for a rest match).
 */
export interface RawRoute {
  readonly method: string
  readonly path: string
  readonly handler: RawHandler
}

export interface Options<E = never, R = never> {
  /** `host:port` or `{ host, port }`; port 0 picks a free port (see `ApiServer.address`) */
  readonly addr: string | Address
  /** largest accepted request body in bytes (default 64 KiB) */
  readonly bodyLimit?: number | undefined
  /** raw routes, or an Effect that builds them from services */
  readonly extraRoutes?: ReadonlyArray<RawRoute> | Effect.Effect<ReadonlyArray<RawRoute>, E, R> | undefined
  /** how long in-flight requests may take to finish when the server closes (default 2 s) */
  readonly drainTimeout?: Duration.DurationInput | undefined
  /** serve `GET /docs` (default true) */
  readonly docs?: boolean | undefined
  /** serve `GET /metrics` (default true) */
  readonly metrics?: boolean | undefined
  /**
   * Guards `GET /openapi.json` and `GET /docs` (not `/metrics`): a request it refuses is
   * answered 401. Discovery uses it to require its cluster key on every route but
   * `/health` and `/metrics`.
   */
  readonly authorizeDocs?: ((headers: Readonly<Record<string, string | Array<string> | undefined>>) => boolean) | undefined
}

/** Default `bodyLimit`: 64 KiB. */
export const defaultBodyLimit = 64 * 1024

/** Parses `host:port` (IPv6 as `[::1]:8080`). */
export const parseAddress = (addr: string | Address): Address | undefined => {
  if (typeof addr !== "string") return addr
  const i = addr.lastIndexOf(":")
  if (i <= 0) return undefined
  let host = addr.slice(0, i)
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1)
  const portText = addr.slice(i + 1)
  const port = Number(portText)
  if (portText === "" || !Number.isInteger(port) || port < 0 || port > 65535) return undefined
  return { host, port }
}

/**
 * `HttpApiBuilder.group` with the same builder API, that also registers the handlers for
 * `ApiServer`'s direct path. The returned layer works with `HttpApiBuilder.serve()` too.
 */
export const group = <
  ApiId extends string,
  Groups extends HttpApiGroup.HttpApiGroup.Any,
  ApiError,
  ApiR,
  const Name extends HttpApiGroup.HttpApiGroup.Name<Groups>,
  Return
>(
  api: HttpApi.HttpApi<ApiId, Groups, ApiError, ApiR>,
  groupName: Name,
  build: (
    handlers: HttpApiBuilder.Handlers.FromGroup<ApiError, ApiR, HttpApiGroup.HttpApiGroup.WithName<Groups, Name>>
  ) => HttpApiBuilder.Handlers.ValidateReturn<Return>
): Layer.Layer<
  HttpApiGroup.ApiGroup<ApiId, Name>,
  HttpApiBuilder.Handlers.Error<Return>,
  Exclude<
    HttpApiBuilder.Handlers.Context<Return> | HttpApiGroup.HttpApiGroup.MiddlewareWithName<Groups, Name>,
    Scope.Scope
  >
> => {
  const register = (handlers: HttpApiBuilder.Handlers<unknown, unknown, unknown>) =>
    Effect.flatMap(Effect.context<never>(), (context) =>
      Effect.map(HandlerRegistry, (registry) => {
        for (const item of handlers.handlers) {
          registry.handlers.set(item.endpoint as HttpApiEndpoint.HttpApiEndpoint.AnyWithProps, {
            endpoint: item.endpoint as HttpApiEndpoint.HttpApiEndpoint.AnyWithProps,
            handler: item.handler as RegisteredHandler["handler"],
            withFullRequest: item.withFullRequest,
            uninterruptible: item.uninterruptible,
            context
          })
        }
        return handlers
      }))
  const wrapped = (handlers: never) => {
    const result: unknown = (build as (h: never) => unknown)(handlers)
    return Effect.isEffect(result)
      ? Effect.flatMap(result as Effect.Effect<HttpApiBuilder.Handlers<unknown, unknown, unknown>>, register)
      : register(result as HttpApiBuilder.Handlers<unknown, unknown, unknown>)
  }
  const stock = HttpApiBuilder.group(api, groupName, wrapped as never) as unknown as Layer.Layer<
    HttpApiGroup.ApiGroup<ApiId, Name>,
    never,
    HandlerRegistry
  >
  return stock.pipe(Layer.provide(HandlerRegistry.Live)) as never
}

/**
 * Serves the `HttpApi.Api` in context (as `HttpApiBuilder.serve()` does) on `options.addr`:
 * `ApiServer.serve(options).pipe(Layer.provide(HttpApiBuilder.api(Api).pipe(Layer.provide(groups))))`.
 */
export const serve = <E = never, R = never>(
  options: Options<E, R>
): Layer.Layer<ApiServer, ApiServerError | E, HttpApi.Api | Exclude<R, Scope.Scope>> =>
  Layer.scoped(ApiServer, make(options)).pipe(
    Layer.provide(Layer.merge(HttpApiBuilder.Router.Live, HandlerRegistry.Live))
  )

/**
 * Serves `api` on `options.addr`; requires the layers of the API's groups (built with
 * `ApiServer.group` for the fast path, or `HttpApiBuilder.group`).
 */
export const layer = <Id extends string, Groups extends HttpApiGroup.HttpApiGroup.Any, ApiE, ApiR, E = never, R = never>(
  api: HttpApi.HttpApi<Id, Groups, ApiE, ApiR>,
  options: Options<E, R>
): Layer.Layer<
  ApiServer,
  ApiServerError | E,
  | HttpApiGroup.HttpApiGroup.ToService<Id, Groups>
  | ApiR
  | HttpApiGroup.HttpApiGroup.ErrorContext<Groups>
  | Exclude<R, Scope.Scope>
> =>
  Layer.scoped(ApiServer, make(options)).pipe(
    Layer.provide(HttpApiBuilder.api(api)),
    Layer.provide(Layer.merge(HttpApiBuilder.Router.Live, HandlerRegistry.Live))
  ) as never

// ---------------------------------------------------------------------------------------
// the server

const make = <E, R>(options: Options<E, R>) =>
  Effect.gen(function*() {
    const address = parseAddress(options.addr)
    if (address === undefined) {
      return yield* new ApiServerError({
        reason: "Listen",
        message: `invalid address ${JSON.stringify(options.addr)}: expected host:port`
      })
    }
    const bodyLimit = options.bodyLimit ?? defaultBodyLimit
    const drainMillis = Duration.toMillis(options.drainTimeout ?? Duration.seconds(2))
    const { api: anyApi, context: apiContext } = yield* HttpApi.Api
    const api = anyApi as unknown as HttpApi.HttpApi.AnyWithProps
    const stockRouter = yield* HttpApiBuilder.Router.router
    const registry = yield* HandlerRegistry
    const runtime = yield* Effect.runtime<never>()
    const apiMiddleware = yield* Effect.provide(HttpApiBuilder.buildMiddleware(api), apiContext)
    const extraRoutes: ReadonlyArray<RawRoute> = options.extraRoutes === undefined
      ? []
      : Effect.isEffect(options.extraRoutes)
      ? yield* options.extraRoutes
      : options.extraRoutes

    const errorEncoder = makeResponseEncoder(apiErrorSchemas(api), HttpApiSchema.getStatusErrorAST)
    const router = new Router<Target>()
    const routeError = (message: string, cause?: unknown) =>
      new ApiServerError({ reason: "Route", message, cause })
    const add = (method: string, path: string, target: Target, required: boolean) => {
      try {
        const added = router.add(method, path, target)
        if (!added && required) throw routeError(`two routes for ${method} ${path}`)
      } catch (cause) {
        if (cause instanceof ApiServerError) throw cause
        throw routeError(cause instanceof UnsupportedPath ? cause.message : `cannot route ${method} ${path}`, cause)
      }
    }

    // -- API endpoints
    const groupRuntimes = new Map<Context.Context<never>, Runtime.Runtime<never>>()
    // Handler fibers run on the group's context over the server's, with the server's fiber
    // refs, but without Effect's per-fiber runtime metrics (a histogram, a gauge and two
    // counters updated for every fiber: a large part of what forking one costs) and without the
    // debug log of "unhandled" failures (every failure is answered, and logged if unexpected).
    const handlerFlags = RuntimeFlags.disable(runtime.runtimeFlags, RuntimeFlags.RuntimeMetrics)
    // `currentContext` is dropped: every fork sets it from the runtime's context anyway, and
    // a fork walks every fiber ref of its runtime.
    let handlerRefs = FiberRefs.updateAs(FiberRefs.delete(runtime.fiberRefs, FiberRef.currentContext), {
      fiberId: FiberId.none,
      fiberRef: FiberRef.unhandledErrorLogLevel,
      value: Option.none()
    })
    // one shared FIFO for resumed handler fibers (internal/scheduler.ts): a durable request
    // resumes once, and Effect's per-fiber runners pay a WeakMap entry, a task bucket and a
    // promise for that one resumption
    handlerRefs = FiberRefs.updateAs(handlerRefs, {
      fiberId: FiberId.none,
      fiberRef: FiberRef.currentScheduler,
      value: makeHandlerScheduler()
    })
    const runtimeFor = (context: Context.Context<never>): Runtime.Runtime<never> => {
      let rt = groupRuntimes.get(context)
      if (rt === undefined) {
        rt = Runtime.make({
          context: Context.merge(context, runtime.context),
          fiberRefs: handlerRefs,
          runtimeFlags: handlerFlags
        })
        groupRuntimes.set(context, rt)
      }
      return rt
    }
    const stockRoutes = [...stockRouter.routes]
    const usedStockRoutes = new Set<HttpRouter.Route<unknown, unknown>>()
    const slow: Array<string> = []
    yield* Effect.try({
      try: () => {
        for (const group of Object.values(api.groups)) {
          for (const endpoint of Object.values(group.endpoints)) {
            const name = `${group.identifier}.${endpoint.name}`
            const record = Metrics.httpRecorder(endpoint.method, endpoint.path)
            const registered = registry.handlers.get(endpoint)
            const stockRoute = stockRoutes.find((r) => r.method === endpoint.method && r.path === endpoint.path)
            if (stockRoute !== undefined) usedStockRoutes.add(stockRoute)
            const payloadAst = Option.getOrUndefined(endpoint.payloadSchema)?.ast
            const multipart = payloadAst !== undefined &&
              (HttpApiSchema.getMultipart(payloadAst) !== undefined ||
                HttpApiSchema.getMultipartStream(payloadAst) !== undefined)
            const direct = registered !== undefined && !registered.withFullRequest && !multipart &&
              api.middlewares.size === 0 && group.middlewares.size === 0 && endpoint.middlewares.size === 0
            if (direct) {
              add(endpoint.method, endpoint.path, compileEndpoint(name, record, endpoint, registered, runtimeFor), true)
            } else if (stockRoute !== undefined) {
              slow.push(`${endpoint.method} ${endpoint.path}`)
              const decodePayload = payloadAst !== undefined && hasBody(endpoint.method) && !multipart
                ? makeDecoder(Option.getOrThrow(endpoint.payloadSchema), "body")
                : undefined
              add(endpoint.method, endpoint.path, { _tag: "Compat", name, record, route: stockRoute, decodePayload }, true)
            } else {
              throw routeError(`no handler for ${name} (${endpoint.method} ${endpoint.path})`)
            }
          }
        }
      },
      catch: (cause) => cause instanceof ApiServerError ? cause : routeError(String(cause), cause)
    })

    // -- built-in routes (an API route of the same method and path wins)
    const spec = OpenApiDoc.finalize(OpenApi.fromApi(api), { version: BuildInfo.version(), license: BuildInfo.license() }) as unknown as OpenApi.OpenAPISpec
    const specJson = JSON.stringify(spec)
    const builtin = (path: string, respond: BuiltinTarget["respond"], authorize?: BuiltinTarget["authorize"]) =>
      router.add("GET", path, { _tag: "Builtin", record: Metrics.httpRecorder("GET", path), respond, authorize })
    builtin("/openapi.json", () => ({ status: 200, contentType: contentTypeJson, body: specJson }), options.authorizeDocs)
    if (options.docs !== false) {
      const page = docsPage(spec.info.title, "/docs")
      builtin("/docs", () => ({ status: 200, contentType: "text/html; charset=utf-8", body: page }), options.authorizeDocs)
      builtin("/docs/:asset", (params) => {
        const asset = docsAsset(params["asset"] ?? "", "/openapi.json")
        return asset === undefined
          ? { status: 404, contentType: contentTypeJson, body: errorBody("not_found", "no such docs asset") }
          : { status: 200, contentType: asset.contentType, body: asset.body }
      })
    }
    if (options.metrics !== false) {
      yield* Prometheus.eventLoopMonitor
      // the role is the API's title without the product name ("dcounter node" -> "node")
      const buildInfo = BuildInfo.family(spec.info.title.replace(/^dcounter\s+/, ""))
      yield* Prometheus.collector(() => [buildInfo])
      builtin("/metrics", () => ({ status: 200, contentType: Prometheus.contentType, body: Prometheus.render() }))
    }

    // -- raw routes, then whatever else was registered on the platform router
    yield* Effect.try({
      try: () => {
        for (const route of extraRoutes) {
          add(route.method.toUpperCase(), route.path, {
            _tag: "Raw",
            record: Metrics.httpRecorder(route.method.toUpperCase(), route.path),
            handler: route.handler
          }, true)
        }
        for (const route of stockRoutes) {
          if (usedStockRoutes.has(route) || typeof route.path !== "string" || route.method === "*") continue
          add(route.method, route.path, {
            _tag: "Compat",
            name: `${route.method} ${route.path}`,
            record: Metrics.httpRecorder(route.method, route.path),
            route,
            decodePayload: undefined
          }, false)
        }
      },
      catch: (cause) => cause instanceof ApiServerError ? cause : routeError(String(cause), cause)
    })

    if (slow.length > 0) {
      // a fact for whoever develops the API, not a problem of the running service
      yield* Effect.logDebug(
        `served through the platform router (slow path): ${slow.join(", ")}; build their group with ` +
          "ApiServer.group, without handleRaw, middleware or multipart, for the fast path"
      )
    }

    // -- request handling
    const state: ServerState = { inflight: 0, closing: false, onDrained: undefined, fibers: new Set() }
    const onRequest = makeRequestHandler({ router, bodyLimit, runtime, apiContext, apiMiddleware, errorEncoder, state })

    // -- listen
    const server = Http.createServer({ noDelay: true }, onRequest)
    server.on("clientError", (error: NodeJS.ErrnoException, socket) => {
      if (error.code === "ECONNRESET" || !socket.writable) {
        socket.destroy()
        return
      }
      const body = errorBody("bad_request", "malformed HTTP request")
      socket.end(
        `HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n` +
          `connection: close\r\n\r\n${body}`
      )
    })
    yield* Effect.async<void, ApiServerError>((resume) => {
      const onError = (cause: Error) =>
        resume(Effect.fail(
          new ApiServerError({
            reason: "Listen",
            message: `cannot listen on ${address.host}:${address.port}: ${cause.message}`,
            cause
          })
        ))
      server.once("error", onError)
      server.listen(address.port, address.host, () => {
        server.off("error", onError)
        resume(Effect.void)
      })
    })
    const bound = server.address() as AddressInfo
    const hostForUrl = bound.family === "IPv6" ? `[${bound.address}]` : bound.address
    const url = `http://${hostForUrl}:${bound.port}`

    const close = yield* Effect.cached(
      Effect.async<void>((resume) => {
        state.closing = true
        let deadline: NodeJS.Timeout | undefined
        server.close(() => {
          if (deadline !== undefined) clearTimeout(deadline)
          resume(Effect.void)
        })
        server.closeIdleConnections()
        const forceClose = () => {
          for (const fiber of state.fibers) fiber.unsafeInterruptAsFork(FiberId.none)
          server.closeAllConnections()
        }
        if (state.inflight === 0) {
          server.closeAllConnections()
        } else {
          state.onDrained = () => {
            state.onDrained = undefined
            // answers carry Connection: close; sockets still open after them are idle
            setImmediate(() => server.closeIdleConnections())
          }
          deadline = setTimeout(forceClose, drainMillis)
        }
      }).pipe(Effect.zipRight(Effect.logInfo(`HTTP API on ${url} closed`)))
    )
    yield* Effect.addFinalizer(() => close)
    yield* Effect.logInfo(`HTTP API listening on ${url}`).pipe(
      Effect.annotateLogs({ api: spec.info.title, docs: `${url}/docs` })
    )
    return { address: { host: bound.address, port: bound.port }, url, close }
  })

/** Writes a JSON answer with its length, for raw routes. */
export const writeJson = (res: Http.ServerResponse, status: number, value: unknown): void =>
  writeBody(res, status, contentTypeJson, JSON.stringify(value), false)
