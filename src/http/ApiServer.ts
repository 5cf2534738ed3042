/**
 * Serves an `HttpApi` definition on a raw `node:http` server, several times faster than
 * `HttpApiBuilder.serve()` on `NodeHttpServer`, from the same definition and the same
 * handlers.
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
 * route (about as slow as `HttpApiBuilder.serve()`); a warning at startup names them.
 *
 * Per endpoint, routing (a static map, then parameterised patterns), the path, query,
 * header and payload decoders, the success encoder and the error encoders (with their
 * annotated status) are compiled once. A request runs its handler with
 * `Runtime.runFork` on a runtime captured at startup (the group's context over the
 * server's), without building the platform's request and response objects; the handler's
 * `request` argument is built only when the handler reads it.
 *
 * The answers of the contract: unknown route 404 `not_found`, wrong method 405
 * `method_not_allowed` with `Allow`, malformed JSON / schema mismatch / bad path 400
 * `bad_request` (the message names the field), body over `bodyLimit` 413
 * `payload_too_large` (answered without buffering the rest, then the connection is
 * closed), defects 500 `internal_error` (logged), typed errors as their schema encodes
 * them with their annotated status. An empty body is decoded as `undefined`, then `null`,
 * then `{}`: an endpoint whose payload is optional, nullable or has only optional fields
 * accepts no body at all.
 *
 * Built in: `GET /openapi.json` (from `OpenApi.fromApi`), `GET /docs` (Swagger UI, assets
 * served by this server) and `GET /metrics` (Prometheus text). Extra raw `node:http`
 * routes can be added (`extraRoutes`) for HTML pages and server-sent events.
 *
 * Closing the layer's scope stops accepting connections, closes idle keep-alive
 * connections, lets in-flight requests finish for up to `drainTimeout` (default 2 s;
 * their answers carry `Connection: close`), then interrupts what is left and destroys the
 * remaining sockets, so the process can exit at once.
 */
import {
  HttpApi,
  HttpApiBuilder,
  HttpApiError,
  HttpApiSchema,
  HttpRouter,
  HttpServerRequest,
  HttpServerResponse,
  OpenApi
} from "@effect/platform"
import type { HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
import {
  Cause,
  Context,
  Data,
  Duration,
  Effect,
  Exit,
  FiberId,
  FiberRef,
  FiberRefs,
  Layer,
  Option,
  Runtime,
  RuntimeFlags
} from "effect"
import type { ParseResult } from "effect"
import type { Fiber, Scope } from "effect"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as Metrics from "../observability/Metrics.js"
import * as Prometheus from "../observability/Prometheus.js"
import {
  apiErrorSchemas,
  deunionize,
  formatIssue,
  makeDecoder,
  makeResponseEncoder,
  makeUrlParamsNormalizer,
  parseQuery
} from "./internal/codec.js"
import type { Decoder, Encoded, QueryRecord, ResponseEncoder, Step } from "./internal/codec.js"
import { docsAsset, docsPage } from "./internal/docs.js"
import { HandlerRegistry } from "./internal/registry.js"
import { makeHandlerScheduler } from "./internal/scheduler.js"
import type { RegisteredHandler } from "./internal/registry.js"
import { MalformedPath, Router, UnsupportedPath } from "./internal/router.js"
import {
  errorBody,
  readBody,
  toServerRequest,
  writeBody,
  writeEncoded,
  writeError,
  writeServerResponse
} from "./internal/wire.js"
import type { BodyResult } from "./internal/wire.js"

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
  readonly handler: (
    req: Http.IncomingMessage,
    res: Http.ServerResponse,
    params: Readonly<Record<string, string>>
  ) => void
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
// compiled routes

type Recorder = Metrics.HttpRecorder

interface EndpointTarget {
  readonly _tag: "Endpoint"
  readonly name: string
  readonly record: Recorder
  readonly readsBody: boolean
  readonly decodePath: Decoder | undefined
  readonly decodeUrlParams: ((query: QueryRecord) => Step<unknown>) | undefined
  readonly decodeHeaders: Decoder | undefined
  readonly decodePayload: Decoder | undefined
  readonly payloadFromQuery: boolean
  readonly success: ResponseEncoder
  readonly handler: (args: HandlerArgs) => Effect.Effect<unknown, unknown, unknown>
  readonly runFork: (effect: Effect.Effect<unknown, unknown, unknown>) => Fiber.RuntimeFiber<unknown, unknown>
  readonly uninterruptible: boolean
}

interface CompatTarget {
  readonly _tag: "Compat"
  readonly name: string
  readonly record: Recorder
  readonly route: HttpRouter.Route<unknown, unknown>
  /** the payload decoder of the endpoint the route serves, if it has a body payload */
  readonly decodePayload: Decoder | undefined
}

interface RawTarget {
  readonly _tag: "Raw"
  readonly record: Recorder
  readonly handler: RawRoute["handler"]
}

interface BuiltinTarget {
  readonly _tag: "Builtin"
  readonly record: Recorder
  readonly respond: (params: Readonly<Record<string, string>>) => Encoded
}

type Target = EndpointTarget | CompatTarget | RawTarget | BuiltinTarget

/** The argument of a handler: `{ path, urlParams, headers, payload, request }`. */
class HandlerArgs {
  path: unknown = undefined
  urlParams: unknown = undefined
  headers: unknown = undefined
  payload: unknown = undefined
  private shim: HttpServerRequest.HttpServerRequest | undefined = undefined
  constructor(private readonly req: Http.IncomingMessage, private readonly body: Buffer | undefined) {}
  get request(): HttpServerRequest.HttpServerRequest {
    return (this.shim ??= toServerRequest(this.req, this.body))
  }
}

/** A request part that failed to decode inside the handler fiber (async schemas). */
class DecodeFailed {
  constructor(readonly message: string) {}
}

/** `name: Expected ...; ...` from the platform's decode error (it does not say which part failed). */
const describeDecodeError = (error: HttpApiError.HttpApiDecodeError): string => {
  if (error.issues.length === 0) return error.message
  const parts = error.issues.slice(0, 5).map((i) =>
    i.path.length === 0 ? i.message : `${i.path.map(String).join(".")}: ${i.message}`
  )
  if (error.issues.length > 5) parts.push(`and ${error.issues.length - 5} more`)
  return parts.join("; ")
}

/** Decodes a request part in the handler's fiber (schemas that need services or async work). */
const decodeLater = (
  effect: Effect.Effect<unknown, ParseResult.ParseIssue, unknown>,
  where: string,
  args: HandlerArgs,
  key: "path" | "urlParams" | "headers" | "payload"
): Effect.Effect<void, DecodeFailed, unknown> =>
  Effect.matchEffect(effect, {
    onFailure: (issue) => Effect.fail(new DecodeFailed(formatIssue(where, issue))),
    onSuccess: (value) =>
      Effect.sync(() => {
        args[key] = value
      })
  })

const hasBody = (method: string): boolean => method !== "GET" && method !== "HEAD" && method !== "OPTIONS"

const contentTypeJson = "application/json"

// ---------------------------------------------------------------------------------------
// the server

interface ServerState {
  inflight: number
  closing: boolean
  onDrained: (() => void) | undefined
  readonly fibers: Set<Fiber.RuntimeFiber<unknown, unknown>>
}

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
    const runFork = Runtime.runFork(runtime)
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
    // Handler fibers: the group's context over the server's, the server's fiber refs (but
    // `currentContext`, see below), and
    // neither Effect's per-fiber runtime metrics (a histogram, a gauge and two counters
    // updated for every fiber: a third of the cost of forking one) nor the debug log of
    // "unhandled" failures (every failure is answered and, if unexpected, logged here).
    const handlerFlags = RuntimeFlags.disable(runtime.runtimeFlags, RuntimeFlags.RuntimeMetrics)
    // `currentContext` is dropped: every fork sets it from the runtime's context anyway, and
    // a fork walks every fiber ref of its runtime.
    let handlerRefs = FiberRefs.updateAs(FiberRefs.delete(runtime.fiberRefs, FiberRef.currentContext), {
      fiberId: FiberId.none,
      fiberRef: FiberRef.unhandledErrorLogLevel,
      value: Option.none()
    })
    // one shared FIFO for resumed handler fibers (internal/scheduler.ts): 10-15 % less CPU
    // per durable request than Effect's per-fiber runners, measured with bench/http
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
    const compiled = yield* Effect.try({
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
        return true
      },
      catch: (cause) => cause instanceof ApiServerError ? cause : routeError(String(cause), cause)
    })
    void compiled

    // -- built-in routes (an API route of the same method and path wins)
    const spec = OpenApi.fromApi(api)
    const specJson = JSON.stringify(spec)
    const builtin = (path: string, respond: BuiltinTarget["respond"]) =>
      router.add("GET", path, { _tag: "Builtin", record: Metrics.httpRecorder("GET", path), respond })
    builtin("/openapi.json", () => ({ status: 200, contentType: contentTypeJson, body: specJson }))
    if (options.docs !== false) {
      const page = docsPage(spec.info.title, "/docs")
      builtin("/docs", () => ({ status: 200, contentType: "text/html; charset=utf-8", body: page }))
      builtin("/docs/:asset", (params) => {
        const asset = docsAsset(params["asset"] ?? "", "/openapi.json")
        return asset === undefined
          ? { status: 404, contentType: contentTypeJson, body: errorBody("not_found", "no such docs asset") }
          : { status: 200, contentType: asset.contentType, body: asset.body }
      })
    }
    if (options.metrics !== false) {
      yield* Prometheus.eventLoopMonitor
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
      yield* Effect.logWarning(
        `served through the platform router (slow path): ${slow.join(", ")}; build their group with ` +
          "ApiServer.group, without handleRaw, middleware or multipart, for the fast path"
      )
    }

    // -- request handling
    const state: ServerState = { inflight: 0, closing: false, onDrained: undefined, fibers: new Set() }
    const unmatched = Metrics.httpRecorder("*", "unmatched")

    const logCause = (message: string, cause: Cause.Cause<unknown>, name: string) =>
      runFork(Effect.logError(message, cause).pipe(Effect.annotateLogs({ route: name })))
    const logDefect = (message: string, defect: unknown, name: string) => logCause(message, Cause.die(defect), name)

    const done = (record: Recorder, status: number, start: number) => {
      record(status, (performance.now() - start) / 1000)
      if (--state.inflight === 0 && state.onDrained !== undefined) state.onDrained()
    }
    const sendError = (
      res: Http.ServerResponse,
      record: Recorder,
      start: number,
      status: number,
      code: string,
      message: string,
      extra?: Record<string, string>
    ) => {
      writeError(res, status, code, message, state.closing, extra)
      done(record, status, start)
    }
    const sendEncoded = (res: Http.ServerResponse, record: Recorder, start: number, encoded: Encoded) => {
      writeEncoded(res, encoded, state.closing)
      done(record, encoded.status, start)
    }
    const sendResponse = (
      res: Http.ServerResponse,
      record: Recorder,
      start: number,
      response: HttpServerResponse.HttpServerResponse,
      name: string
    ) => {
      writeServerResponse(res, response, runtime, state.closing, (cause) => logDefect("writing a response failed", cause, name))
      done(record, response.status, start)
    }
    const tooLarge = (req: Http.IncomingMessage, res: Http.ServerResponse, record: Recorder, start: number) => {
      req.pause()
      writeError(res, 413, "payload_too_large", `the request body exceeds ${bodyLimit} bytes`, true)
      res.once("finish", () => setTimeout(() => req.socket.destroy(), 1000).unref())
      done(record, 413, start)
    }

    /** Keeps a running fiber for shutdown until `onExit` (which must forget it) runs. */
    const track = (fiber: Fiber.RuntimeFiber<unknown, unknown>, onExit: (exit: Exit.Exit<unknown, unknown>) => void) => {
      fiber.addObserver(onExit)
      if (fiber.unsafePoll() === null) state.fibers.add(fiber)
    }

    const respondSuccess = (
      res: Http.ServerResponse,
      target: EndpointTarget,
      start: number,
      value: unknown
    ): void => {
      if (HttpServerResponse.isServerResponse(value)) return sendResponse(res, target.record, start, value, target.name)
      const result = target.success.encode(value)
      switch (result._tag) {
        case "Ok":
          return sendEncoded(res, target.record, start, result.value)
        case "Async": {
          const fiber = target.runFork(result.effect)
          return track(fiber, (exit) => {
            state.fibers.delete(fiber)
            if (Exit.isSuccess(exit)) sendEncoded(res, target.record, start, exit.value as Encoded)
            else respondFailure(res, target, start, exit.cause)
          })
        }
        case "Bad":
        case "NoMember":
          logDefect(
            "the handler's value does not match the success schema",
            result._tag === "Bad" ? result.message : "no member of the success schema accepts it",
            target.name
          )
          return sendError(res, target.record, start, 500, "internal_error", "internal server error")
      }
    }

    const respondFailure = (
      res: Http.ServerResponse,
      target: { readonly name: string; readonly record: Recorder },
      start: number,
      cause: Cause.Cause<unknown>
    ): void => {
      const failure = Cause.failureOption(cause)
      if (Option.isSome(failure)) {
        const error = failure.value
        if (error instanceof DecodeFailed) {
          return sendError(res, target.record, start, 400, "bad_request", error.message)
        }
        if (error instanceof HttpApiError.HttpApiDecodeError) {
          return sendError(res, target.record, start, 400, "bad_request", describeDecodeError(error))
        }
        const result = errorEncoder.encode(error)
        if (result._tag === "Ok") return sendEncoded(res, target.record, start, result.value)
        if (result._tag === "Async") {
          const fiber = runFork(Effect.provide(result.effect as Effect.Effect<Encoded, unknown, never>, apiContext))
          return track(fiber, (exit) => {
            state.fibers.delete(fiber)
            if (Exit.isSuccess(exit)) sendEncoded(res, target.record, start, exit.value as Encoded)
            else respondFailure(res, target, start, Cause.die(exit.cause))
          })
        }
        logCause("unhandled error (not in the API's error schemas)", cause, target.name)
        return sendError(res, target.record, start, 500, "internal_error", "internal server error")
      }
      if (Cause.isInterruptedOnly(cause)) {
        return sendError(res, target.record, start, 503, "unavailable", "the server is shutting down")
      }
      logCause("handler failed", cause, target.name)
      return sendError(res, target.record, start, 500, "internal_error", "internal server error")
    }

    const decodeEmptyPayload = (decode: Decoder): Step<unknown> => {
      const asUndefined = decode(undefined)
      if (asUndefined._tag !== "Bad") return asUndefined
      const asNull = decode(null)
      if (asNull._tag !== "Bad") return asNull
      const asObject = decode({})
      return asObject._tag === "Bad"
        ? { _tag: "Bad", message: `a request body is required: ${asObject.message}` }
        : asObject
    }

    const parsePayload = (req: Http.IncomingMessage, body: Buffer): { ok: true; value: unknown } | { ok: false; message: string } => {
      const ct = req.headers["content-type"]
      // The contract is "JSON in": `curl -d '{"by":5}'` sends a JSON body labelled as a
      // form, and reading it as a form would silently count `by: 1`. Bodies labelled as a
      // form or as text are read as JSON too (anything else is a 400, never a miscount).
      if (
        ct === undefined || ct.includes("json") || ct.includes("x-www-form-urlencoded") || ct.startsWith("text/plain")
      ) {
        try {
          return { ok: true, value: JSON.parse(body.toString("utf8")) }
        } catch (e) {
          return { ok: false, message: `malformed JSON body: ${e instanceof Error ? e.message : String(e)}` }
        }
      }
      if (ct.includes("x-www-form-urlencoded")) return { ok: true, value: parseQuery(body.toString("utf8")) }
      if (ct.startsWith("text/")) return { ok: true, value: body.toString("utf8") }
      return { ok: true, value: new Uint8Array(body.buffer, body.byteOffset, body.byteLength) }
    }

    const serveEndpoint = (
      req: Http.IncomingMessage,
      res: Http.ServerResponse,
      target: EndpointTarget,
      params: Readonly<Record<string, string>>,
      query: string,
      body: Buffer | undefined,
      start: number
    ): void => {
      const args = new HandlerArgs(req, body)
      // decoded parts go straight into `args`; a part whose schema needs an Effect is
      // decoded in the handler's fiber (`pending`)
      let pending: Array<Effect.Effect<void, DecodeFailed, unknown>> | undefined
      let step: Step<unknown>
      if (target.decodePath !== undefined) {
        step = target.decodePath(params)
        if (step._tag === "Ok") args.path = step.value
        else if (step._tag === "Bad") return sendError(res, target.record, start, 400, "bad_request", step.message)
        else (pending ??= []).push(decodeLater(step.effect, "path", args, "path"))
      }
      let queryRecord: QueryRecord | undefined
      if (target.decodeUrlParams !== undefined) {
        queryRecord = parseQuery(query)
        step = target.decodeUrlParams(queryRecord)
        if (step._tag === "Ok") args.urlParams = step.value
        else if (step._tag === "Bad") return sendError(res, target.record, start, 400, "bad_request", step.message)
        else (pending ??= []).push(decodeLater(step.effect, "query", args, "urlParams"))
      }
      if (target.decodeHeaders !== undefined) {
        step = target.decodeHeaders(req.headers)
        if (step._tag === "Ok") args.headers = step.value
        else if (step._tag === "Bad") return sendError(res, target.record, start, 400, "bad_request", step.message)
        else (pending ??= []).push(decodeLater(step.effect, "headers", args, "headers"))
      }
      if (target.decodePayload !== undefined) {
        if (target.payloadFromQuery) {
          step = target.decodePayload(queryRecord ?? parseQuery(query))
        } else if (body === undefined || body.length === 0) {
          step = decodeEmptyPayload(target.decodePayload)
        } else {
          const parsed = parsePayload(req, body)
          if (!parsed.ok) return sendError(res, target.record, start, 400, "bad_request", parsed.message)
          step = target.decodePayload(parsed.value)
        }
        if (step._tag === "Ok") args.payload = step.value
        else if (step._tag === "Bad") return sendError(res, target.record, start, 400, "bad_request", step.message)
        else (pending ??= []).push(decodeLater(step.effect, "body", args, "payload"))
      }
      let effect: Effect.Effect<unknown, unknown, unknown>
      if (pending === undefined) {
        try {
          effect = target.handler(args)
        } catch (defect) {
          logDefect("handler threw", defect, target.name)
          return sendError(res, target.record, start, 500, "internal_error", "internal server error")
        }
      } else {
        effect = Effect.zipRight(Effect.all(pending, { discard: true }), Effect.suspend(() => target.handler(args)))
      }
      // a handler that answered with `Effect.succeed` / `Effect.fail` needs no fiber
      if (Exit.isExit(effect)) {
        return Exit.isSuccess(effect)
          ? respondSuccess(res, target, start, effect.value)
          : respondFailure(res, target, start, effect.cause)
      }
      if (target.uninterruptible) effect = Effect.uninterruptible(effect)
      const fiber = target.runFork(effect)
      track(fiber, (exit) => {
        state.fibers.delete(fiber)
        if (Exit.isSuccess(exit)) respondSuccess(res, target, start, exit.value)
        else respondFailure(res, target, start, exit.cause)
      })
    }

    const serveCompat = (
      req: Http.IncomingMessage,
      res: Http.ServerResponse,
      target: CompatTarget,
      params: Readonly<Record<string, string>>,
      query: string,
      body: Buffer | undefined,
      start: number
    ): void => {
      if (target.decodePayload !== undefined) {
        // the platform route dies (500) on an empty or malformed JSON body: answer those here
        if (body === undefined || body.length === 0) {
          const step = decodeEmptyPayload(target.decodePayload)
          if (step._tag === "Bad") return sendError(res, target.record, start, 400, "bad_request", step.message)
          const empty = target.decodePayload(null)._tag !== "Bad" ? null : {}
          body = Buffer.from(JSON.stringify(empty))
        } else {
          const ct = req.headers["content-type"]
          if (ct === undefined || ct.includes("application/json")) {
            const parsed = parsePayload(req, body)
            if (!parsed.ok) return sendError(res, target.record, start, 400, "bad_request", parsed.message)
          }
        }
      }
      const request = toServerRequest(req, body)
      const context = Context.make(HttpServerRequest.HttpServerRequest, request).pipe(
        Context.add(HttpRouter.RouteContext, {
          [HttpRouter.RouteContextTypeId]: HttpRouter.RouteContextTypeId,
          params,
          route: target.route
        }),
        Context.add(HttpServerRequest.ParsedSearchParams, parseQuery(query))
      )
      const handled = target.route.handler.pipe(
        Effect.catchIf(
          (e): e is HttpApiError.HttpApiDecodeError => e instanceof HttpApiError.HttpApiDecodeError,
          (e) => Effect.fail(new DecodeFailed(describeDecodeError(e)))
        ),
        Effect.scoped,
        Effect.provide(context)
      ) as Effect.Effect<HttpServerResponse.HttpServerResponse, unknown>
      const fiber = runFork(apiMiddleware(handled))
      track(fiber, (exit) => {
        state.fibers.delete(fiber)
        if (Exit.isSuccess(exit)) {
          sendResponse(res, target.record, start, exit.value as HttpServerResponse.HttpServerResponse, target.name)
        } else {
          respondFailure(res, target, start, exit.cause)
        }
      })
    }

    const withBody = (
      req: Http.IncomingMessage,
      res: Http.ServerResponse,
      record: Recorder,
      start: number,
      next: (body: Buffer | undefined) => void
    ) =>
      readBody(req, bodyLimit, (result: BodyResult) => {
        switch (result._tag) {
          case "Ok":
            return guarded(res, record, start, req.url ?? "/", () => next(result.body))
          case "TooLarge":
            return tooLarge(req, res, record, start)
          case "Aborted":
            // the client went away: nobody to answer
            res.destroy()
            return done(record, 499, start)
        }
      })

    /** Last line of defence: a bug in request handling answers 500 instead of crashing. */
    const guarded = (res: Http.ServerResponse, record: Recorder, start: number, name: string, f: () => void) => {
      try {
        f()
      } catch (defect) {
        logDefect("request handling failed", defect, name)
        if (!res.headersSent) return sendError(res, record, start, 500, "internal_error", "internal server error")
        res.destroy()
        done(record, 500, start)
      }
    }

    const onRequest = (req: Http.IncomingMessage, res: Http.ServerResponse): void => {
      const start = performance.now()
      state.inflight++
      guarded(res, unmatched, start, req.url ?? "/", () => dispatch(req, res, start))
    }

    const dispatch = (req: Http.IncomingMessage, res: Http.ServerResponse, start: number): void => {
      const url = req.url ?? "/"
      const q = url.indexOf("?")
      const path = q === -1 ? url : url.slice(0, q)
      const query = q === -1 ? "" : url.slice(q + 1)
      let match
      try {
        match = router.find(path)
      } catch (e) {
        const message = e instanceof MalformedPath ? e.message : "malformed path"
        return sendError(res, unmatched, start, 400, "bad_request", message)
      }
      if (match === undefined) {
        return sendError(res, unmatched, start, 404, "not_found", `no route for ${req.method} ${path}`)
      }
      const method = req.method ?? "GET"
      const target = match.table.byMethod.get(method)
      if (target === undefined) {
        return sendError(res, unmatched, start, 405, "method_not_allowed", `${method} is not allowed on ${path}`, {
          allow: match.table.allow
        })
      }
      switch (target._tag) {
        case "Endpoint":
          if (target.readsBody) {
            return withBody(req, res, target.record, start, (body) =>
              serveEndpoint(req, res, target, match.params, query, body, start))
          }
          return serveEndpoint(req, res, target, match.params, query, undefined, start)
        case "Compat":
          if (hasBody(method)) {
            return withBody(req, res, target.record, start, (body) =>
              serveCompat(req, res, target, match.params, query, body, start))
          }
          return serveCompat(req, res, target, match.params, query, undefined, start)
        case "Builtin": {
          let encoded: Encoded
          try {
            encoded = target.respond(match.params)
          } catch (defect) {
            logDefect("built-in route failed", defect, path)
            return sendError(res, target.record, start, 500, "internal_error", "internal server error")
          }
          return sendEncoded(res, target.record, start, encoded)
        }
        case "Raw": {
          if (state.closing) res.setHeader("connection", "close")
          res.once("close", () => done(target.record, res.statusCode, start))
          try {
            target.handler(req, res, match.params)
          } catch (defect) {
            logDefect("raw route failed", defect, path)
            if (!res.headersSent) writeError(res, 500, "internal_error", "internal server error", true)
            else res.destroy()
          }
          return
        }
      }
    }

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

    yield* Effect.addFinalizer(() =>
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
    yield* Effect.logInfo(`HTTP API listening on ${url}`).pipe(
      Effect.annotateLogs({ api: spec.info.title, docs: `${url}/docs` })
    )
    return { address: { host: bound.address, port: bound.port }, url }
  })

const compileEndpoint = (
  name: string,
  record: Recorder,
  endpoint: HttpApiEndpoint.HttpApiEndpoint.AnyWithProps,
  registered: RegisteredHandler,
  runtimeFor: (context: Context.Context<never>) => Runtime.Runtime<never>
): EndpointTarget => {
  const payload = Option.getOrUndefined(endpoint.payloadSchema)
  const urlParams = Option.getOrUndefined(endpoint.urlParamsSchema)
  const path = Option.getOrUndefined(endpoint.pathSchema)
  const headers = Option.getOrUndefined(endpoint.headersSchema)
  const bodyMethod = hasBody(endpoint.method)
  const normalize = urlParams === undefined ? undefined : makeUrlParamsNormalizer(urlParams.ast)
  const decodeQuery = urlParams === undefined ? undefined : makeDecoder(urlParams, "query")
  return {
    _tag: "Endpoint",
    name,
    record,
    // also without a payload schema: the handler may read the body through `request`
    readsBody: bodyMethod,
    decodePath: path === undefined ? undefined : makeDecoder(path, "path"),
    decodeUrlParams: normalize === undefined || decodeQuery === undefined
      ? undefined
      : (query) => decodeQuery(normalize(query)),
    decodeHeaders: headers === undefined ? undefined : makeDecoder(headers, "headers"),
    decodePayload: payload === undefined ? undefined : makeDecoder(payload, bodyMethod ? "body" : "query"),
    payloadFromQuery: payload !== undefined && !bodyMethod,
    success: makeResponseEncoder(deunionize(endpoint.successSchema), HttpApiSchema.getStatusSuccessAST),
    handler: registered.handler as unknown as EndpointTarget["handler"],
    runFork: Runtime.runFork(runtimeFor(registered.context)) as EndpointTarget["runFork"],
    uninterruptible: registered.uninterruptible
  }
}

/** `{"error": code, "message": message}`, for raw routes that answer errors themselves. */
export const writeJsonError = (
  res: Http.ServerResponse,
  status: number,
  code: string,
  message: string
): void => writeError(res, status, code, message, false)

/** Writes a JSON answer with its length, for raw routes. */
export const writeJson = (res: Http.ServerResponse, status: number, value: unknown): void =>
  writeBody(res, status, contentTypeJson, JSON.stringify(value), false)
