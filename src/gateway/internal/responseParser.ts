/**
 * An incremental HTTP/1.1 response parser for the gateway's connections to the nodes: one
 * response at a time (no pipelining), fed the bytes of a socket as they arrive, in chunks
 * of any size. Bodies are delimited by `content-length`, `transfer-encoding: chunked` or
 * the end of the connection; 1xx interim answers are skipped; the head and the body are
 * bounded. It never throws on bad input: it answers `Invalid` with a message.
 *
 * @internal
 */

export interface ParsedResponse {
  readonly status: number
  readonly body: Buffer
  /** the connection may carry another request (HTTP/1.1 without `connection: close`) */
  readonly keepAlive: boolean
  /** the server's `keep-alive: timeout=N` hint in seconds, when it sent one */
  readonly keepAliveSeconds: number | undefined
}

export type Step =
  /** more bytes are needed */
  | { readonly _tag: "More" }
  /** a complete response; `trailing`: bytes came after it (the connection is not reusable) */
  | { readonly _tag: "Done"; readonly response: ParsedResponse; readonly trailing: boolean }
  | { readonly _tag: "Invalid"; readonly message: string }

export interface Limits {
  /** largest status line + headers (and trailers), in bytes */
  readonly maxHeadBytes: number
  /** largest body, in bytes */
  readonly maxBodyBytes: number
}

const MORE: Step = { _tag: "More" }
const EMPTY = Buffer.alloc(0)
const CRLF = Buffer.from("\r\n")
const CRLFCRLF = Buffer.from("\r\n\r\n")
/** longest chunk-size line accepted (hex digits plus extensions) */
const MAX_CHUNK_LINE = 256

const HEAD = 0
const BODY = 1
const CHUNK_SIZE = 2
const CHUNK_DATA = 3
const CHUNK_DATA_END = 4
const TRAILERS = 5
const UNTIL_CLOSE = 6
type State = typeof HEAD | typeof BODY | typeof CHUNK_SIZE | typeof CHUNK_DATA | typeof CHUNK_DATA_END | typeof TRAILERS | typeof UNTIL_CLOSE

const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: [^\r\n]*)?$/
const DIGITS = /^\d+$/
const HEX = /^[0-9a-fA-F]+$/

const invalid = (message: string): Step => ({ _tag: "Invalid", message })

export class ResponseParser {
  private state: State = HEAD
  /** unconsumed bytes of a head, chunk-size line, chunk end or trailer */
  private pending: Buffer | undefined = undefined
  private status = 0
  private keepAlive = true
  private keepAliveSeconds: number | undefined = undefined
  /** bytes left in the body (length-delimited) or the current chunk */
  private remaining = 0
  private parts: Array<Buffer> = []
  private bodySize = 0
  private trailerBytes = 0

  constructor(private readonly limits: Limits) {}

  /** Whether the parser holds part of a response (bytes came since the last `Done`). */
  get started(): boolean {
    return this.state !== HEAD || this.pending !== undefined
  }

  /** Feeds the next bytes of the connection. */
  feed(chunk: Buffer): Step {
    let data = chunk
    if (this.pending !== undefined) {
      data = Buffer.concat([this.pending, chunk])
      this.pending = undefined
    }
    let pos = 0
    for (;;) {
      switch (this.state) {
        case HEAD: {
          const end = data.indexOf(CRLFCRLF, pos)
          if (end === -1) {
            if (data.length - pos > this.limits.maxHeadBytes) return this.fail("the answer's head is too large")
            return this.keep(data, pos)
          }
          if (end - pos > this.limits.maxHeadBytes) return this.fail("the answer's head is too large")
          const problem = this.parseHead(data.toString("latin1", pos, end))
          if (problem !== undefined) return this.fail(problem)
          pos = end + 4
          break
        }
        case BODY:
        case CHUNK_DATA: {
          const take = Math.min(this.remaining, data.length - pos)
          if (take > 0) {
            this.parts.push(data.subarray(pos, pos + take))
            pos += take
            this.remaining -= take
          }
          if (this.remaining > 0) return MORE
          if (this.state === BODY) return this.finish(data, pos)
          this.state = CHUNK_DATA_END
          break
        }
        case CHUNK_SIZE: {
          const end = data.indexOf(CRLF, pos)
          if (end === -1) {
            if (data.length - pos > MAX_CHUNK_LINE) return this.fail("a chunk-size line is too long")
            return this.keep(data, pos)
          }
          if (end - pos > MAX_CHUNK_LINE) return this.fail("a chunk-size line is too long")
          const line = data.toString("latin1", pos, end)
          const semi = line.indexOf(";")
          const hex = (semi === -1 ? line : line.slice(0, semi)).trim()
          if (!HEX.test(hex) || hex.length > 8) return this.fail(`bad chunk size ${JSON.stringify(line.slice(0, 40))}`)
          const size = parseInt(hex, 16)
          pos = end + 2
          if (size === 0) {
            this.state = TRAILERS
            this.trailerBytes = 0
          } else {
            if (this.bodySize + size > this.limits.maxBodyBytes) return this.fail(this.tooLarge())
            this.bodySize += size
            this.remaining = size
            this.state = CHUNK_DATA
          }
          break
        }
        case CHUNK_DATA_END: {
          if (data.length - pos < 2) return this.keep(data, pos)
          if (data[pos] !== 13 || data[pos + 1] !== 10) return this.fail("a chunk does not end with CRLF")
          pos += 2
          this.state = CHUNK_SIZE
          break
        }
        case TRAILERS: {
          const end = data.indexOf(CRLF, pos)
          if (end === -1) {
            if (this.trailerBytes + data.length - pos > this.limits.maxHeadBytes) return this.fail("the trailers are too large")
            return this.keep(data, pos)
          }
          this.trailerBytes += end - pos + 2
          if (this.trailerBytes > this.limits.maxHeadBytes) return this.fail("the trailers are too large")
          const empty = end === pos
          pos = end + 2
          if (empty) return this.finish(data, pos)
          break
        }
        case UNTIL_CLOSE: {
          const rest = data.length - pos
          if (rest > 0) {
            this.bodySize += rest
            if (this.bodySize > this.limits.maxBodyBytes) return this.fail(this.tooLarge())
            this.parts.push(pos === 0 ? data : data.subarray(pos))
          }
          return MORE
        }
      }
    }
  }

  /** The connection ended: completes a body delimited by the close, else says what was cut. */
  end(): Step {
    if (this.state === UNTIL_CLOSE) return this.finish(EMPTY, 0)
    const started = this.started
    this.reset()
    return invalid(started ? "the connection closed in the middle of the answer" : "the connection closed before an answer")
  }

  private keep(data: Buffer, pos: number): Step {
    if (pos < data.length) this.pending = pos === 0 ? data : data.subarray(pos)
    return MORE
  }

  private fail(message: string): Step {
    this.reset()
    return invalid(message)
  }

  private tooLarge(): string {
    return `the answer's body is larger than ${this.limits.maxBodyBytes} bytes`
  }

  private reset(): void {
    this.state = HEAD
    this.pending = undefined
    this.parts = []
    this.bodySize = 0
  }

  private finish(data: Buffer, pos: number): Step {
    const parts = this.parts
    const body = parts.length === 0 ? EMPTY : parts.length === 1 ? parts[0]! : Buffer.concat(parts, this.bodySize)
    const response: ParsedResponse = {
      status: this.status,
      body,
      keepAlive: this.keepAlive && this.state !== UNTIL_CLOSE,
      keepAliveSeconds: this.keepAliveSeconds
    }
    this.reset()
    return { _tag: "Done", response, trailing: pos < data.length }
  }

  /** Reads a status line and headers; sets the body mode. Returns a problem, if any. */
  private parseHead(head: string): string | undefined {
    let lineEnd = head.indexOf("\r\n")
    if (lineEnd === -1) lineEnd = head.length
    const first = head.slice(0, lineEnd)
    const statusLine = STATUS_LINE.exec(first)
    if (statusLine === null) return `not an HTTP/1.x status line: ${JSON.stringify(first.slice(0, 60))}`
    const minor = statusLine[1]
    const status = Number(statusLine[2])
    let length: number | undefined = undefined
    let chunked = false
    let close = false
    let keepAliveToken = false
    let keepAliveSeconds: number | undefined = undefined
    for (let pos = lineEnd + 2; pos < head.length;) {
      let next = head.indexOf("\r\n", pos)
      if (next === -1) next = head.length
      const colon = head.indexOf(":", pos)
      if (colon <= pos || colon > next) return `malformed header line ${JSON.stringify(head.slice(pos, Math.min(next, pos + 60)))}`
      const nameLength = colon - pos
      const start = pos
      pos = next + 2
      // only four headers matter; the others are skipped without being copied
      if (nameLength !== 10 && nameLength !== 14 && nameLength !== 17) continue
      const name = head.slice(start, colon).toLowerCase()
      const value = head.slice(colon + 1, next).trim()
      switch (name) {
        case "content-length": {
          if (!DIGITS.test(value)) return `bad content-length ${JSON.stringify(value.slice(0, 30))}`
          const n = Number(value)
          if (length !== undefined && length !== n) return "two different content-length headers"
          length = n
          break
        }
        case "transfer-encoding": {
          const codings = value.toLowerCase().split(",").map((s) => s.trim())
          if (codings[codings.length - 1] !== "chunked") return `unsupported transfer-encoding ${JSON.stringify(value.slice(0, 30))}`
          chunked = true
          break
        }
        case "connection":
          for (const token of value.toLowerCase().split(",")) {
            const t = token.trim()
            if (t === "close") close = true
            else if (t === "keep-alive") keepAliveToken = true
          }
          break
        case "keep-alive": {
          const m = /(?:^|[\s,])timeout=(\d+)/i.exec(value)
          if (m !== null) keepAliveSeconds = Number(m[1])
          break
        }
      }
    }
    if (status >= 100 && status < 200) {
      // an interim answer (100 Continue, 103 Early Hints): the real one follows
      if (status === 101) return "the node switched protocols"
      return undefined
    }
    this.status = status
    this.keepAlive = !close && (minor === "1" || keepAliveToken)
    this.keepAliveSeconds = keepAliveSeconds
    this.parts = []
    this.bodySize = 0
    if (status === 204 || status === 304) {
      this.state = BODY
      this.remaining = 0
    } else if (chunked) {
      this.state = CHUNK_SIZE
    } else if (length !== undefined) {
      if (length > this.limits.maxBodyBytes) return this.tooLarge()
      this.state = BODY
      this.remaining = length
      this.bodySize = length
    } else {
      this.state = UNTIL_CLOSE
    }
    return undefined
  }
}
