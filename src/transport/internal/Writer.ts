/**
 * The TCP transport's writer: frames a peer's queued messages and writes them onto its
 * connection in batches of up to `maxBatchBytes` in one go. Small frames are copied
 * together into one buffer; payloads of `COPY_BELOW_BYTES` or more are passed through
 * uncopied (cork + writev), so a payload is copied at most once on its way out. When the
 * socket is full it waits for `drain`. Each message object is encoded once however many
 * peers it goes to (the gossip loop sends one Push to several peers).
 *
 * Plain loops over the queue rather than a Stream: this runs once per batch per peer on
 * the gossip path, and a step per frame would cost more than the framing itself.
 */
import { Effect } from "effect"
import { encodeParts, frameSize } from "../../protocol/Frame.js"
import * as Metrics from "../TransportMetrics.js"
import type { Outbound, Peer } from "./OutboundPeer.js"
import { describe, type Totals, type Wire } from "./Wire.js"

/** Payloads of this size or more are written as their own chunk (writev), not copied. */
export const COPY_BELOW_BYTES = 16 * 1024

export interface WriterConfig<M> {
  readonly wire: Wire<M>
  readonly key: string | undefined
  readonly maxFrameBytes: number
  readonly maxBatchBytes: number
  /** our Hello, framed: the first frame of every outbound connection */
  readonly helloFrame: Uint8Array
}

/** Frames ready to write: `chunks` hold `count` frames of `bytes` bytes in all. */
export interface Batch {
  readonly count: number
  readonly bytes: number
  readonly chunks: Array<Uint8Array>
}

export interface Writer<M> {
  /**
   * Takes queued messages up to `maxBatchBytes` and frames them as chunks to write;
   * undefined when nothing could be taken (a message that cannot be encoded or is over
   * the frame limit is dropped, counted on the peer and logged).
   */
  readonly nextBatch: (peer: Peer<M>) => Effect.Effect<Batch | undefined>
  /** Writes the Hello, then queued messages until the connection ends; returns why it did. */
  readonly pump: (peer: Peer<M>, conn: Outbound) => Effect.Effect<string>
}

/** Waits until `conn` can take more bytes (or is closed). */
const waitWritable = (conn: Outbound) =>
  Effect.async<void>((resume) => {
    if (conn.closed) return resume(Effect.void)
    const done = () => {
      cleanup()
      resume(Effect.void)
    }
    const cleanup = () => {
      conn.socket.off("drain", done)
      conn.socket.off("close", done)
    }
    conn.socket.once("drain", done)
    conn.socket.once("close", done)
    return Effect.sync(cleanup)
  })

export const make = <M>(config: WriterConfig<M>, totals: Totals): Writer<M> => {
  const { helloFrame, key, maxBatchBytes, maxFrameBytes, wire } = config
  /** Payload bytes per message object: messages are immutable, so each is encoded once. */
  const encoded = new WeakMap<object, Uint8Array>()
  const encodeOnce = (message: M): Uint8Array => {
    if (typeof message !== "object" || message === null) return wire.encode(message)
    const hit = encoded.get(message)
    if (hit !== undefined) return hit
    const bytes = wire.encode(message)
    encoded.set(message, bytes)
    return bytes
  }

  const nextBatch = (peer: Peer<M>) =>
    Effect.gen(function*() {
      const chunks: Array<Uint8Array> = []
      let small: Array<Uint8Array> = []
      let smallBytes = 0
      const flushSmall = () => {
        if (small.length === 0) return
        chunks.push(small.length === 1 ? small[0]! : Buffer.concat(small, smallBytes))
        small = []
        smallBytes = 0
      }
      let bytes = 0
      let count = 0
      while (bytes < maxBatchBytes) {
        const next = peer.queue.shift()
        if (next === undefined) break
        let payload: Uint8Array
        try {
          payload = encodeOnce(next.message)
        } catch (e) {
          peer.dropped++
          yield* Effect.logError(`gossip: cannot encode a message for ${peer.addr}: ${describe(e)}`)
          continue
        }
        const size = frameSize(payload.length, key)
        if (size - 4 > maxFrameBytes) {
          peer.dropped++
          yield* Effect.logWarning(
            `gossip: dropped a message of ${payload.length} bytes for ${peer.addr}: over the frame limit of ${maxFrameBytes}`
          )
          continue
        }
        const [header, body, tag] = encodeParts(payload, key)
        small.push(header!)
        smallBytes += header!.length
        if (payload.length >= COPY_BELOW_BYTES) {
          flushSmall()
          chunks.push(body!)
        } else {
          small.push(body!)
          smallBytes += body!.length
        }
        if (tag !== undefined) {
          small.push(tag)
          smallBytes += tag.length
        }
        bytes += size
        count++
      }
      flushSmall()
      return count === 0 ? undefined : { count, bytes, chunks }
    })

  const write = (peer: Peer<M>, conn: Outbound, batch: Batch) => {
    let ok = true
    if (batch.chunks.length === 1) {
      ok = conn.socket.write(batch.chunks[0]!)
    } else {
      conn.socket.cork()
      for (const chunk of batch.chunks) ok = conn.socket.write(chunk)
      conn.socket.uncork()
    }
    peer.sent += batch.count
    totals.framesOut += batch.count
    totals.bytesOut += batch.bytes
    Metrics.framesOutTotal.unsafeUpdate(batch.count, [])
    Metrics.bytesOutTotal.unsafeUpdate(batch.bytes, [])
    return ok
  }

  const pump = (peer: Peer<M>, conn: Outbound) =>
    Effect.gen(function*() {
      if (!conn.socket.write(helloFrame)) yield* waitWritable(conn)
      totals.framesOut++
      totals.bytesOut += helloFrame.length
      Metrics.framesOutTotal.unsafeUpdate(1, [])
      Metrics.bytesOutTotal.unsafeUpdate(helloFrame.length, [])
      while (!conn.closed) {
        if (peer.queue.length === 0) {
          peer.wake.unsafeClose()
          yield* peer.wake.await
          continue
        }
        const batch = yield* nextBatch(peer)
        if (batch === undefined) continue
        if (!write(peer, conn, batch)) yield* waitWritable(conn)
      }
      return conn.reason ?? "connection closed"
    })

  return { nextBatch, pump }
}
