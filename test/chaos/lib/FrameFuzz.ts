/**
 * Hostile gossip input: sessions of frames made with the product's own frame and message
 * codecs (src/protocol/Frame.ts, Codec.ts), then mutated, sent to a node's gossip port over
 * many connections, pipelined (a bad frame closes its connection, so each connection
 * carries a run of frames and ends with one bad frame).
 *
 * What is sent depends on whether the target has a cluster key:
 *   - keyed: well-tagged benign messages, well-tagged messages with fuzzed content (a
 *     buggy peer holding the key), and, to end a session, a frame with a wrong or missing
 *     tag, flipped bits anywhere (a flipped Push must never be merged), a bad length, a
 *     huge length, a bad version or flags, or garbage;
 *   - unkeyed: benign messages and fuzzed content that can never be a valid Push (a valid
 *     Push from an unauthenticated peer is legitimately merged, which would change the
 *     state the test holds constant), ending with bad headers or an unexpected tag.
 * Addresses in Hello frames are on loopback only.
 */
import * as net from "node:net"
import { Packr } from "msgpackr"
import { CounterName } from "../../../src/crdt/CounterName.js"
import type { Entry } from "../../../src/crdt/Entry.js"
import { ReplicaId } from "../../../src/crdt/ReplicaId.js"
import * as Codec from "../../../src/protocol/Codec.js"
import * as Frame from "../../../src/protocol/Frame.js"
import { DigestAck, DigestPull, Hello, type Message, Ping, PingAck, Push } from "../../../src/protocol/Message.js"
import type { Prng } from "./Prng.js"
import { sleep } from "./Proc.js"

const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true })

export interface FuzzTarget {
  readonly host: string
  readonly port: number
  readonly key: string | undefined
  /** the gossip address Hello frames announce (a loopback address where nothing listens) */
  readonly fakeGossipAddr: string
  readonly fakeHttpAddr: string
}

export interface FuzzStats {
  frames: number
  sessions: number
  bytes: number
  fatalByKind: Map<string, number>
  contentFuzz: number
  benign: number
  writeErrors: number
  stalled: number
  /** frames sent after a bad frame on the same connection (the node must ignore them) */
  afterFatal: number
}

export const emptyStats = (): FuzzStats => ({
  frames: 0,
  sessions: 0,
  bytes: 0,
  fatalByKind: new Map(),
  contentFuzz: 0,
  benign: 0,
  writeErrors: 0,
  stalled: 0,
  afterFatal: 0
})

/** A replica id drawn from the seeded stream, so a replayed run sends the same bytes. */
const replicaIdOf = (rng: Prng): ReplicaId => ReplicaId.make(rng.bytes(16).toString("base64url"))

const digestOf = (rng: Prng): string => rng.bytes(rng.int(0, 40)).toString("hex")

const benignMessage = (rng: Prng): Message => {
  switch (rng.int(0, 3)) {
    case 0:
      return new Ping({ seq: rng.int(0, 2 ** 31) })
    case 1:
      return new PingAck({ seq: rng.int(0, 2 ** 31) })
    case 2:
      return new DigestAck({ digest: digestOf(rng) })
    default:
      return new DigestPull({ digest: digestOf(rng), entries: rng.int(0, 1000) })
  }
}

/** A valid Push; only ever sent inside a frame whose tag then fails. */
const pushMessage = (rng: Prng): Message =>
  new Push({
    full: rng.bool(),
    digest: digestOf(rng),
    entries: Array.from({ length: rng.int(1, 6) }, (): Entry => [
      CounterName.make(rng.pick(["default", "fuzzed", "likes"])),
      replicaIdOf(rng),
      rng.int(0, 1_000_000),
      rng.int(0, 1000)
    ])
  })

/** Plain values that are never a valid message (whatever else they are). */
const invalidPlain = (rng: Prng): unknown => {
  const junk = (depth: number): unknown => {
    switch (rng.int(0, depth > 2 ? 4 : 7)) {
      case 0:
        return rng.int(-(2 ** 31), 2 ** 31)
      case 1:
        return rng.float() * 1e300
      case 2:
        return rng.bytes(rng.int(0, 20)).toString("latin1")
      case 3:
        return null
      case 4:
        return rng.bool()
      case 5:
        return Array.from({ length: rng.int(0, 5) }, () => junk(depth + 1))
      case 6:
        return Object.fromEntries(Array.from({ length: rng.int(0, 4) }, (_, i) => [`k${i}`, junk(depth + 1)]))
      default:
        return rng.bytes(rng.int(0, 64))
    }
  }
  switch (rng.int(0, 9)) {
    case 0:
      return { _tag: "Push", full: true, digest: "x", entries: [["bad name", "r", 1, 0]] }
    case 1:
      return { _tag: "Push", full: false, digest: "x", entries: [["default", "r", -1, 0]] }
    case 2:
      return { _tag: "Push", full: true, digest: "x", entries: [["default", "r", 2 ** 60, 0]] }
    case 3:
      return { _tag: "Push", full: true, digest: "x".repeat(129), entries: [["default", "r", 1, 0]] }
    case 4:
      return { _tag: "Push", full: "yes", digest: "x", entries: junk(1) }
    case 5:
      return { _tag: "Push", digest: "x", entries: [["default", "r/../x", 1, 0]] }
    case 6:
      return { _tag: rng.pick(["Nope", "push", "", "Hello"]), seq: junk(1) }
    case 7:
      return { _tag: "Ping", seq: rng.pick([-1, 1.5, "1", null, 2 ** 60]) }
    case 8:
      return { _tag: "PeerList", peers: [{ gossipAddr: 5, httpAddr: null }] }
    default:
      return junk(0)
  }
}

const flipBits = (bytes: Uint8Array, rng: Prng, flips: number, from = 0): Buffer => {
  const out = Buffer.from(bytes)
  if (out.length <= from) return out
  for (let i = 0; i < flips; i++) {
    const at = rng.int(from, out.length - 1)
    out[at] = out[at]! ^ (1 << rng.int(0, 7))
  }
  return out
}

/**
 * Encoded benign messages, made once (Schema encoding costs ~30us a message, too slow for
 * a million frames); frames draw from the pool and mutate copies.
 */
export class PayloadPool {
  readonly benign: ReadonlyArray<Uint8Array>
  readonly fuzzed: ReadonlyArray<Uint8Array>

  constructor(rng: Prng, size = 4096) {
    this.benign = Array.from({ length: size }, () => Codec.encode(benignMessage(rng)))
    this.fuzzed = Array.from({ length: 2 * size }, () => fuzzedPayload(rng, this))
  }

  pick(rng: Prng): Uint8Array {
    return this.benign[rng.int(0, this.benign.length - 1)]!
  }

  private readonly framed = new Map<string, { benign: Array<Uint8Array>; fuzzed: Array<Uint8Array> }>()

  /** Whole frames (tagged with `key`), made once per key: most body frames come from here. */
  framesFor(key: string | undefined): { benign: Array<Uint8Array>; fuzzed: Array<Uint8Array> } {
    const id = key ?? "\u0000none"
    let f = this.framed.get(id)
    if (f === undefined) {
      f = { benign: this.benign.map((p) => Frame.encode(p, key)), fuzzed: this.fuzzed.map((p) => Frame.encode(p, key)) }
      this.framed.set(id, f)
    }
    return f
  }

  /** A fuzzed payload: from the pool, or a fresh bit flip of a benign one. */
  pickFuzzed(rng: Prng): Uint8Array {
    return rng.bool(0.3) ? flipBits(this.pick(rng), rng, rng.int(1, 3)) : this.fuzzed[rng.int(0, this.fuzzed.length - 1)]!
  }
}

/** A payload that never decodes to a valid Push: fuzzed benign bytes or invalid values. */
const fuzzedPayload = (rng: Prng, pool: PayloadPool): Uint8Array => {
  const base = pool.pick(rng)
  switch (rng.int(0, 5)) {
    case 0:
      return flipBits(base, rng, rng.int(1, 4))
    case 1:
      return base.subarray(0, rng.int(0, Math.max(0, base.length - 1)))
    case 2:
      return Buffer.concat([base, rng.bytes(rng.int(1, 16))])
    case 3:
      return rng.bytes(rng.int(0, 200))
    default:
      return packr.pack(invalidPlain(rng))
  }
}

const writeLength = (frame: Buffer, length: number): Buffer => {
  frame.writeUInt32BE(length >>> 0, 0)
  return frame
}

/** One frame that must stop the connection, and its kind. */
const fatalFrame = (rng: Prng, key: string | undefined, pool: PayloadPool): { kind: string; bytes: Buffer } => {
  const payload = key !== undefined && rng.bool(0.5) ? Codec.encode(pushMessage(rng)) : pool.pick(rng)
  const good = Buffer.from(Frame.encode(payload, key))
  const kinds =
    key !== undefined
      ? ["flipped bits", "wrong key", "missing tag", "huge length", "length too short", "length off by some", "bad version", "unknown flags", "garbage", "truncated tag"]
      : ["unexpected tag", "huge length", "length too short", "length off by some", "bad version", "unknown flags", "garbage", "flipped header bits"]
  const kind = rng.pick(kinds)
  switch (kind) {
    case "flipped bits":
      return { kind, bytes: flipBits(good, rng, rng.int(1, 4)) }
    case "flipped header bits":
      return { kind, bytes: flipBits(good.subarray(0, 6), rng, rng.int(1, 3)) }
    case "wrong key":
      return { kind, bytes: Buffer.from(Frame.encode(payload, `not-${key ?? ""}-${rng.next()}`)) }
    case "missing tag":
      return { kind, bytes: Buffer.from(Frame.encode(payload)) }
    case "unexpected tag":
      return { kind, bytes: Buffer.from(Frame.encode(payload, `k${rng.next()}`)) }
    case "huge length":
      return { kind, bytes: writeLength(good, rng.pick([0xffffffff, 0x80000000, Frame.DEFAULT_MAX_FRAME_BYTES + 1, rng.int(Frame.DEFAULT_MAX_FRAME_BYTES + 1, 2 ** 32 - 1)])) }
    case "length too short":
      return { kind, bytes: writeLength(good, rng.int(0, 1)) }
    case "length off by some": {
      const len = good.readUInt32BE(0)
      const delta = rng.pick([-3, -2, -1, 1, 2, 7, 100])
      return { kind, bytes: writeLength(good, Math.max(2, len + delta)) }
    }
    case "bad version":
      good[4] = rng.pick([0, 2, 3, 0x7f, 0xff])
      return { kind, bytes: good }
    case "unknown flags":
      good[5] = good[5]! | (1 << rng.int(1, 7))
      return { kind, bytes: good }
    case "truncated tag": {
      const cut = good.subarray(0, good.length - rng.int(1, Frame.TAG_BYTES))
      return { kind, bytes: writeLength(Buffer.from(cut), cut.length - 4) }
    }
    default:
      return { kind: "garbage", bytes: rng.bytes(rng.int(1, 400)) }
  }
}

/** The bytes of one session: Hello, a run of frames, usually a fatal frame at the end. */
export const makeSession = (
  rng: Prng,
  t: FuzzTarget,
  pool: PayloadPool,
  maxFrames: number,
  stats: FuzzStats
): { bytes: Buffer; frames: number; fatal: string | undefined } => {
  const parts: Array<Uint8Array> = []
  let frames = 0
  if (rng.bool(0.95)) {
    const hello = new Hello({ protocol: 1, replicaId: replicaIdOf(rng), gossipAddr: t.fakeGossipAddr, httpAddr: t.fakeHttpAddr })
    parts.push(Frame.encode(Codec.encode(hello), t.key))
    frames++
  }
  // a run of valid benign frames the node must process one by one, then a few with
  // fuzzed content (the first of them closes the connection), with the bad frame at the
  // end or in the middle, sometimes followed by more frames the node must ignore
  const framed = pool.framesFor(t.key)
  const benign = () => {
    // a quarter are made fresh, the rest come framed from the pool
    parts.push(rng.bool(0.25) ? Frame.encode(pool.pick(rng), t.key) : framed.benign[rng.int(0, framed.benign.length - 1)]!)
    stats.benign++
    frames++
  }
  const nBenign = rng.int(0, maxFrames)
  for (let i = 0; i < nBenign; i++) benign()
  const nFuzzed = rng.int(0, 8)
  for (let i = 0; i < nFuzzed; i++) {
    parts.push(rng.bool(0.25) ? Frame.encode(pool.pickFuzzed(rng), t.key) : framed.fuzzed[rng.int(0, framed.fuzzed.length - 1)]!)
    stats.contentFuzz++
    frames++
  }
  let fatal: string | undefined
  if (rng.bool(0.9)) {
    const f = fatalFrame(rng, t.key, pool)
    const at = rng.bool(0.5) ? parts.length : rng.int(Math.min(1, parts.length), parts.length)
    parts.splice(at, 0, f.bytes)
    fatal = f.kind
    stats.fatalByKind.set(f.kind, (stats.fatalByKind.get(f.kind) ?? 0) + 1)
    frames++
    const trailing = rng.bool(0.5) ? rng.int(1, Math.max(1, Math.floor(maxFrames / 4))) : 0
    for (let i = 0; i < trailing; i++) benign()
    stats.afterFatal += parts.length - at - 1
  }
  return { bytes: Buffer.concat(parts), frames, fatal }
}

/** Writes one session on a fresh connection and waits (bounded) for the node to close it. */
const sendSession = (t: FuzzTarget, bytes: Buffer, timeoutMs: number): Promise<{ written: boolean; stalled: boolean }> =>
  new Promise((resolve) => {
    const s = net.connect({ host: t.host, port: t.port })
    let written = false
    let settled = false
    const done = (stalled: boolean) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      s.destroy()
      resolve({ written, stalled })
    }
    const timer = setTimeout(() => done(true), timeoutMs)
    s.on("error", () => done(false))
    s.on("close", () => done(false))
    s.on("data", () => undefined)
    s.on("connect", () => {
      s.write(bytes, (err) => {
        written = err === undefined || err === null
      })
      s.end()
    })
  })

export interface FuzzRun {
  readonly target: FuzzTarget
  readonly frames: number
  readonly concurrency: number
  readonly maxFramesPerSession: number
  readonly budgetMs: number
}

/** Sends sessions until `frames` frames were written or the budget is spent. */
export const fuzz = async (rng: Prng, run: FuzzRun, stats: FuzzStats): Promise<{ ms: number }> => {
  const started = Date.now()
  const deadline = started + run.budgetMs
  const pool = new PayloadPool(rng.fork("pool"))
  const worker = async (w: Prng): Promise<void> => {
    while (stats.frames < run.frames && Date.now() < deadline) {
      const session = makeSession(w, run.target, pool, run.maxFramesPerSession, stats)
      stats.sessions++
      const r = await sendSession(run.target, session.bytes, 15_000)
      if (r.written) {
        stats.frames += session.frames
        stats.bytes += session.bytes.length
      } else stats.writeErrors++
      if (r.stalled) stats.stalled++
    }
  }
  await Promise.all(Array.from({ length: run.concurrency }, (_, i) => worker(rng.fork(`fuzz-worker-${i}`))))
  await sleep(0)
  return { ms: Date.now() - started }
}
