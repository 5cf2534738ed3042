import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import type { FrameError, FrameKey } from "../../src/protocol/Frame.js"
import {
  DEFAULT_MAX_FRAME_BYTES,
  encode,
  encodeParts,
  FrameDecoder,
  frameSize,
  HEADER_BYTES,
  TAG_BYTES
} from "../../src/protocol/Frame.js"
import { split } from "../support/chunks.js"

const RUNS = { numRuns: 1000 }

const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => Buffer.concat(parts)

/** Cuts `bytes` at the given positions (any order, duplicates allowed). */
const feed = (decoder: FrameDecoder, pieces: ReadonlyArray<Uint8Array>) => {
  const frames: Array<Uint8Array> = []
  let error: FrameError | undefined
  for (const piece of pieces) {
    const r = decoder.push(piece)
    frames.push(...r.frames.map((f) => Uint8Array.from(f)))
    error ??= r.error
  }
  return { frames, error }
}

const payloads = fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 12 })
const cuts = fc.array(fc.nat(), { maxLength: 40 })
const optionalKey: fc.Arbitrary<FrameKey | undefined> = fc.option(
  fc.oneof(fc.string({ minLength: 1, maxLength: 40 }), fc.uint8Array({ minLength: 1, maxLength: 64 })),
  { nil: undefined }
)

describe("Frame", () => {
  it("round-trips payloads split at any boundary (fresh or reused reassembly buffer)", () => {
    fc.assert(
      fc.property(payloads, cuts, optionalKey, fc.boolean(), (sent, cutAt, key, reuseBuffer) => {
        const stream = concat(sent.map((p) => encode(p, key)))
        // feed copies each push's payloads only after the push returned all of them
        const { frames, error } = feed(new FrameDecoder({ key, reuseBuffer }), split(stream, cutAt))
        expect(error).toBeUndefined()
        expect(frames).toEqual(sent.map((p) => Uint8Array.from(p)))
      }),
      RUNS
    )
  })

  it("encodes to frameSize bytes with the length field covering the rest", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), optionalKey, (p, key) => {
        const f = encode(p, key)
        expect(f.length).toBe(frameSize(p.length, key))
        expect(Buffer.from(f).readUInt32BE(0)).toBe(f.length - 4)
        expect(f[4]).toBe(1)
      }),
      RUNS
    )
  })

  it("encodeParts concatenates to encode, without copying the payload", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), optionalKey, (p, key) => {
        const parts = encodeParts(p, key)
        expect(parts[1]).toBe(p)
        expect(Uint8Array.from(concat(parts))).toEqual(Uint8Array.from(encode(p, key)))
      }),
      RUNS
    )
  })

  it("with a reused buffer, payloads stay valid until the next push", () => {
    const decoder = new FrameDecoder({ reuseBuffer: true })
    const a = encode(new Uint8Array(100).fill(1))
    const b = encode(new Uint8Array(100).fill(2))
    const first = decoder.push(a.subarray(0, 50)).frames
    expect(first).toEqual([])
    const second = decoder.push(Buffer.concat([a.subarray(50), b.subarray(0, 60)]))
    expect(second.frames).toHaveLength(1)
    expect(second.frames[0]!.every((x) => x === 1)).toBe(true)
    const third = decoder.push(b.subarray(60))
    expect(third.frames).toHaveLength(1)
    expect(third.frames[0]!.every((x) => x === 2)).toBe(true)
  })

  it("one byte at a time", () => {
    const sent = [new Uint8Array([1, 2, 3]), new Uint8Array(0), new Uint8Array(1000).fill(7)]
    const stream = concat(sent.map((p) => encode(p, "k")))
    const pieces = Array.from(stream, (b) => new Uint8Array([b]))
    const { frames, error } = feed(new FrameDecoder({ key: "k" }), pieces)
    expect(error).toBeUndefined()
    expect(frames).toEqual(sent)
  })

  it("random bytes never throw, and decode the same however they are split", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), cuts, optionalKey, (bytes, cutAt, key) => {
        const whole = feed(new FrameDecoder({ key, maxFrameBytes: 512 }), [bytes])
        const pieces = feed(new FrameDecoder({ key, maxFrameBytes: 512 }), split(bytes, cutAt))
        expect(pieces).toEqual(whole)
        // with a key, noise never passes for a frame
        if (key !== undefined) expect(whole.frames).toEqual([])
      }),
      RUNS
    )
  })

  it("random bytes after valid frames: the valid frames come out, never a forged one", () => {
    fc.assert(
      fc.property(payloads, fc.uint8Array({ minLength: 1, maxLength: 200 }), cuts, fc.string({ minLength: 1 }), (sent, noise, cutAt, key) => {
        const stream = concat([...sent.map((p) => encode(p, key)), noise])
        const { frames } = feed(new FrameDecoder({ key }), split(stream, cutAt))
        expect(frames).toEqual(sent.map((p) => Uint8Array.from(p)))
      }),
      RUNS
    )
  })

  it("a truncated stream yields exactly the whole frames and waits for the rest", () => {
    fc.assert(
      fc.property(payloads, fc.nat(), cuts, optionalKey, fc.boolean(), (sent, cutRaw, cutAt, key, reuseBuffer) => {
        const encoded = sent.map((p) => encode(p, key))
        const stream = concat(encoded)
        const keep = cutRaw % (stream.length + 1)
        const decoder = new FrameDecoder({ key, reuseBuffer })
        const { frames, error } = feed(decoder, split(stream.subarray(0, keep), cutAt))
        expect(error).toBeUndefined()
        let whole = 0
        let end = 0
        while (whole < encoded.length && end + encoded[whole]!.length <= keep) end += encoded[whole++]!.length
        expect(frames).toEqual(sent.slice(0, whole).map((p) => Uint8Array.from(p)))
        expect(decoder.pending).toBe(keep - end)
        // the rest completes it
        const rest = feed(decoder, [stream.subarray(keep)])
        expect([...frames, ...rest.frames]).toEqual(sent.map((p) => Uint8Array.from(p)))
      }),
      RUNS
    )
  })

  it("a flipped byte in an authenticated stream never yields a frame that was not sent", () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 100 }), { minLength: 1, maxLength: 8 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        cuts,
        (sent, at, xor, cutAt) => {
          const stream = Uint8Array.from(concat(sent.map((p) => encode(p, "secret"))))
          const i = at % stream.length
          stream[i] = stream[i]! ^ xor
          const { frames, error } = feed(new FrameDecoder({ key: "secret", maxFrameBytes: 4096 }), split(stream, cutAt))
          frames.forEach((f, k) => expect(f).toEqual(Uint8Array.from(sent[k]!)))
          // the damaged frame and everything after it is lost (an error, or waiting for bytes)
          expect(frames.length).toBeLessThan(sent.length)
          if (error !== undefined) expect(error._tag).toMatch(/^Frame/)
        }
      ),
      RUNS
    )
  })

  it("rejects a wrong key, a missing tag and an unexpected tag", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.string({ minLength: 1 }), fc.string({ minLength: 1 }), (p, k1, k2) => {
        fc.pre(k1 !== k2)
        const wrong = new FrameDecoder({ key: k2 }).push(encode(p, k1))
        expect(wrong.frames).toEqual([])
        expect(wrong.error).toMatchObject({ _tag: "FrameUnauthenticated", reason: "WrongTag" })
      }),
      RUNS
    )
    const missing = new FrameDecoder({ key: "k" }).push(encode(new Uint8Array([1])))
    expect(missing.error).toMatchObject({ _tag: "FrameUnauthenticated", reason: "MissingTag" })
    const unexpected = new FrameDecoder().push(encode(new Uint8Array([1]), "k"))
    expect(unexpected.error).toMatchObject({ _tag: "FrameUnauthenticated", reason: "UnexpectedTag" })
  })

  it("a frame over the maximum is FrameTooLarge and the decoder stays unusable", () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 100 })
    const ok = encode(new Uint8Array(98))
    expect(decoder.push(ok).frames).toHaveLength(1)
    const big = encode(new Uint8Array(99))
    const r = decoder.push(concat([encode(new Uint8Array([5])), big.subarray(0, 4)]))
    expect(r.frames.map((f) => Uint8Array.from(f))).toEqual([new Uint8Array([5])])
    expect(r.error).toMatchObject({ _tag: "FrameTooLarge", size: 101, max: 100 })
    const after = decoder.push(ok)
    expect(after).toEqual({ frames: [], error: r.error })
    expect(decoder.error).toBe(r.error)
  })

  it("the default maximum is 4 MiB, checked on the length prefix alone", () => {
    const decoder = new FrameDecoder()
    expect(decoder.maxFrameBytes).toBe(DEFAULT_MAX_FRAME_BYTES)
    const prefix = Buffer.alloc(4)
    prefix.writeUInt32BE(DEFAULT_MAX_FRAME_BYTES + 1)
    expect(decoder.push(prefix).error?._tag).toBe("FrameTooLarge")
    const atMax = new FrameDecoder().push(encode(new Uint8Array(DEFAULT_MAX_FRAME_BYTES - 2)))
    expect(atMax.error).toBeUndefined()
    expect(atMax.frames[0]?.length).toBe(DEFAULT_MAX_FRAME_BYTES - 2)
  })

  it("a bad version, unknown flags or a short length are typed errors", () => {
    const badVersion = Buffer.from(encode(new Uint8Array([1, 2])))
    badVersion[4] = 9
    // reported as soon as the version byte is in
    expect(new FrameDecoder().push(badVersion.subarray(0, 5)).error).toMatchObject({
      _tag: "FrameVersionUnsupported",
      version: 9
    })
    const badFlags = Buffer.from(encode(new Uint8Array([1, 2])))
    badFlags[5] = 0x80
    expect(new FrameDecoder().push(badFlags).error).toMatchObject({ _tag: "FrameMalformed", reason: "UnknownFlags" })
    expect(new FrameDecoder().push(new Uint8Array([0, 0, 0, 1, 1])).error).toMatchObject({
      _tag: "FrameMalformed",
      reason: "TooShort"
    })
    const shortTagged = new Uint8Array([0, 0, 0, 2 + TAG_BYTES - 1, 1, 1])
    expect(new FrameDecoder({ key: "k" }).push(shortTagged).error).toMatchObject({ reason: "TooShort" })
    expect(HEADER_BYTES).toBe(6)
  })

  it("a tag covers the header: changing the length or flags is detected", () => {
    const f = Buffer.from(encode(new Uint8Array([1, 2, 3, 4]), "k"))
    const shorter = Buffer.concat([f.subarray(0, 3), Buffer.from([f[3]! - 1]), f.subarray(4, f.length - 1)])
    expect(new FrameDecoder({ key: "k" }).push(shorter).error).toMatchObject({ reason: "WrongTag" })
  })
})
