import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, Either, FastCheck as fc, Schema } from "effect"
import { Packr } from "msgpackr"
import type { CounterName } from "../../src/crdt/CounterName.js"
import type { Entry } from "../../src/crdt/Entry.js"
import type { ReplicaId } from "../../src/crdt/ReplicaId.js"
import * as Codec from "../../src/protocol/Codec.js"
import {
  DigestAck,
  DigestPull,
  Hello,
  makePush,
  Message,
  PeerInfo,
  PeerList,
  Ping,
  PingAck,
  Push
} from "../../src/protocol/Message.js"

const RUNS = { fastCheck: { numRuns: 1000 } }

const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true, int64AsType: "number" })
const isMessage = Schema.is(Message)
const encodePlain = Schema.encodeSync(Message)
const decodeBySchema = Schema.decodeUnknownEither(Message)

/** Decoding must never throw, and whatever it accepts must be a valid message. */
const expectSafeDecode = (bytes: Uint8Array) => {
  const out = Codec.decode(bytes)
  if (Either.isLeft(out)) {
    expect(out.left._tag).toBe("DecodeError")
    expect(["NotMsgpack", "InvalidMessage"]).toContain(out.left.reason)
  } else {
    expect(isMessage(out.right)).toBe(true)
    expect(Codec.decode(Codec.encode(out.right))).toEqual(out)
  }
  return out
}

const messageArb = Arbitrary.make(Message)

describe("Codec round-trip", () => {
  const classes = [Hello, DigestPull, DigestAck, Push, PeerList, Ping, PingAck] as const
  for (const cls of classes) {
    it.prop(`${cls._tag}: decode(encode(m)) equals m`, [cls], ([m]) => {
      const back = Codec.decode(Codec.encode(m))
      expect(back).toEqual(Either.right(m))
      expect(Either.getOrThrow(back)).toBeInstanceOf(cls)
    }, RUNS)
  }

  it.prop("any message: the plain form is what Schema encodes", [messageArb], ([m]) => {
    expect(Codec.toPlain(m)).toEqual(encodePlain(m))
  }, RUNS)

  it("a 10,000-entry Push round-trips, and a later encode never overwrites an earlier frame", () => {
    const entries = (k: number): Array<Entry> =>
      Array.from({ length: 10_000 }, (_, i): Entry => [`c-${i}` as CounterName, `r${i % 5}` as ReplicaId, i * k, i])
    const a = makePush({ full: true, entries: entries(3), digest: "a".repeat(64) })
    const b = makePush({ full: false, entries: entries(7), digest: "b".repeat(64) })
    const bytesA = Codec.encode(a)
    const copyA = Buffer.from(Uint8Array.from(bytesA))
    const bytesB = Codec.encode(b)
    Codec.encode(new Ping({ seq: 1 }))
    Codec.encode(a)
    expect(Buffer.compare(bytesA, copyA)).toBe(0)
    expect(bytesA.buffer.byteLength).toBe(bytesA.byteLength) // owns its memory
    expect(Codec.decode(bytesA)).toEqual(Either.right(a))
    expect(Codec.decode(bytesB)).toEqual(Either.right(b))
  })
})

describe("Codec decode of bad input", () => {
  it.prop("random bytes never throw; the result is a DecodeError or a valid message", [fc.uint8Array({ maxLength: 256 })], ([bytes]) => {
    expectSafeDecode(bytes)
  }, RUNS)

  it.prop(
    "msgpack of random values never throws and yields only valid messages",
    [fc.anything({ maxDepth: 3, withNullPrototype: true, withObjectString: true })],
    ([value]) => {
      let bytes: Uint8Array
      try {
        bytes = packr.pack(value)
      } catch {
        return // not packable: not our concern
      }
      expectSafeDecode(bytes)
    },
    RUNS
  )

  const mutation = fc.oneof(
    fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
    fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant("delete" as const), at: fc.nat() })
  )
  const mutate = (bytes: Uint8Array, ms: ReadonlyArray<{ readonly kind: string; readonly at: number; readonly value?: number }>): Uint8Array => {
    let b = Array.from(bytes)
    for (const m of ms) {
      const at = b.length === 0 ? 0 : m.at % b.length
      if (m.kind === "flip") b[at] = m.value!
      else if (m.kind === "truncate") b = b.slice(0, at)
      else if (m.kind === "insert") b.splice(at, 0, m.value!)
      else b.splice(at, 1)
    }
    return Uint8Array.from(b)
  }

  it.prop(
    "mutated valid encodings never throw; the result is a DecodeError or a valid message",
    [messageArb, fc.array(mutation, { minLength: 1, maxLength: 4 })],
    ([m, ms]) => {
      expectSafeDecode(mutate(Codec.encode(m), ms))
      // msgpackr keeps module state between calls: a failure must not spoil the next decode
      expect(Codec.decode(Codec.encode(m))).toEqual(Either.right(m))
    },
    RUNS
  )

  it("says what is wrong: not msgpack, trailing bytes, wrong shape", () => {
    const notMsgpack = Codec.decode(Uint8Array.from([0xa5, 0x61])) // a 5-byte string with 1 byte
    expect(Either.isLeft(notMsgpack) && notMsgpack.left.reason).toBe("NotMsgpack")
    const empty = Codec.decode(new Uint8Array(0))
    expect(Either.isLeft(empty) && empty.left.reason).toBe("NotMsgpack")
    const valid = Codec.encode(new Ping({ seq: 3 }))
    const trailing = Codec.decode(Uint8Array.from([...valid, 0x01]))
    expect(Either.isLeft(trailing) && trailing.left.reason).toBe("NotMsgpack")
    const shape = Codec.decode(packr.pack({ _tag: "Ping", seq: -1 }))
    expect(Either.isLeft(shape) && shape.left.reason).toBe("InvalidMessage")
    const unknownTag = Codec.decode(packr.pack({ _tag: "Shutdown" }))
    expect(Either.isLeft(unknownTag) && unknownTag.left.reason).toBe("InvalidMessage")
    const unsafe = Codec.decode(packr.pack({ _tag: "Ping", seq: 2 ** 64 }))
    expect(Either.isLeft(unsafe)).toBe(true)
  })
})

describe("Codec Push fast path", () => {
  /** Plain Push-shaped values that are often, but not always, valid. */
  const name = fc.oneof(
    fc.constantFrom("default", "__proto__", "constructor", "x".repeat(128), "x".repeat(129), "", "a b", "é"),
    fc.stringMatching(/^[A-Za-z0-9._:-]{1,130}$/)
  )
  const num = fc.oneof(
    fc.nat(),
    fc.constantFrom(-1, 0.5, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 1, Number.NaN, Infinity)
  )
  const plainEntry = fc.oneof(
    { weight: 8, arbitrary: fc.tuple(name, fc.constantFrom("r1", "r2", "Jm3w0zq9T2u8b1XkPq7VfA", "bad id", ""), num, num) },
    { weight: 1, arbitrary: fc.array(fc.oneof(name, num), { maxLength: 5 }) },
    { weight: 1, arbitrary: fc.oneof(fc.constant(null), fc.string(), fc.nat()) }
  )
  const plainPush = fc.record(
    {
      _tag: fc.constantFrom("Push", "Push", "Push", "push"),
      full: fc.oneof(fc.boolean(), fc.boolean(), fc.constantFrom(0, "true", null)),
      entries: fc.oneof(
        { weight: 8, arbitrary: fc.array(plainEntry, { maxLength: 5 }) },
        { weight: 1, arbitrary: fc.constantFrom(null, {}, "[]") }
      ),
      digest: fc.oneof(fc.string({ maxLength: 130 }), fc.constantFrom("d".repeat(128), "d".repeat(129), 7)),
      sync: fc.oneof(
        {
          weight: 4,
          arbitrary: fc.record({
            upTo: fc.record({
              incarnation: fc.oneof(fc.hexaString({ minLength: 1, maxLength: 16 }), fc.constantFrom("", "x".repeat(65))),
              version: fc.oneof(fc.nat(), fc.constantFrom(-1, 1.5))
            }),
            part: fc.oneof(fc.nat(9), fc.constant(-1)),
            parts: fc.oneof(fc.integer({ min: 1, max: 9 }), fc.constant(0))
          })
        },
        { weight: 1, arbitrary: fc.constantFrom(null, "x", 3) }
      ),
      covers: fc.oneof(
        {
          weight: 4,
          arbitrary: fc.record({
            incarnation: fc.oneof(fc.hexaString({ minLength: 1, maxLength: 16 }), fc.constantFrom("", "x".repeat(65))),
            from: fc.oneof(fc.nat(), fc.constantFrom(-1, 1.5)),
            to: fc.oneof(fc.nat(), fc.constant("3"))
          })
        },
        { weight: 1, arbitrary: fc.constantFrom(null, [], 3) }
      ),
      extra: fc.anything({ maxDepth: 1 })
    },
    { requiredKeys: ["_tag"] }
  )

  it.prop("accepts and rejects exactly what the Message schema does", [plainPush], ([raw]) => {
    const fast = Codec.fromPlain(raw)
    const slow = decodeBySchema(raw)
    expect(Either.isRight(fast)).toBe(Either.isRight(slow))
    if (Either.isRight(fast) && Either.isRight(slow)) {
      expect(fast.right).toEqual(slow.right)
      expect(fast.right).toBeInstanceOf(Push)
    }
    // and through msgpack: the same verdict
    const viaBytes = Codec.decode(packr.pack(raw))
    expect(Either.isRight(viaBytes)).toBe(Either.isRight(slow))
  }, RUNS)

  it("Push has exactly the fields the fast path knows (update Codec.ts when adding one)", () => {
    expect(Object.keys(Push.fields).sort()).toEqual(["_tag", "covers", "digest", "entries", "full", "sync"])
  })

  it.prop("makePush builds the same Push as the constructor and rejects the same input", [plainPush], ([raw]) => {
    const props = { full: raw.full, entries: raw.entries, digest: raw.digest, sync: raw.sync, covers: raw.covers } as unknown as ConstructorParameters<typeof Push>[0]
    let viaCtor: Either.Either<Push, unknown>
    try {
      viaCtor = Either.right(new Push(props))
    } catch (e) {
      viaCtor = Either.left(e)
    }
    let viaMake: Either.Either<Push, unknown>
    try {
      viaMake = Either.right(makePush(props))
    } catch (e) {
      viaMake = Either.left(e)
    }
    expect(Either.isRight(viaMake)).toBe(Either.isRight(viaCtor))
    if (Either.isRight(viaMake) && Either.isRight(viaCtor)) expect(viaMake.right).toEqual(viaCtor.right)
  }, RUNS)

  it("a Push built without validation is still not sent invalid", () => {
    const bad = new Push({ full: true, entries: [["a b" as CounterName, "r1" as ReplicaId, 1, 0]], digest: "" }, true)
    expect(() => Codec.encode(bad)).toThrow()
  })
})

describe("Codec counter names", () => {
  const push = (name: string) =>
    packr.pack({ _tag: "Push", full: true, entries: [[name, "r1", 2, 1]], digest: "" })

  it("carries names like __proto__, constructor and 128 characters as plain data", () => {
    for (const name of ["__proto__", "constructor", "toString", "x".repeat(128)]) {
      const m = new Push({ full: false, entries: [[name as CounterName, "r1" as ReplicaId, 5, 2]], digest: "" })
      const back = Codec.decode(Codec.encode(m))
      expect(back).toEqual(Either.right(m))
      const hand = new Push({ full: true, entries: [[name as CounterName, "r1" as ReplicaId, 2, 1]], digest: "" })
      expect(Codec.decode(push(name))).toEqual(Either.right(hand))
    }
    expect(({} as Record<string, unknown>)["x"]).toBeUndefined()
  })

  it("rejects a 129-character name, an empty one and foreign characters", () => {
    for (const name of ["x".repeat(129), "", "a b", "é", "a/b"]) {
      const out = Codec.decode(push(name))
      expect(Either.isLeft(out) && out.left.reason).toBe("InvalidMessage")
      expect(Either.isLeft(out) && out.left.message).toMatch(/entries\[0\]/)
    }
  })

  it("drops a __proto__ key in a map instead of honouring it", () => {
    // {"_tag":"Ping","seq":1,"__proto__":{"seq":2}} written by hand as msgpack
    const bytes = Uint8Array.from([
      0x83, 0xa4, ...Buffer.from("_tag"), 0xa4, ...Buffer.from("Ping"), 0xa3, ...Buffer.from("seq"), 0x01,
      0xa9, ...Buffer.from("__proto__"), 0x81, 0xa3, ...Buffer.from("seq"), 0x02
    ])
    const out = Codec.decode(bytes)
    expect(out).toEqual(Either.right(new Ping({ seq: 1 })))
    expect(Object.getPrototypeOf(Either.getOrThrow(out))).toBe(Ping.prototype)
  })
})

describe("Codec other messages", () => {
  it("PeerList caps its size and PeerInfo's replica id is optional", () => {
    const peer = new PeerInfo({ gossipAddr: "127.0.0.1:9001", httpAddr: "127.0.0.1:8011" })
    const list = new PeerList({ peers: [peer] })
    expect(Codec.decode(Codec.encode(list))).toEqual(Either.right(list))
    const tooMany = packr.pack({ _tag: "PeerList", peers: Array.from({ length: 4097 }, () => ({ gossipAddr: "a:1", httpAddr: "a:2" })) })
    expect(Either.isLeft(Codec.decode(tooMany))).toBe(true)
  })

  it("Hello rejects a port out of range", () => {
    const hello = { _tag: "Hello", protocol: 1, replicaId: "r1", gossipAddr: "127.0.0.1:70000", httpAddr: "127.0.0.1:8010" }
    expect(Either.isLeft(Codec.decode(packr.pack(hello)))).toBe(true)
    expect(Either.isRight(Codec.decode(packr.pack({ ...hello, gossipAddr: "127.0.0.1:9000" })))).toBe(true)
  })
})
