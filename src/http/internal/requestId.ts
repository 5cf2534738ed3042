/**
 * The request id of an HTTP request, for log lines written while handling it.
 *
 * A client (or a proxy in front) may send `X-Request-Id`: when it is a sane token (1 to 128
 * characters of `[A-Za-z0-9._:/+=@-]`) it is echoed in the response and used in the log
 * lines; anything else is ignored. A request that came without one gets one only when a
 * line is logged about it: the id is made the first time a logger reads it (`toJSON`), and
 * put in the response header too when the response has not gone out yet. So the fast path
 * (a request answered without a fiber and without a log line) does no work for it beyond
 * looking the header up.
 *
 * @internal
 */
import { randomUUID } from "node:crypto"
import type * as Http from "node:http"

export const HEADER = "x-request-id"

const SANE = /^[A-Za-z0-9._:/+=@-]{1,128}$/

/**
 * The request's own id when it sent one sane `X-Request-Id`. Reads the raw header list (a
 * few entries) rather than `req.headers`, which node builds on first use.
 */
export const given = (req: Http.IncomingMessage): string | undefined => {
  const raw = req.rawHeaders
  let found: string | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const key = raw[i]!
    if (key.length === HEADER.length && key.toLowerCase() === HEADER) {
      if (found !== undefined) return undefined // given twice: ambiguous
      found = raw[i + 1]!
    }
  }
  return found !== undefined && SANE.test(found) ? found : undefined
}

/** Echoes a sane `X-Request-Id` of the request in its response (nothing else). */
export const echo = (req: Http.IncomingMessage, res: Http.ServerResponse): void => {
  const id = given(req)
  if (id !== undefined) res.setHeader(HEADER, id)
}

/**
 * A log annotation whose value is the request's id, made when first read. Loggers render
 * an annotation through its `toJSON` (Logging.ts does), so an id nobody logs is never made.
 */
export class RequestId {
  private id: string | undefined = undefined
  constructor(private readonly res: Http.ServerResponse) {}

  get value(): string {
    if (this.id === undefined) {
      const req = this.res.req
      this.id = (req === undefined ? undefined : given(req)) ?? randomUUID()
      if (!this.res.headersSent) this.res.setHeader(HEADER, this.id)
    }
    return this.id
  }

  toJSON(): string {
    return this.value
  }

  toString(): string {
    return this.value
  }
}

/** One per response, in a side table: a property on the response would change its shape for every request. */
const ids = new WeakMap<Http.ServerResponse, RequestId>()

/** The request id annotation of the request `res` answers (one per response). */
export const of = (res: Http.ServerResponse): RequestId => {
  let id = ids.get(res)
  if (id === undefined) {
    id = new RequestId(res)
    ids.set(res, id)
  }
  return id
}
