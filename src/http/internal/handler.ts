/**
 * Request handling of `ApiServer`: routing, body reading under the limit, decoding, running
 * the handler's Effect on its runtime, encoding, the contract's error answers, metrics and
 * the in-flight bookkeeping that graceful shutdown waits on.
 *
 * @internal
 */
import { HttpApiError, HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Cause, Context, Effect, Exit, FiberRef, FiberRefs, LogLevel, Option, Runtime } from "effect"
import type { Fiber } from "effect"
import type * as Http from "node:http"
import * as Metrics from "../../observability/HttpMetrics.js"
import { parseQuery } from "./codec.js"
import type { Decoder, Encoded, QueryRecord, ResponseEncoder, Step } from "./codec.js"
import * as Callback from "../../internal/Callback.js"
import * as RequestId from "./requestId.js"
import { MalformedPath } from "./router.js"
import type { Router } from "./router.js"
import { decodeLater, DecodeFailed, describeDecodeError, hasBody, HandlerArgs } from "./targets.js"
import type { CompatTarget, EndpointTarget, Recorder, Target } from "./targets.js"
import { readBody, toServerRequest, writeEncoded, writeError, writeServerResponse } from "./wire.js"
import type { BodyResult } from "./wire.js"


/** Most bytes of a refused (413) body read and dropped before the connection is cut. */
const DRAIN_BYTES = 16 * 1024 * 1024
/** Longest time a refused (413) body may take to arrive before the connection is cut. */
const DRAIN_MS = 5_000

export interface ServerState {
  inflight: number
  closing: boolean
  onDrained: (() => void) | undefined
  readonly fibers: Set<Fiber.RuntimeFiber<unknown, unknown>>
}

export interface HandlerDeps {
  readonly router: Router<Target>
  readonly bodyLimit: number
  /** the server's runtime: logs, platform routes, error encoding */
  readonly runtime: Runtime.Runtime<never>
  readonly apiContext: Context.Context<never>
  /** the API-level middleware and error encoding of the platform (for platform routes) */
  readonly apiMiddleware: (
    effect: Effect.Effect<HttpServerResponse.HttpServerResponse, unknown>
  ) => Effect.Effect<HttpServerResponse.HttpServerResponse, unknown>
  readonly errorEncoder: ResponseEncoder
  readonly state: ServerState
}

/**
 * Whether a body with this content type is read as JSON. The contract is "JSON in":
 * `curl -d '{"by":5}'` sends a JSON body labelled as a form, and reading it as a form would
 * silently count `by: 1`; bodies labelled as a form or as plain text are read as JSON too
 * (what does not parse is a 400, never a miscount).
 */
const readsAsJson = (ct: string | undefined): boolean =>
  ct === undefined || ct === "application/json" || ct.includes("json") || ct.includes("x-www-form-urlencoded") ||
  ct.startsWith("text/plain")

/** The `node:http` request listener. */
export const makeRequestHandler = (deps: HandlerDeps): (req: Http.IncomingMessage, res: Http.ServerResponse) => void => {
  const { apiContext, apiMiddleware, bodyLimit, errorEncoder, router, runtime, state } = deps
  const runFork = Runtime.runFork(runtime)
  const unmatched = Metrics.httpRecorder("*", "unmatched")

  const runSync = Runtime.runSync(runtime)
  // the id is made now (not when the line is written) so that it goes out in the response
  const logCause = (message: string, cause: Cause.Cause<unknown>, name: string, res: Http.ServerResponse) =>
    runFork(Effect.logError(message, cause).pipe(Effect.annotateLogs({ route: name, requestId: RequestId.of(res).value })))
  const logDefect = (message: string, defect: unknown, name: string, res: Http.ServerResponse) =>
    logCause(message, Cause.die(defect), name, res)
  /**
   * A refused request (4xx, 5xx) is a debug line, with its request id; decided once from
   * the runtime's level, so that at info (the default) a refusal costs nothing more.
   */
  const debugRefusals = LogLevel.lessThanEqual(
    FiberRefs.getOrDefault(runtime.fiberRefs, FiberRef.currentMinimumLogLevel),
    LogLevel.Debug
  )
  const logRefused = (res: Http.ServerResponse, status: number, message: string) => {
    const req = res.req
    runSync(
      Effect.logDebug(`${req?.method ?? "?"} ${req?.url ?? "?"} answered ${status}: ${message}`).pipe(
        Effect.annotateLogs({ status, requestId: RequestId.of(res) })
      )
    )
  }

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
    if (debugRefusals) logRefused(res, status, message)
    writeError(res, status, code, message, state.closing, extra)
    done(record, status, start)
  }
  const sendEncoded = (res: Http.ServerResponse, record: Recorder, start: number, encoded: Encoded) => {
    if (debugRefusals && encoded.status >= 400) {
      logRefused(res, encoded.status, typeof encoded.body === "string" ? encoded.body.slice(0, 300) : "an error of the API's schemas")
    }
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
    writeServerResponse(res, response, runtime, state.closing, (cause) => logDefect("writing a response failed", cause, name, res))
    done(record, response.status, start)
  }
  const tooLarge = (req: Http.IncomingMessage, res: Http.ServerResponse, record: Recorder, start: number) => {
    writeError(res, 413, "payload_too_large", `the request body exceeds ${bodyLimit} bytes`, false)
    done(record, 413, start)
    // Read the rest of the body and drop it (node does so for an answered request), bounded
    // in bytes and time. Closing the connection with unread data would make the kernel send
    // a reset, and most clients then lose the 413 (found by the chaos suite).
    let drained = 0
    const timer = setTimeout(() => req.socket.destroy(), DRAIN_MS)
    timer.unref()
    req.on("data", (chunk: Buffer) => {
      drained += chunk.length
      if (drained > DRAIN_BYTES) {
        clearTimeout(timer)
        req.socket.destroy()
      }
    })
    req.once("end", () => clearTimeout(timer))
    req.once("close", () => clearTimeout(timer))
    req.resume()
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
          target.name,
          res
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
      logCause("unhandled error (not in the API's error schemas)", cause, target.name, res)
      return sendError(res, target.record, start, 500, "internal_error", "internal server error")
    }
    if (Cause.isInterruptedOnly(cause)) {
      return sendError(res, target.record, start, 503, "unavailable", "the server is shutting down")
    }
    logCause("handler failed", cause, target.name, res)
    return sendError(res, target.record, start, 500, "internal_error", "internal server error")
  }

  /** Runs a `Callback` handler without a fiber; counted in flight until it calls back. */
  const runCallback = (
    res: Http.ServerResponse,
    target: EndpointTarget,
    start: number,
    effect: Callback.Callback<unknown, unknown>
  ): void => {
    let resumed = false
    try {
      effect[Callback.TypeId]((exit) => {
        if (resumed) {
          logDefect("a Callback handler resumed twice", "the second result is ignored", target.name, res)
          return
        }
        resumed = true
        guarded(res, target.record, start, target.name, () =>
          Exit.isSuccess(exit)
            ? respondSuccess(res, target, start, exit.value)
            : respondFailure(res, target, start, exit.cause))
      })
    } catch (defect) {
      logDefect("a Callback handler threw", defect, target.name, res)
      if (resumed) return // it answered before throwing
      resumed = true
      sendError(res, target.record, start, 500, "internal_error", "internal server error")
    }
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
    if (readsAsJson(ct)) {
      try {
        return { ok: true, value: JSON.parse(body.toString("utf8")) }
      } catch (e) {
        return { ok: false, message: `malformed JSON body: ${e instanceof Error ? e.message : String(e)}` }
      }
    }
    if (ct!.startsWith("text/")) return { ok: true, value: body.toString("utf8") }
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
        logDefect("handler threw", defect, target.name, res)
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
    // nor does one that answered with `Callback.make`: its register function is called here
    if (Callback.isCallback(effect)) return runCallback(res, target, start, effect)
    if (target.uninterruptible) effect = Effect.uninterruptible(effect)
    // no log annotation around the handler: `Effect.annotateLogs` here costs more than the
    // rest of the request (bench/http, ApiServer rows); the engine's own lines about the
    // request carry its id
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
      } else if (readsAsJson(req.headers["content-type"])) {
        const parsed = parsePayload(req, body)
        if (!parsed.ok) return sendError(res, target.record, start, 400, "bad_request", parsed.message)
      }
    }
    // the platform route reads a form-labelled body as a form: label JSON as JSON for it
    const request = target.decodePayload !== undefined && readsAsJson(req.headers["content-type"])
      ? toServerRequest(req, body, { ...req.headers, "content-type": "application/json" })
      : toServerRequest(req, body)
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
      logDefect("request handling failed", defect, name, res)
      if (!res.headersSent) return sendError(res, record, start, 500, "internal_error", "internal server error")
      res.destroy()
      done(record, 500, start)
    }
  }

  const onRequest = (req: Http.IncomingMessage, res: Http.ServerResponse): void => {
    const start = performance.now()
    state.inflight++
    RequestId.echo(req, res)
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
    // HEAD is served by the GET route (unless one is declared for HEAD): node:http sends the
    // status and headers, content-length included, and drops the body for a HEAD request
    const target = match.table.byMethod.get(method) ??
      (method === "HEAD" ? match.table.byMethod.get("GET") : undefined)
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
        if (target.authorize !== undefined && !target.authorize(req.headers)) {
          return sendError(res, target.record, start, 401, "unauthorized", "this route requires the cluster key")
        }
        let encoded: Encoded
        try {
          encoded = target.respond(match.params)
        } catch (defect) {
          logDefect("built-in route failed", defect, path, res)
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
          logDefect("raw route failed", defect, path, res)
          if (!res.headersSent) writeError(res, 500, "internal_error", "internal server error", true)
          else res.destroy()
        }
        return
      }
    }
  }

  return onRequest
}
