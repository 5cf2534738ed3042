/**
 * How the TCP transport's payloads become frame payloads and back (`Wire`), and what the
 * listener delivers (`Received`). The gossip transport uses `messageWire`; the benchmark
 * runs the same machinery over raw bytes to measure it apart from the message codec.
 */
import type { Either } from "effect"
import * as Codec from "../../protocol/Codec.js"
import type { Hello, Message } from "../../protocol/Message.js"
import type { OverflowPolicy } from "../SendQueue.js"
import { gossipOverflow } from "../SendQueue.js"

/** A message received from a peer, with the identity it announced in its Hello. */
export interface Received<M> {
  readonly from: Hello
  readonly message: M
}

/**
 * How payloads of type `M` become frame payloads and back. The handshake Hello always
 * travels as a gossip `Message` (Codec.ts); every later frame goes through the wire.
 */
export interface Wire<M> {
  /** bytes of one message; the transport may hold them until written (never mutates them) */
  readonly encode: (message: M) => Uint8Array
  /** never throws: a Left closes the connection as "undecodable" */
  readonly decode: (payload: Uint8Array) => Either.Either<M, { readonly message: string }>
  /**
   * Whether a decoded message may still refer to the payload bytes. When false, payloads
   * are reassembled in one reused buffer per connection (see `FrameOptions.reuseBuffer`).
   */
  readonly retainsPayload: boolean
  /** the Hello a message is, if it is one (a later Hello updates the sender's identity) */
  readonly helloOf: (message: M) => Hello | undefined
  /** the handshake Hello as a message for `inbound`, or undefined not to deliver it */
  readonly ofHello: (hello: Hello) => M | undefined
  /** what a full send queue does with one more message */
  readonly overflow: OverflowPolicy<M>
}

/** Gossip messages: the `Codec`, the gossip overflow policy, Hellos delivered. */
export const messageWire: Wire<Message> = {
  encode: Codec.encode,
  decode: Codec.decode,
  // msgpack decoding copies everything out (strings, numbers, arrays; no binary fields)
  retainsPayload: false,
  helloOf: (message) => (message._tag === "Hello" ? message : undefined),
  ofHello: (hello) => hello,
  overflow: gossipOverflow
}

/** Frame and byte counts of the whole transport, kept by the listener and the writer. */
export interface Totals {
  framesIn: number
  framesOut: number
  framesRejected: number
  bytesIn: number
  bytesOut: number
}

export const describe = (e: unknown): string => (e instanceof Error ? e.message : String(e))
