/**
 * The request side of RESP (the Redis serialization protocol): an incremental parser of
 * client commands. Pure: bytes in, commands out, no sockets.
 *
 * A command is an array of bulk strings (`*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n`, what every
 * client library and redis-cli send), or an inline command (`INCR k\r\n`, what a person
 * types into telnet or nc). Arguments come out as strings holding one character per byte
 * (latin1), so any byte string survives the round trip (ECHO answers it unchanged) and
 * an ASCII counter name is the name itself.
 *
 * Feed `push` chunks split at any boundary; it returns the commands completed so far, in
 * order. It never throws on input. Every size is bounded before anything is buffered
 * (array length, bulk length, length of a line), so a client announcing a 1 GB bulk gets
 * an error at once, not a 1 GB buffer. The first malformed or oversized frame is reported
 * as a `RespProtocolError` and the parser refuses everything after it: a byte stream
 * cannot be resynchronised, so the connection must be closed (after the commands before
 * the error are answered).
 *
 * Bytes are not copied per command: a chunk is scanned where it lies; only an unfinished
 * frame's bytes are kept, and a large bulk that spans chunks is joined once, when all of
 * it has arrived.
 */
import { Data } from "effect"

export interface RespLimits {
  /** largest bulk string accepted, in bytes (default 1 MiB: counter names are 128 bytes) */
  readonly maxBulkBytes: number
  /** most elements in one command array (default 65,536) */
  readonly maxArgs: number
  /** longest line: an inline command, or an array / bulk header (default 64 KiB) */
  readonly maxLineBytes: number
}

export const defaultLimits: RespLimits = {
  maxBulkBytes: 1024 * 1024,
  maxArgs: 64 * 1024,
  maxLineBytes: 64 * 1024
}

/** The client sent something that is not a well-formed RESP command, or too large a one. */
export class RespProtocolError extends Data.TaggedError("RespProtocolError")<{
  readonly reason:
    | "InvalidMultibulkLength"
    | "InvalidBulkLength"
    | "ExpectedBulk"
    | "MissingCrlf"
    | "LineTooLong"
    | "UnbalancedQuotes"
  readonly message: string
}> {}

/** One parsed command: its arguments, the command name first. */
export type Command = ReadonlyArray<string>

export interface PushResult {
  readonly commands: ReadonlyArray<Command>
  /** set when the stream is broken: no command after it will be parsed */
  readonly error?: RespProtocolError | undefined
}

const CR = 13
const LF = 10
const STAR = 42
const DOLLAR = 36

/** The printable form of a byte, for error messages. */
const show = (byte: number): string =>
  byte >= 32 && byte < 127 ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, "0")}`

/**
 * The decimal integer in `buf[from, to)`: an optional `-`, then 1 to 15 digits; NaN for
 * anything else (empty, signs in the middle, spaces, too many digits).
 */
export const parseLength = (buf: Uint8Array, from: number, to: number): number => {
  let i = from
  let negative = false
  if (i < to && buf[i] === 45) {
    negative = true
    i++
  }
  if (i === to || to - i > 15) return Number.NaN
  let n = 0
  for (; i < to; i++) {
    const d = buf[i]! - 48
    if (d < 0 || d > 9) return Number.NaN
    n = n * 10 + d
  }
  return negative ? -n : n
}

/**
 * Splits an inline command into arguments the way Redis does (`sdssplitargs`): spaces and
 * tabs separate, `"..."` quotes with `\n \r \t \b \a \\ \" \xHH` escapes, `'...'` quotes
 * with only `\'`. Undefined when a quote is not closed or a closing quote is followed by
 * something other than a space.
 */
export const splitInline = (line: string): Array<string> | undefined => {
  const out: Array<string> = []
  let i = 0
  const n = line.length
  const isSpace = (c: string | undefined) => c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\v" || c === "\f"
  while (true) {
    while (i < n && isSpace(line[i])) i++
    if (i >= n) return out
    let current = ""
    const quote = line[i] === "\"" ? "\"" : line[i] === "'" ? "'" : undefined
    if (quote === undefined) {
      while (i < n && !isSpace(line[i])) current += line[i++]
    } else {
      i++
      let closed = false
      while (i < n) {
        const c = line[i]!
        if (quote === "\"" && c === "\\" && i + 1 < n) {
          const e = line[i + 1]!
          const hex = line.slice(i + 2, i + 4)
          if (e === "x" && /^[0-9a-fA-F]{2}$/.test(hex)) {
            current += String.fromCharCode(parseInt(hex, 16))
            i += 4
            continue
          }
          current += e === "n" ? "\n" : e === "r" ? "\r" : e === "t" ? "\t" : e === "b" ? "\b" : e === "a" ? "\x07" : e
          i += 2
        } else if (quote === "'" && c === "\\" && line[i + 1] === "'") {
          current += "'"
          i += 2
        } else if (c === quote) {
          i++
          closed = true
          break
        } else {
          current += c
          i++
        }
      }
      // a closing quote must be followed by a space or the end
      if (!closed || (i < n && !isSpace(line[i]))) return undefined
    }
    out.push(current)
  }
}

/** An incremental RESP command parser for one connection (see the module comment). */
export class RespParser {
  private readonly limits: RespLimits
  /** unconsumed bytes of earlier chunks (an unfinished frame), joined when needed */
  private pending: Array<Buffer> = []
  private pendingBytes = 0
  /** bytes needed before parsing can go on (0: unknown, a line end is awaited) */
  private needed = 0
  /** the command being read: arguments so far and how many are still to come */
  private args: Array<string> = []
  private argsLeft = 0
  /** length of the bulk string whose body is awaited, or -1 when a `$` header is next */
  private bulkLength = -1
  private broken: RespProtocolError | undefined = undefined

  constructor(limits: Partial<RespLimits> = {}) {
    this.limits = { ...defaultLimits, ...limits }
  }

  /** Bytes held for an unfinished frame (bounded by the limits). */
  get buffered(): number {
    return this.pendingBytes
  }

  /** Feeds one chunk; returns the commands it completed and, once, the error that broke the stream. */
  push(chunk: Uint8Array): PushResult {
    if (this.broken !== undefined) return { commands: [] }
    const piece = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    if (piece.length === 0) return { commands: [] }
    // a bulk body still incomplete: keep the chunk and wait, without copying
    if (this.needed > 0 && this.pendingBytes + piece.length < this.needed) {
      this.pending.push(piece)
      this.pendingBytes += piece.length
      return { commands: [] }
    }
    let buf: Buffer
    if (this.pendingBytes === 0) buf = piece
    else {
      this.pending.push(piece)
      buf = Buffer.concat(this.pending, this.pendingBytes + piece.length)
    }
    this.pending = []
    this.pendingBytes = 0
    this.needed = 0
    const commands: Array<Command> = []
    const consumed = this.parse(buf, commands)
    if (this.broken !== undefined) return { commands, error: this.broken }
    if (consumed < buf.length) {
      // keep the unfinished frame; a copy, so the (large) chunk it came in can be freed
      const rest = Buffer.from(buf.subarray(consumed))
      this.pending.push(rest)
      this.pendingBytes = rest.length
      if (this.bulkLength >= 0) this.needed = this.bulkLength + 2
    }
    return { commands, error: undefined }
  }

  private fail(reason: RespProtocolError["reason"], message: string): number {
    this.broken = new RespProtocolError({ reason, message: `Protocol error: ${message}` })
    this.args = []
    return 0
  }

  /** Parses as much of `buf` as holds whole frames; returns the offset parsing stopped at. */
  private parse(buf: Buffer, commands: Array<Command>): number {
    const { maxArgs, maxBulkBytes, maxLineBytes } = this.limits
    let off = 0
    const end = buf.length
    while (off < end) {
      if (this.argsLeft === 0) {
        // the start of a command: an array header, or an inline command
        const lf = buf.indexOf(LF, off)
        if (lf === -1) {
          if (end - off > maxLineBytes) {
            return this.fail("LineTooLong", buf[off] === STAR ? "too big multibulk header" : "too big inline request")
          }
          return off
        }
        if (lf - off > maxLineBytes) {
          return this.fail("LineTooLong", buf[off] === STAR ? "too big multibulk header" : "too big inline request")
        }
        if (buf[off] === STAR) {
          if (lf === off || buf[lf - 1] !== CR) return this.fail("MissingCrlf", "multibulk header must end with CRLF")
          const n = parseLength(buf, off + 1, lf - 1)
          if (Number.isNaN(n) || n > maxArgs) return this.fail("InvalidMultibulkLength", "invalid multibulk length")
          off = lf + 1
          // `*0` and `*-1` are empty commands: Redis skips them
          if (n <= 0) continue
          this.argsLeft = n
          this.args = []
          this.bulkLength = -1
        } else {
          const lineEnd = lf > off && buf[lf - 1] === CR ? lf - 1 : lf
          const parts = splitInline(buf.toString("latin1", off, lineEnd))
          off = lf + 1
          if (parts === undefined) return this.fail("UnbalancedQuotes", "unbalanced quotes in request")
          if (parts.length > 0) commands.push(parts)
          continue
        }
      }
      // the elements of a command array
      while (this.argsLeft > 0) {
        if (this.bulkLength < 0) {
          if (off >= end) return off
          if (buf[off] !== DOLLAR) return this.fail("ExpectedBulk", `expected '$', got '${show(buf[off]!)}'`)
          const lf = buf.indexOf(LF, off)
          if (lf === -1) {
            if (end - off > maxLineBytes) return this.fail("LineTooLong", "too big bulk header")
            return off
          }
          if (buf[lf - 1] !== CR) return this.fail("MissingCrlf", "bulk header must end with CRLF")
          const n = parseLength(buf, off + 1, lf - 1)
          if (Number.isNaN(n) || n < 0 || n > maxBulkBytes) return this.fail("InvalidBulkLength", "invalid bulk length")
          this.bulkLength = n
          off = lf + 1
        }
        const n = this.bulkLength
        if (end - off < n + 2) return off
        if (buf[off + n] !== CR || buf[off + n + 1] !== LF) {
          return this.fail("MissingCrlf", "bulk string must end with CRLF")
        }
        this.args.push(buf.toString("latin1", off, off + n))
        off += n + 2
        this.bulkLength = -1
        this.argsLeft--
      }
      commands.push(this.args)
      this.args = []
    }
    return off
  }
}

/** A command as clients send it: an array of bulk strings (arguments as latin1 strings). */
export const encodeCommand = (args: ReadonlyArray<string>): Buffer => {
  let out = `*${args.length}\r\n`
  for (const a of args) out += `$${a.length}\r\n${a}\r\n`
  return Buffer.from(out, "latin1")
}
