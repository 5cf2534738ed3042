/**
 * A small HTTP client for black-box tests: every request has a deadline, and the result
 * says whether the server answered (status + body) or what went wrong on the way, which
 * is what the workload needs to tell a definite failure from an unknown outcome.
 */
import * as http from "node:http"

export interface HttpAnswer {
  readonly kind: "answer"
  readonly status: number
  readonly headers: http.IncomingHttpHeaders
  readonly text: string
  /** the parsed body, or undefined if it was not JSON */
  readonly json: unknown
  readonly ms: number
}

export interface HttpFailure {
  readonly kind: "failure"
  /** the socket error code (ECONNREFUSED, ECONNRESET, ...), or TIMEOUT */
  readonly code: string
  readonly message: string
  readonly ms: number
}

export type HttpResult = HttpAnswer | HttpFailure

export interface HttpRequest {
  readonly host: string
  readonly port: number
  readonly method?: string
  readonly path: string
  readonly body?: string | Buffer
  readonly headers?: http.OutgoingHttpHeaders
  readonly timeoutMs?: number
  readonly agent?: http.Agent | false
  /** cap on the response body kept (bytes) */
  readonly maxBody?: number
}

export const request = (req: HttpRequest): Promise<HttpResult> =>
  new Promise((resolve) => {
    const started = Date.now()
    let settled = false
    const done = (r: HttpResult): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve(r)
    }
    const headers: http.OutgoingHttpHeaders = { ...req.headers }
    if (req.body !== undefined) {
      headers["content-length"] ??= Buffer.byteLength(req.body)
      headers["content-type"] ??= "application/json"
    }
    const r = http.request(
      {
        host: req.host,
        port: req.port,
        method: req.method ?? "GET",
        path: req.path,
        headers,
        agent: req.agent ?? false
      },
      (res) => {
        const chunks: Array<Buffer> = []
        let size = 0
        const max = req.maxBody ?? 1_000_000
        res.on("data", (c: Buffer) => {
          if (size < max) chunks.push(c)
          size += c.length
        })
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8")
          let json: unknown
          try {
            json = JSON.parse(text)
          } catch {
            json = undefined
          }
          done({ kind: "answer", status: res.statusCode ?? 0, headers: res.headers, text, json, ms: Date.now() - started })
        })
        res.on("error", (e: NodeJS.ErrnoException) =>
          done({ kind: "failure", code: e.code ?? "ERESPONSE", message: e.message, ms: Date.now() - started })
        )
      }
    )
    const timer = setTimeout(() => {
      done({ kind: "failure", code: "TIMEOUT", message: `no answer within ${req.timeoutMs ?? 5000}ms`, ms: Date.now() - started })
      r.destroy()
    }, req.timeoutMs ?? 5000)
    r.on("error", (e: NodeJS.ErrnoException) =>
      done({ kind: "failure", code: e.code ?? "EREQUEST", message: e.message, ms: Date.now() - started })
    )
    if (req.body !== undefined) r.end(req.body)
    else r.end()
  })

/** GET a JSON body, throwing with context on anything but a 200 with JSON. */
export const getJson = async (host: string, port: number, path: string, timeoutMs = 3000): Promise<unknown> => {
  const r = await request({ host, port, path, timeoutMs })
  if (r.kind === "failure") throw new Error(`GET http://${host}:${port}${path}: ${r.code} ${r.message}`)
  if (r.status !== 200 || r.json === undefined) {
    throw new Error(`GET http://${host}:${port}${path}: status ${r.status}: ${r.text.slice(0, 300)}`)
  }
  return r.json
}

/** Polls `check` until it returns a value (not undefined) or the deadline passes. */
export const pollUntil = async <A>(
  what: string,
  timeoutMs: number,
  intervalMs: number,
  check: () => Promise<A | undefined>
): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      const a = await check()
      if (a !== undefined) return a
    } catch (e) {
      lastError = e
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ""}`)
    }
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}
