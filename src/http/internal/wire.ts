/**
 * The node:http side of the server: reading a request body under a size limit, writing JSON
 * and error answers, writing a platform `HttpServerResponse`, and a lazily built platform
 * `HttpServerRequest` for handlers that ask for it.
 *
 * @internal
 */
import { Cookies, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import type { Runtime } from "effect"
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
  const finish = (result: BodyResult) => {
    if (done) return
    done = true
    req.off("data", onData)
    req.off("end", onEnd)
    req.off("error", onError)
    cb(result)
  }
  const onData = (chunk: Buffer) => {
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
// the platform request, built only when a handler asks for it

const hasBody = (method: string): boolean => method !== "GET" && method !== "HEAD" && method !== "OPTIONS"

export const toServerRequest = (
  req: Http.IncomingMessage,
  body: Buffer | undefined
): HttpServerRequest.HttpServerRequest => {
  const headers = new Headers()
  for (const [key, value] of Object.entries(req.headers)) {
    // the body is passed whole: its framing headers no longer apply
    if (value === undefined || key === "content-length" || key === "transfer-encoding") continue
    if (Array.isArray(value)) for (const v of value) headers.append(key, v)
    else headers.set(key, value)
  }
  const method = req.method ?? "GET"
  const init: RequestInit = { method, headers }
  if (body !== undefined && hasBody(method)) init.body = body
  return HttpServerRequest.fromWeb(new Request(`http://${req.headers.host ?? "localhost"}${req.url ?? "/"}`, init))
}
