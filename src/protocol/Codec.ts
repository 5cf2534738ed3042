/**
 * Binary codec for wire messages: msgpack (msgpackr) of the Schema-encoded message, and
 * Schema validation of whatever comes back. Decoding never throws: bytes that are not
 * msgpack, or msgpack that is not a valid message, are a typed `DecodeError`.
 *
 * Push is the hot message (every eager delta, every full state: 10,000 counters are
 * 10,000 entries), and generic Schema validation allocates per entry each way, which makes
 * it most of the cost of a large Push.
 * It takes a dedicated path: `validateEntries` accepts and rejects exactly what the
 * `Entries` schema does, without allocating per entry, and the two other fields are checked
 * by hand. Anything the fast path does not accept goes through the Message schema, which
 * then gives the detailed error. Property tests hold both paths to the same verdicts.
 */
import { Packr, RESET_BUFFER_MODE, REUSE_BUFFER_MODE } from "msgpackr"
import { Data, Either, ParseResult, Schema } from "effect"
import { validateEntries } from "../crdt/Entry.js"
import { Covers, Message, Push, SyncPart } from "./Message.js"

export class DecodeError extends Data.TaggedError("DecodeError")<{
  readonly reason: "NotMsgpack" | "InvalidMessage"
  readonly message: string
}> {}

const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true, int64AsType: "number" })

const encodeMessage = Schema.encodeSync(Message)
const decodeMessage = Schema.decodeUnknownEither(Message)
const encodeSyncPart = Schema.encodeSync(SyncPart)
const decodeSyncPart = Schema.decodeUnknownEither(SyncPart)
const encodeCovers = Schema.encodeSync(Covers)
const decodeCovers = Schema.decodeUnknownEither(Covers)

/** `Push.fields.digest`: a string of at most 128 characters. */
const isDigest = (u: unknown): u is string => typeof u === "string" && u.length <= 128

/**
 * The plain (Schema-encoded) form of a message, as it goes into msgpack. Throws, like
 * `Schema.encodeSync`, only for a message built with validation disabled and invalid data.
 */
export const toPlain = (message: Message): unknown => {
  if (message._tag !== "Push") return encodeMessage(message)
  const entries = validateEntries(message.entries)
  if (Either.isRight(entries) && typeof message.full === "boolean" && isDigest(message.digest)) {
    const plain: Record<string, unknown> = { _tag: "Push", full: message.full, entries: entries.right, digest: message.digest }
    if (message.sync !== undefined) plain.sync = encodeSyncPart(message.sync)
    if (message.covers !== undefined) plain.covers = encodeCovers(message.covers)
    return plain
  }
  return encodeMessage(message)
}

/**
 * Above this many entries a Push is packed into msgpackr's reused buffer and copied out:
 * msgpackr otherwise allocates a fresh buffer of the previous frame's size per call, which
 * costs more than copying out of a reused buffer, and for large frames far more.
 */
const LARGE_PUSH_ENTRIES = 256

/** The msgpack bytes of a message; the result owns its memory (no shared buffer). */
export const encode = (message: Message): Uint8Array => {
  const plain = toPlain(message)
  if (message._tag === "Push" && message.entries.length > LARGE_PUSH_ENTRIES) {
    const b = packr.pack(plain, REUSE_BUFFER_MODE | RESET_BUFFER_MODE) as Buffer & {
      readonly start: number
      readonly end: number
    }
    return Uint8Array.prototype.slice.call(b, b.start, b.end)
  }
  return packr.pack(plain)
}

const invalid = (message: string) => new DecodeError({ reason: "InvalidMessage", message })

interface PlainPush {
  readonly _tag: "Push"
  readonly full: unknown
  readonly entries: unknown
  readonly digest: unknown
  readonly sync?: unknown
  readonly covers?: unknown
}

const isPlainPush = (raw: unknown): raw is PlainPush =>
  typeof raw === "object" && raw !== null && (raw as { _tag?: unknown })._tag === "Push"

/** Validates a plain value (what msgpack or JSON decoding produced) as a message. */
export const fromPlain = (raw: unknown): Either.Either<Message, DecodeError> => {
  if (isPlainPush(raw) && typeof raw.full === "boolean" && isDigest(raw.digest)) {
    const entries = validateEntries(raw.entries)
    const sync = raw.sync === undefined ? Either.right(undefined) : decodeSyncPart(raw.sync)
    const covers = raw.covers === undefined ? Either.right(undefined) : decodeCovers(raw.covers)
    if (Either.isRight(entries) && Either.isRight(sync) && Either.isRight(covers)) {
      return Either.right(
        new Push({ full: raw.full, entries: entries.right, digest: raw.digest, sync: sync.right, covers: covers.right }, true)
      )
    }
    if (Either.isLeft(entries) && entries.left.index >= 0) return Either.left(invalid(`Push: ${entries.left.message}`))
  }
  return Either.mapLeft(
    decodeMessage(raw, { onExcessProperty: "ignore" }),
    (e) => invalid(ParseResult.TreeFormatter.formatErrorSync(e))
  )
}

/** Decodes and validates one message; never throws. */
export const decode = (bytes: Uint8Array): Either.Either<Message, DecodeError> => {
  let raw: unknown
  try {
    raw = packr.unpack(bytes)
  } catch (e) {
    return Either.left(
      new DecodeError({ reason: "NotMsgpack", message: e instanceof Error ? e.message : String(e) })
    )
  }
  return fromPlain(raw)
}
