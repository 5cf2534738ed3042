/**
 * The node:http side of the server: reading a request body under a size limit, writing JSON
 * and error answers, writing a platform `HttpServerResponse`, and a lazily built platform
 * `HttpServerRequest` for handlers that ask for it.
 *
 * @internal
 */
import {
  Cookies,
  HttpIncomingMessage as IncomingMessage,
  HttpServerError,
  HttpServerRequest,
  HttpServerResponse,
  UrlParams
} from "@effect/platform"
import type { Headers as PlatformHeaders } from "@effect/platform"
import type { HttpMethod } from "@effect/platform/HttpMethod"
import { Effect, Inspectable, Option } from "effect"
import type { Runtime, Stream } from "effect"
import type * as Http from "node:http"
import { Readable } from "node:stream"
import type { Encoded } from "./codec.js"

// ---------------------------------------------------------------------------------------
// request bodies

export type BodyResult =
  | { readonly _tag: "Ok"; readonly body: Buffer | undefined }
  | { readonly _tag: "TooLarge" }
  | { readonly _tag: "Aborted"; readonly cause: unknown }

const OK_EMPTY: BodyResult = { _tag: "Ok", body: undefined }
const TOO_LARGE: BodyResult = { _tag: "TooLarge" }

/**
 * Reads the whole body, at most `limit` bytes. A declared `content-length` above the limit
 * answers at once without reading; a body that grows past it stops being buffered. The
 * callback runs exactly once, synchronously when there is no body.
 */
export const readBody = (req: Http.IncomingMessage, limit: number, cb: (result: BodyResult) => void): void => {
  const length = req.headers["content-length"]
  if (length === undefined) {
    if (req.headers["transfer-encoding"] === undefined) return cb(OK_EMPTY)
  } else {
    const n = Number(length)
    if (n > limit) return cb(TOO_LARGE)
    if (n === 0) return cb(OK_EMPTY)
  }
  let first: Buffer | undefined
  let chunks: Array<Buffer> | undefined
  let size = 0
  let done = false
  // listeners stay attached: after "end" nothing more comes, and after a refusal the
  // request is paused and its socket closed
  const finish = (result: BodyResult) => {
    if (done) return
    done = true
    cb(result)
  }
  const onData = (chunk: Buffer) => {
    if (done) return
    size += chunk.length
    if (size > limit) {
      first = undefined
      chunks = undefined
      return finish(TOO_LARGE)
    }
    if (first === undefined) first = chunk
    else (chunks ??= [first]).push(chunk)
  }
  const onEnd = () => finish({ _tag: "Ok", body: chunks !== undefined ? Buffer.concat(chunks, size) : first })
  const onError = (cause: unknown) => finish({ _tag: "Aborted", cause })
  req.on("data", onData)
  req.on("end", onEnd)
  req.on("error", onError)
}

// ---------------------------------------------------------------------------------------
// answers

/**
 * Seconds a client is told to wait before trying again after a 503 (`Retry-After`): the
 * gateway's view of node health and a node's readiness both change within about a second.
 */
export const RETRY_AFTER_SECONDS = "1"

/** `{"error": code, "message": message}` */
export const errorBody = (code: string, message: string): string => JSON.stringify({ error: code, message })

export const writeBody = (
  res: Http.ServerResponse,
  status: number,
  contentType: string | undefined,
  body: string | Uint8Array | undefined,
  close: boolean,
  extra?: Record<string, string>
): void => {
  const headers: Record<string, string | number> = extra === undefined ? {} : { ...extra }
  if (contentType !== undefined) headers["content-type"] = contentType
  if (body === undefined) {
    if (status !== 204 && status !== 304) headers["content-length"] = 0
  } else {
    headers["content-length"] = typeof body === "string" ? Buffer.byteLength(body) : body.byteLength
  }
  if (close) headers["connection"] = "close"
  if (status === 503 && headers["retry-after"] === undefined) headers["retry-after"] = RETRY_AFTER_SECONDS
  res.writeHead(status, headers)
  res.end(body)
}

export const writeEncoded = (res: Http.ServerResponse, encoded: Encoded, close: boolean): void =>
  writeBody(res, encoded.status, encoded.contentType, encoded.body, close)

export const writeError = (
  res: Http.ServerResponse,
  status: number,
  code: string,
  message: string,
  close: boolean,
  extra?: Record<string, string>
): void => writeBody(res, status, "application/json", errorBody(code, message), close, extra)

/**
 * Writes a platform response. Empty, byte and string bodies are written directly; streams
 * and form data go through the platform's web conversion.
 */
export const writeServerResponse = (
  res: Http.ServerResponse,
  response: HttpServerResponse.HttpServerResponse,
  runtime: Runtime.Runtime<never>,
  close: boolean,
  onError: (cause: unknown) => void
): void => {
  let headers: Record<string, string | Array<string>> = { ...response.headers }
  if (!Cookies.isEmpty(response.cookies)) {
    const toSet = Cookies.toSetCookieHeaders(response.cookies)
    const existing = headers["set-cookie"]
    if (existing !== undefined) toSet.push(...(Array.isArray(existing) ? existing : [existing]))
    headers["set-cookie"] = toSet
  }
  if (close) headers = { ...headers, connection: "close" }
  if (response.status === 503 && headers["retry-after"] === undefined) headers = { ...headers, "retry-after": RETRY_AFTER_SECONDS }
  const body = response.body
  switch (body._tag) {
    case "Empty":
      res.writeHead(response.status, headers)
      res.end()
      return
    case "Uint8Array":
      res.writeHead(response.status, headers)
      res.end(body.body)
      return
    case "Raw":
      if (typeof body.body === "string" || body.body instanceof Uint8Array) {
        res.writeHead(response.status, headers)
        res.end(body.body)
        return
      }
      break
    default:
      break
  }
  let web: Response
  try {
    web = HttpServerResponse.toWeb(response, { runtime })
  } catch (cause) {
    onError(cause)
    writeError(res, 500, "internal_error", "the response could not be written", true)
    return
  }
  const webHeaders: Record<string, string | Array<string>> = { ...headers }
  web.headers.forEach((value, key) => {
    if (key !== "set-cookie") webHeaders[key] = value
  })
  res.writeHead(web.status, webHeaders)
  if (web.body === null) {
    res.end()
    return
  }
  Readable.fromWeb(web.body as import("node:stream/web").ReadableStream<Uint8Array>)
    .on("error", (cause) => {
      onError(cause)
      res.destroy()
    })
    .pipe(res)
}

// ---------------------------------------------------------------------------------------
// the platform request, built only when a handler (or the platform route) asks for it

const hasBody = (method: string): boolean => method !== "GET" && method !== "HEAD" && method !== "OPTIONS"

/**
 * A platform `HttpServerRequest` over a `node:http` request whose body was already read:
 * headers, url, method, cookies and the body accessors (`json`, `text`, `arrayBuffer`,
 * `urlParamsBody`) answer directly; `stream`, `multipart` and `upgrade` go through a web
 * `Request` built on first use.
 */
class ServerRequestShim extends Inspectable.Class implements HttpServerRequest.HttpServerRequest {
  readonly [HttpServerRequest.TypeId]: HttpServerRequest.TypeId = HttpServerRequest.TypeId
  readonly [IncomingMessage.TypeId]: IncomingMessage.TypeId = IncomingMessage.TypeId
  private webRequest: HttpServerRequest.HttpServerRequest | undefined
  private cachedCookies: Record<string, string> | undefined

  constructor(
    readonly source: Http.IncomingMessage,
    private readonly body: Buffer | undefined,
    readonly url: string = source.url ?? "/",
    private readonly headersOverride?: PlatformHeaders.Headers,
    private readonly remoteAddressOverride?: string
  ) {
    super()
  }

  get originalUrl(): string {
    return this.source.url ?? "/"
  }
  get method(): HttpMethod {
    return (this.source.method ?? "GET").toUpperCase() as HttpMethod
  }
  get headers(): PlatformHeaders.Headers {
    return this.headersOverride ?? (this.source.headers as PlatformHeaders.Headers)
  }
  get remoteAddress(): Option.Option<string> {
    return Option.fromNullable(this.remoteAddressOverride ?? this.source.socket.remoteAddress)
  }
  get cookies(): Record<string, string> {
    return (this.cachedCookies ??= { ...Cookies.parseHeader(this.source.headers.cookie ?? "") })
  }
  private decodeError(cause: unknown): HttpServerError.RequestError {
    return new HttpServerError.RequestError({ request: this, reason: "Decode", cause })
  }
  private get bodyText(): string {
    return this.body === undefined ? "" : this.body.toString("utf8")
  }
  get text(): Effect.Effect<string, HttpServerError.RequestError> {
    return Effect.sync(() => this.bodyText)
  }
  get json(): Effect.Effect<unknown, HttpServerError.RequestError> {
    return Effect.try({ try: () => JSON.parse(this.bodyText) as unknown, catch: (e) => this.decodeError(e) })
  }
  get urlParamsBody(): Effect.Effect<UrlParams.UrlParams, HttpServerError.RequestError> {
    return Effect.try({ try: () => UrlParams.fromInput(new URLSearchParams(this.bodyText)), catch: (e) => this.decodeError(e) })
  }
  get arrayBuffer(): Effect.Effect<ArrayBuffer, HttpServerError.RequestError> {
    return Effect.sync(() => {
      const b = this.body ?? Buffer.alloc(0)
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer
    })
  }
  private get web(): HttpServerRequest.HttpServerRequest {
    if (this.webRequest === undefined) {
      const headers = new Headers()
      for (const [key, value] of Object.entries(this.headers)) {
        // the body is passed whole: its framing headers no longer apply
        if (value === undefined || key === "content-length" || key === "transfer-encoding") continue
        if (Array.isArray(value)) for (const v of value) headers.append(key, v)
        else headers.set(key, value)
      }
      const init: RequestInit = { method: this.method, headers }
      if (this.body !== undefined && hasBody(this.method)) init.body = this.body
      this.webRequest = HttpServerRequest.fromWeb(
        new Request(`http://${this.source.headers.host ?? "localhost"}${this.url}`, init)
      )
    }
    return this.webRequest
  }
  get stream(): Stream.Stream<Uint8Array, HttpServerError.RequestError> {
    return this.web.stream
  }
  get multipart(): HttpServerRequest.HttpServerRequest["multipart"] {
    return this.web.multipart
  }
  get multipartStream(): HttpServerRequest.HttpServerRequest["multipartStream"] {
    return this.web.multipartStream
  }
  get upgrade(): HttpServerRequest.HttpServerRequest["upgrade"] {
    return Effect.fail(
      new HttpServerError.RequestError({ request: this, reason: "Decode", description: "upgrade is not supported" })
    )
  }
  modify(options: {
    readonly url?: string | undefined
    readonly headers?: PlatformHeaders.Headers | undefined
    readonly remoteAddress?: string | undefined
  }): HttpServerRequest.HttpServerRequest {
    return new ServerRequestShim(
      this.source,
      this.body,
      options.url ?? this.url,
      options.headers ?? this.headersOverride,
      options.remoteAddress ?? this.remoteAddressOverride
    )
  }
  toJSON(): unknown {
    return IncomingMessage.inspect(this, {
      _id: "@effect/platform/HttpServerRequest",
      method: this.method,
      url: this.originalUrl
    })
  }
}

export const toServerRequest = (
  req: Http.IncomingMessage,
  body: Buffer | undefined,
  headers?: Http.IncomingHttpHeaders
): HttpServerRequest.HttpServerRequest =>
  new ServerRequestShim(req, body, req.url ?? "/", headers as PlatformHeaders.Headers | undefined)
