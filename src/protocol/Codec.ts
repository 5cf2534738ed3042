/**
 * Binary codec for wire messages: msgpack (msgpackr) of the Schema-encoded message, and
 * Schema validation of whatever comes back. Decoding never throws: bytes that are not
 * msgpack, or msgpack that is not a valid message, are a typed `DecodeError`.
 */
import { Packr } from "msgpackr"
import { Data, Either, ParseResult, Schema } from "effect"
import { Message } from "./Message.js"

export class DecodeError extends Data.TaggedError("DecodeError")<{
  readonly reason: "NotMsgpack" | "InvalidMessage"
  readonly message: string
}> {}

const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true, int64AsType: "number" })

const encodeMessage = Schema.encodeSync(Message)
const decodeMessage = Schema.decodeUnknownEither(Message)

export const encode = (message: Message): Uint8Array => packr.pack(encodeMessage(message))

export const decode = (bytes: Uint8Array): Either.Either<Message, DecodeError> => {
  let raw: unknown
  try {
    raw = packr.unpack(bytes)
  } catch (e) {
    return Either.left(
      new DecodeError({ reason: "NotMsgpack", message: e instanceof Error ? e.message : String(e) })
    )
  }
  return Either.mapLeft(
    decodeMessage(raw, { onExcessProperty: "ignore" }),
    (e) => new DecodeError({ reason: "InvalidMessage", message: ParseResult.TreeFormatter.formatErrorSync(e) })
  )
}
