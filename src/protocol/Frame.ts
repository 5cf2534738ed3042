/**
 * The frame codec of the gossip stream: pure, no sockets. One frame carries one encoded
 * message (see Codec.ts):
 *
 *     offset  size  field
 *     0       4     length: u32 big-endian, the number of bytes after this field
 *     4       1     version: 1
 *     5       1     flags: bit 0 = an HMAC-SHA256 tag ends the frame; other bits 0
 *     6       n     payload
 *     6+n     32    tag (only with flag 0): HMAC-SHA256(cluster key, bytes 0 .. 6+n)
 *
 * The tag covers the header too, so neither the length nor the flags can be altered. It is
 * compared in constant time (`timingSafeEqual`). It carries no nonce: a replayed frame is
 * accepted, which is harmless for gossip (CRDT state is idempotent to merge).
 *
 * `FrameDecoder` is incremental: feed it bytes split at any boundary and it yields whole
 * payloads in order. It never throws on input. The first bad frame (too large, bad version
 * or flags, missing or wrong tag) is reported as a typed error and the decoder refuses
 * everything after it: a byte stream cannot be resynchronised once a frame is bad, so the
 * connection must be closed.
 */
import { createHmac, timingSafeEqual } from "node:crypto"
import { Data } from "effect"

export const FRAME_VERSION = 1
/** length (4) + version (1) + flags (1) */
export const HEADER_BYTES = 6
export const TAG_BYTES = 32
/** Default bound of the length field (everything after it): 4 MiB. */
export const DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024

const FLAG_TAG = 0x01

/** A cluster key: the secret string of `--cluster-key`, or raw bytes. */
export type FrameKey = string | Uint8Array

/** The length field is larger than the decoder's maximum. */
export class FrameTooLarge extends Data.TaggedError("FrameTooLarge")<{
  readonly size: number
  readonly max: number
}> {
  override get message(): string {
    return `frame of ${this.size} bytes exceeds the maximum of ${this.max}`
  }
}

/** The tag is missing (a key is set), wrong, or present while no key is set. */
export class FrameUnauthenticated extends Data.TaggedError("FrameUnauthenticated")<{
  readonly reason: "MissingTag" | "WrongTag" | "UnexpectedTag"
}> {
  override get message(): string {
    switch (this.reason) {
      case "MissingTag":
        return "frame has no authentication tag but a cluster key is set"
      case "WrongTag":
        return "frame authentication tag does not match the cluster key"
      case "UnexpectedTag":
        return "frame is authenticated but no cluster key is set here"
    }
  }
}

/** The version byte is not one this build speaks. */
export class FrameVersionUnsupported extends Data.TaggedError("FrameVersionUnsupported")<{
  readonly version: number
}> {
  override get message(): string {
    return `frame version ${this.version} is not supported (this build speaks ${FRAME_VERSION})`
  }
}

/** The header is inconsistent: unknown flags, or a length too short for what it says. */
export class FrameMalformed extends Data.TaggedError("FrameMalformed")<{
  readonly reason: "UnknownFlags" | "TooShort"
  readonly detail: string
}> {
  override get message(): string {
    return `malformed frame: ${this.detail}`
  }
}

export type FrameError = FrameTooLarge | FrameUnauthenticated | FrameVersionUnsupported | FrameMalformed

export interface FrameOptions {
  /** bound of the length field (default 4 MiB) */
  readonly maxFrameBytes?: number
  /** cluster key: frames are tagged, and untagged or wrongly tagged frames rejected */
  readonly key?: FrameKey | undefined
  /**
   * Reassemble frames that span several chunks in one reused buffer instead of a fresh one
   * per frame (default false). A payload is then valid only until the next `push`: decode
   * or copy it first. Allocating a buffer per large frame costs more than the copy itself
   * (page faults on fresh memory), so a reader that decodes at once should set this.
   */
  readonly reuseBuffer?: boolean
}

/** Largest reassembly buffer a decoder keeps between frames (larger ones are not reused). */
const SCRATCH_KEEP_BYTES = 1024 * 1024

/** The size of the frame `encode` makes for a payload of `payloadBytes`. */
export const frameSize = (payloadBytes: number, key?: FrameKey): number =>
  HEADER_BYTES + payloadBytes + (key === undefined ? 0 : TAG_BYTES)

const writeHeader = (out: Uint8Array, offset: number, payloadBytes: number, tagged: boolean): void => {
  const body = 2 + payloadBytes + (tagged ? TAG_BYTES : 0)
  out[offset] = (body >>> 24) & 0xff
  out[offset + 1] = (body >>> 16) & 0xff
  out[offset + 2] = (body >>> 8) & 0xff
  out[offset + 3] = body & 0xff
  out[offset + 4] = FRAME_VERSION
  out[offset + 5] = tagged ? FLAG_TAG : 0
}

/** Writes the frame of `payload` into `out` at `offset`; returns the offset after it. */
export const encodeInto = (out: Uint8Array, offset: number, payload: Uint8Array, key?: FrameKey): number => {
  const tagged = key !== undefined
  writeHeader(out, offset, payload.length, tagged)
  out.set(payload, offset + HEADER_BYTES)
  const end = offset + HEADER_BYTES + payload.length
  if (!tagged) return end
  const tag = createHmac("sha256", key).update(out.subarray(offset, end)).digest()
  out.set(tag, end)
  return end + TAG_BYTES
}

/**
 * The frame of `payload` as the parts to write in order: header, the payload itself (not
 * copied) and, with a key, the tag. Their concatenation is `encode(payload, key)`.
 */
export const encodeParts = (payload: Uint8Array, key?: FrameKey): Array<Uint8Array> => {
  const header = Buffer.allocUnsafe(HEADER_BYTES)
  writeHeader(header, 0, payload.length, key !== undefined)
  if (key === undefined) return [header, payload]
  return [header, payload, createHmac("sha256", key).update(header).update(payload).digest()]
}

/** One frame holding `payload`, tagged when `key` is given. */
export const encode = (payload: Uint8Array, key?: FrameKey): Uint8Array => {
  const out = Buffer.allocUnsafe(frameSize(payload.length, key))
  encodeInto(out, 0, payload, key)
  return out
}

/** What one `push` produced: the whole payloads, in order, then the error if one came. */
export interface DecodeResult {
  readonly frames: Array<Uint8Array>
  readonly error: FrameError | undefined
}

const EMPTY: Uint8Array = new Uint8Array(0)

/**
 * Incremental decoder of one byte stream. Payloads it yields may share memory with the
 * chunks it was given; it never writes to them.
 */
export class FrameDecoder {
  readonly maxFrameBytes: number
  private readonly key: FrameKey | undefined
  /** buffered chunks from index `head` on */
  private chunks: Array<Uint8Array> = []
  private head = 0
  private buffered = 0
  /** the length field of the frame being read, once known */
  private body = -1
  private headerChecked = false
  private failure: FrameError | undefined = undefined
  private readonly reuse: boolean
  private scratch: Buffer | undefined = undefined
  /** whether a payload of the current `push` already lives in `scratch` */
  private scratchInUse = false

  constructor(options: FrameOptions = {}) {
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES
    this.key = options.key
    this.reuse = options.reuseBuffer ?? false
  }

  /** The error that stopped this decoder, if any. */
  get error(): FrameError | undefined {
    return this.failure
  }

  /** Bytes received but not yet part of a whole frame. */
  get pending(): number {
    return this.buffered
  }

  push(chunk: Uint8Array): DecodeResult {
    if (this.failure !== undefined) return { frames: [], error: this.failure }
    this.scratchInUse = false
    if (chunk.length > 0) {
      this.chunks.push(chunk)
      this.buffered += chunk.length
    }
    const frames: Array<Uint8Array> = []
    while (true) {
      if (this.body < 0) {
        if (this.buffered < 4) break
        const body = ((this.byteAt(0) << 24) | (this.byteAt(1) << 16) | (this.byteAt(2) << 8) | this.byteAt(3)) >>> 0
        if (body > this.maxFrameBytes) return this.fail(frames, new FrameTooLarge({ size: body, max: this.maxFrameBytes }))
        if (body < 2) {
          return this.fail(frames, new FrameMalformed({ reason: "TooShort", detail: `length ${body} leaves no room for a header` }))
        }
        this.body = body
        this.headerChecked = false
      }
      if (!this.headerChecked) {
        if (this.buffered < HEADER_BYTES) {
          // fail fast on a bad version before the rest of a bogus frame arrives
          if (this.buffered >= 5 && this.byteAt(4) !== FRAME_VERSION) {
            return this.fail(frames, new FrameVersionUnsupported({ version: this.byteAt(4) }))
          }
          break
        }
        const error = this.checkHeader(this.body, this.byteAt(4), this.byteAt(5))
        if (error !== undefined) return this.fail(frames, error)
        this.headerChecked = true
      }
      const size = 4 + this.body
      if (this.buffered < size) break
      const frame = this.take(size)
      this.body = -1
      const tagged = (frame[5]! & FLAG_TAG) !== 0
      if (!tagged) {
        frames.push(frame.length === HEADER_BYTES ? EMPTY : frame.subarray(HEADER_BYTES))
        continue
      }
      const end = frame.length - TAG_BYTES
      const expected = createHmac("sha256", this.key!).update(frame.subarray(0, end)).digest()
      if (!timingSafeEqual(expected, frame.subarray(end))) {
        return this.fail(frames, new FrameUnauthenticated({ reason: "WrongTag" }))
      }
      frames.push(frame.subarray(HEADER_BYTES, end))
    }
    return { frames, error: undefined }
  }

  private checkHeader(body: number, version: number, flags: number): FrameError | undefined {
    if (version !== FRAME_VERSION) return new FrameVersionUnsupported({ version })
    if ((flags & ~FLAG_TAG) !== 0) {
      return new FrameMalformed({ reason: "UnknownFlags", detail: `unknown flags 0x${flags.toString(16)}` })
    }
    const tagged = (flags & FLAG_TAG) !== 0
    if (tagged && this.key === undefined) return new FrameUnauthenticated({ reason: "UnexpectedTag" })
    if (!tagged && this.key !== undefined) return new FrameUnauthenticated({ reason: "MissingTag" })
    if (tagged && body < 2 + TAG_BYTES) {
      return new FrameMalformed({ reason: "TooShort", detail: `length ${body} leaves no room for a tag` })
    }
    return undefined
  }

  private fail(frames: Array<Uint8Array>, error: FrameError): DecodeResult {
    this.failure = error
    this.chunks = []
    this.head = 0
    this.buffered = 0
    this.scratch = undefined
    return { frames, error }
  }

  private byteAt(i: number): number {
    for (let k = this.head; k < this.chunks.length; k++) {
      const c = this.chunks[k]!
      if (i < c.length) return c[i]!
      i -= c.length
    }
    return 0
  }

  private dropFirst(): void {
    this.head++
    if (this.head === this.chunks.length) {
      this.chunks = []
      this.head = 0
    } else if (this.head >= 64 && this.head * 2 >= this.chunks.length) {
      this.chunks = this.chunks.slice(this.head)
      this.head = 0
    }
  }

  /** Where to reassemble a frame of `n` bytes: the reused buffer when allowed and free. */
  private outputFor(n: number): Uint8Array {
    if (!this.reuse || this.scratchInUse || n > SCRATCH_KEEP_BYTES) return Buffer.allocUnsafe(n)
    if (this.scratch === undefined || this.scratch.length < n) {
      this.scratch = Buffer.allocUnsafe(Math.min(SCRATCH_KEEP_BYTES, Math.max(n, 2 * (this.scratch?.length ?? 0))))
    }
    this.scratchInUse = true
    return this.scratch.subarray(0, n)
  }

  /** Removes the first `n` buffered bytes (n <= buffered), copying only across chunks. */
  private take(n: number): Uint8Array {
    this.buffered -= n
    const first = this.chunks[this.head]!
    if (first.length >= n) {
      if (first.length === n) this.dropFirst()
      else this.chunks[this.head] = first.subarray(n)
      return first.subarray(0, n)
    }
    const out = this.outputFor(n)
    let filled = 0
    while (filled < n) {
      const c = this.chunks[this.head]!
      const want = n - filled
      if (c.length <= want) {
        out.set(c, filled)
        filled += c.length
        this.dropFirst()
      } else {
        out.set(c.subarray(0, want), filled)
        filled += want
        this.chunks[this.head] = c.subarray(want)
      }
    }
    return out
  }
}
