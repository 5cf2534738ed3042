/**
 * A minimal HTTP client for the tests: raw bodies, exact headers, an optional keep-alive
 * agent, and the socket's reuse reported.
 */
import { Effect } from "effect"
import * as Http from "node:http"

export interface Answer {
  readonly status: number
  readonly headers: Http.IncomingHttpHeaders
  readonly text: string
  readonly json: unknown
  /** whether the request went out on a socket that had already served one */
  readonly reusedSocket: boolean
}

export interface RequestOptions {
  readonly method?: string
  readonly body?: string | Buffer
  readonly headers?: Record<string, string>
  readonly agent?: Http.Agent
}

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

export const request = (url: string, options: RequestOptions = {}): Effect.Effect<Answer, Error> =>
  Effect.async<Answer, Error>((resume) => {
    const headers: Record<string, string | number> = { ...options.headers }
    if (options.body !== undefined && headers["content-length"] === undefined) {
      headers["content-length"] = Buffer.byteLength(options.body)
    }
    const req = Http.request(
      url,
      { method: options.method ?? "GET", headers, agent: options.agent ?? false },
      (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (c: Buffer) => chunks.push(c))
        res.on("error", (e) => resume(Effect.fail(e)))
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8")
          resume(Effect.succeed({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text,
            json: parseJson(text),
            reusedSocket: req.reusedSocket
          }))
        })
      }
    )
    req.on("error", (e) => resume(Effect.fail(e)))
    if (options.body !== undefined) req.write(options.body)
    req.end()
  }).pipe(Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error(`request to ${url} timed out`) }))

/** Sends a body in pieces and reports the answer, or that the server closed the socket. */
export const postStream = (
  url: string,
  totalBytes: number,
  headers: Record<string, string> = {}
): Effect.Effect<{ readonly status: number; readonly text: string }, Error> =>
  Effect.async<{ readonly status: number; readonly text: string }, Error>((resume) => {
    let answered = false
    const req = Http.request(url, { method: "POST", headers, agent: false }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () => {
        answered = true
        resume(Effect.succeed({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }))
      })
    })
    req.on("error", (e) => {
      if (!answered) resume(Effect.fail(e))
    })
    const chunk = Buffer.alloc(16 * 1024, 0x61)
    let sent = 0
    const pump = () => {
      while (sent < totalBytes) {
        sent += chunk.length
        if (!req.write(chunk)) return void req.once("drain", pump)
      }
      req.end()
    }
    pump()
  }).pipe(Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error(`streaming to ${url} timed out`) }))
