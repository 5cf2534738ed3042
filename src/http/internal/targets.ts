/**
 * What a route resolves to, compiled once at startup: an API endpoint served directly
 * (decoders, success encoder, handler, the runtime to fork it on), a platform route (the
 * fallback), a raw `node:http` route, or a built-in answer (`/openapi.json`, `/docs`,
 * `/metrics`).
 *
 * @internal
 */
import { HttpApiError, HttpApiSchema } from "@effect/platform"
import type { HttpApiEndpoint, HttpRouter, HttpServerRequest } from "@effect/platform"
import { Effect, Option, Runtime } from "effect"
import type { Context, Fiber, ParseResult } from "effect"
import type * as Http from "node:http"
import type * as Metrics from "../../observability/HttpMetrics.js"
import {
  deunionize,
  describeIssues,
  formatIssue,
  makeDecoder,
  makeResponseEncoder,
  makeUrlParamsNormalizer
} from "./codec.js"
import type { Decoder, Encoded, QueryRecord, ResponseEncoder, Step } from "./codec.js"
import type { RegisteredHandler } from "./registry.js"
import { toServerRequest } from "./wire.js"

export type Recorder = Metrics.HttpRecorder

/** A raw `node:http` route handler (see `ApiServer.RawRoute`). */
export type RawHandler = (
  req: Http.IncomingMessage,
  res: Http.ServerResponse,
  params: Readonly<Record<string, string>>
) => void

export interface EndpointTarget {
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

export interface CompatTarget {
  readonly _tag: "Compat"
  readonly name: string
  readonly record: Recorder
  readonly route: HttpRouter.Route<unknown, unknown>
  /** the payload decoder of the endpoint the route serves, if it has a body payload */
  readonly decodePayload: Decoder | undefined
}

export interface RawTarget {
  readonly _tag: "Raw"
  readonly record: Recorder
  readonly handler: RawHandler
}

export interface BuiltinTarget {
  readonly _tag: "Builtin"
  readonly record: Recorder
  readonly respond: (params: Readonly<Record<string, string>>) => Encoded
  /** when set, a request it refuses is answered 401 `unauthorized` */
  readonly authorize?: ((headers: Readonly<Record<string, string | Array<string> | undefined>>) => boolean) | undefined
}

export type Target = EndpointTarget | CompatTarget | RawTarget | BuiltinTarget

/** The argument of a handler: `{ path, urlParams, headers, payload, request }`. */
export class HandlerArgs {
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
export class DecodeFailed {
  constructor(readonly message: string) {}
}

/** Plain sentences from the platform's decode error (it does not say which part failed). */
export const describeDecodeError = (error: HttpApiError.HttpApiDecodeError): string =>
  error.issues.length === 0 ? error.message : describeIssues("request", error.issues)

/** Decodes a request part in the handler's fiber (schemas that need services or async work). */
export const decodeLater = (
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

export const hasBody = (method: string): boolean => method !== "GET" && method !== "HEAD" && method !== "OPTIONS"

export const contentTypeJson = "application/json"

export const compileEndpoint = (
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
