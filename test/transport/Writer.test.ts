/**
 * The TCP transport's writer on its own (no socket): how it turns a peer's queue into
 * chunks to write. The frames in the chunks decode back to the queued payloads in order;
 * small frames share one buffer, a large payload travels uncopied as its own chunk; a
 * batch stops at `maxBatchBytes`; a message over the frame limit is dropped and counted.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, FastCheck as fc, Logger } from "effect"
import { encode as encodeFrame, FrameDecoder } from "../../src/protocol/Frame.js"
import type { HostPort } from "../../src/protocol/Message.js"
import type { Peer } from "../../src/transport/internal/OutboundPeer.js"
import type { Totals, Wire } from "../../src/transport/internal/Wire.js"
import * as Writer from "../../src/transport/internal/Writer.js"
import { dropNewest, SendQueue } from "../../src/transport/SendQueue.js"

const silent = Logger.replace(Logger.defaultLogger, Logger.none)

const bytesWire: Wire<Uint8Array> = {
  encode: (bytes) => bytes,
  decode: (bytes) => Either.right(bytes),
  retainsPayload: true,
  helloOf: () => undefined,
  ofHello: () => undefined,
  overflow: dropNewest
}

const peerWith = (payloads: ReadonlyArray<Uint8Array>): Peer<Uint8Array> => {
  const queue = new SendQueue<Uint8Array>(Math.max(1, payloads.length), dropNewest)
  for (const p of payloads) queue.offer(p)
  return {
    addr: "127.0.0.1:1" as HostPort,
    host: "127.0.0.1",
    port: 1,
    queue,
    wake: Effect.unsafeMakeLatch(false),
    status: "connected",
    since: 0,
    lastError: undefined,
    sent: 0,
    dropped: 0,
    attempt: 0,
    fiber: undefined
  }
}

const writerWith = (options: { readonly key?: string | undefined; readonly maxBatchBytes?: number; readonly maxFrameBytes?: number } = {}) => {
  const totals: Totals = { framesIn: 0, framesOut: 0, framesRejected: 0, bytesIn: 0, bytesOut: 0 }
  const writer = Writer.make(
    {
      wire: bytesWire,
      key: options.key,
      maxFrameBytes: options.maxFrameBytes ?? 1024 * 1024,
      maxBatchBytes: options.maxBatchBytes ?? 1024 * 1024,
      helloFrame: encodeFrame(new Uint8Array([1]), options.key)
    },
    totals
  )
  return { writer, totals }
}

/** The payloads of the frames in `chunks`, decoded as the receiver would. */
const decodeAll = (chunks: ReadonlyArray<Uint8Array>, key: string | undefined): Array<Uint8Array> => {
  const decoder = new FrameDecoder({ key })
  const out: Array<Uint8Array> = []
  for (const chunk of chunks) {
    const { error, frames } = decoder.push(chunk)
    expect(error).toBeUndefined()
    for (const f of frames) out.push(Uint8Array.from(f))
  }
  return out
}

const payload = (size: number, seed: number) => Uint8Array.from({ length: size }, (_, i) => (i * 31 + seed) & 0xff)

describe("Writer", () => {
  for (const key of [undefined, "cluster-secret"]) {
    it(`small frames share one chunk, a large payload is its own chunk, uncopied (key: ${key !== undefined})`, () => {
      const { totals, writer } = writerWith({ key })
      const large = payload(Writer.COPY_BELOW_BYTES, 7)
      const queued = [payload(10, 1), payload(20, 2), large, payload(30, 3)]
      const peer = peerWith(queued)
      const batch = Effect.runSync(writer.nextBatch(peer).pipe(Effect.provide(silent)))!
      expect(batch.count).toBe(4)
      // [header + small + small + header] [large] [tag? + header + small + tag?]
      expect(batch.chunks).toHaveLength(3)
      expect(batch.chunks[1]).toBe(large)
      expect(batch.bytes).toBe(batch.chunks.reduce((n, c) => n + c.length, 0))
      expect(decodeAll(batch.chunks, key)).toEqual(queued)
      expect(peer.queue.length).toBe(0)
      // counted when written, not when framed
      expect(totals.framesOut).toBe(0)
    })
  }

  it("a batch stops once it holds maxBatchBytes; the rest waits for the next one", () =>
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 3000 }), { minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 8000 }), (sizes, maxBatchBytes) => {
        const { writer } = writerWith({ maxBatchBytes })
        const queued = sizes.map((size, i) => payload(size, i))
        const peer = peerWith(queued)
        const received: Array<Uint8Array> = []
        for (let round = 0; round <= queued.length; round++) {
          const batch = Effect.runSync(writer.nextBatch(peer).pipe(Effect.provide(silent)))
          if (batch === undefined) break
          const frames = decodeAll(batch.chunks, undefined)
          // under the bound before its last frame: at most one frame past it
          const last = frames.at(-1)!
          expect(batch.bytes - (last.length + 6)).toBeLessThan(maxBatchBytes)
          received.push(...frames)
        }
        expect(received).toEqual(queued)
      }),
      { numRuns: 50 }
    ))

  it("a message over the frame limit is dropped and counted; the others are sent", () => {
    const { writer } = writerWith({ maxFrameBytes: 100 })
    const peer = peerWith([payload(10, 1), payload(200, 2), payload(20, 3)])
    const batch = Effect.runSync(writer.nextBatch(peer).pipe(Effect.provide(silent)))!
    expect(decodeAll(batch.chunks, undefined)).toEqual([payload(10, 1), payload(20, 3)])
    expect(peer.dropped).toBe(1)
  })
})
