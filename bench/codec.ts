/**
 * Codec micro-benchmark: encode + decode throughput of a Push holding
 *   - a 5-node state (one counter, 5 replicas), and
 *   - a 10,000-counter state (one entry per counter, written by 5 replicas in turn),
 * through the wire codec (msgpack + Schema validation), next to JSON.stringify/parse of the
 * same data (to and from UTF-8 bytes, no validation) measured in the same run. Rounds of
 * the cases are interleaved and the median round is reported, because the machine is
 * shared and noisy.
 *
 *     npx tsc -p tsconfig.build.json && node dist/bench/codec.js [--quick]
 */
import { Either, Schema } from "effect"
import { Packr } from "msgpackr"
import type { CounterName } from "../src/crdt/CounterName.js"
import type { Entry } from "../src/crdt/Entry.js"
import type { ReplicaId } from "../src/crdt/ReplicaId.js"
import * as Codec from "../src/protocol/Codec.js"
import { Message, Push } from "../src/protocol/Message.js"
import type { BenchOptions, BenchResult } from "./BenchResult.js"
import { figure, isMain, main, ratioOf } from "./BenchResult.js"

const replicas: ReadonlyArray<ReplicaId> = [
  "Jm3w0zq9T2u8b1XkPq7VfA",
  "Q8d2LwYc0nR5sE3tHv6UaB",
  "x4Gh7KpZ2mN9cV1bL0qWeC",
  "T6yU1iO3pA5sD7fG9hJ2kD",
  "b0Nm8Vc6Xz4Lk2Jh5Gf3dE"
].map((s) => s as ReplicaId)

const digest = "9f2c1e7a4b3d5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8"

export const fiveNodePush = (): Push =>
  new Push({
    full: true,
    entries: replicas.map((r, i): Entry => ["default" as CounterName, r, 1_000_003 * (i + 1), 250_001 * i]),
    digest
  })

export const tenThousandCounterPush = (): Push => {
  const entries: Array<Entry> = []
  for (let i = 0; i < 10_000; i++) {
    entries.push([`counter-${i}` as CounterName, replicas[i % replicas.length]!, 1_000 + i * 37, i * 11])
  }
  return new Push({ full: true, entries, digest })
}

interface Case {
  readonly name: string
  readonly bytes: number
  readonly step: () => void
}

const codecCase = (label: string, push: Push): Case => {
  const bytes = Codec.encode(push).byteLength
  return {
    name: `${label}: msgpack + Schema (Codec)`,
    bytes,
    step: () => {
      const back = Codec.decode(Codec.encode(push))
      if (Either.isLeft(back)) throw new Error(back.left.message)
    }
  }
}

const jsonCase = (label: string, push: Push): Case => {
  const plain = Schema.encodeSync(Message)(push)
  const bytes = Buffer.byteLength(JSON.stringify(plain))
  return {
    name: `${label}: JSON.stringify/parse`,
    bytes,
    step: () => {
      const parsed: unknown = JSON.parse(Buffer.from(JSON.stringify(plain)).toString("utf8"))
      if (typeof parsed !== "object") throw new Error("unreachable")
    }
  }
}

/** The codec as it was before the Push fast path: generic Schema encode and decode. */
const genericSchemaCase = (label: string, push: Push): Case => {
  const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true, int64AsType: "number" })
  const encode = Schema.encodeSync(Message)
  const decode = Schema.decodeUnknownEither(Message)
  const bytes = packr.pack(encode(push)).byteLength
  return {
    name: `${label}: msgpack + generic Schema (before the fast path)`,
    bytes,
    step: () => {
      if (Either.isLeft(decode(packr.unpack(packr.pack(encode(push)))))) throw new Error("invalid")
    }
  }
}

/** msgpack without any validation: how much of the codec's time is the format itself. */
const rawMsgpackCase = (label: string, push: Push): Case => {
  const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true, int64AsType: "number" })
  const plain = Schema.encodeSync(Message)(push)
  const bytes = packr.pack(plain).byteLength
  return {
    name: `${label}: msgpack only (no validation)`,
    bytes,
    step: () => {
      const back: unknown = packr.unpack(packr.pack(plain))
      if (typeof back !== "object") throw new Error("unreachable")
    }
  }
}

/** Runs `step` repeatedly for about `ms` milliseconds; returns steps per second. */
const measure = (step: () => void, ms: number): number => {
  let n = 0
  const start = process.hrtime.bigint()
  const deadline = start + BigInt(Math.round(ms * 1e6))
  let now = start
  while (now < deadline) {
    step()
    n++
    now = process.hrtime.bigint()
  }
  return n / (Number(now - start) / 1e9)
}

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

export const run = async (options?: BenchOptions): Promise<ReadonlyArray<BenchResult>> => {
  const log = options?.log ?? ((line: string) => process.stderr.write(line + "\n"))
  const quick = options?.quick === true
  const rounds = quick ? 3 : 5
  const roundMs = quick ? 150 : 600

  const groups = [
    { label: "Push, 5-node state (1 counter)", push: fiveNodePush() },
    { label: "Push, 10,000-counter state", push: tenThousandCounterPush() }
  ]
  const results: Array<BenchResult> = []
  for (const { label, push } of groups) {
    const cases = [
      codecCase(label, push),
      jsonCase(label, push),
      rawMsgpackCase(label, push),
      genericSchemaCase(label, push)
    ]
    // warm up the JIT: the first few hundred ms of a case run several times slower
    for (const c of cases) measure(c.step, Math.max(roundMs, 400))
    const perCase = cases.map(() => [] as Array<number>)
    for (let r = 0; r < rounds; r++) {
      cases.forEach((c, i) => perCase[i]!.push(measure(c.step, roundMs)))
      log(`codec: ${label}: round ${r + 1}/${rounds}`)
    }
    const rates = perCase.map(median)
    const [codec, json, raw, generic] = cases.map((c, i) => ({ c, rate: rates[i]! }))
    const row = (
      x: { c: Case; rate: number },
      baseline?: { c: Case; rate: number },
      notes?: string
    ): BenchResult => {
      const ratio = baseline === undefined ? undefined : ratioOf(x.rate, baseline.rate)
      return {
        bench: "codec",
        name: x.c.name,
        figures: [
          figure("encode+decode", x.rate, "frames/s", "higher"),
          figure("throughput", (x.rate * x.c.bytes) / 1e6, "MB/s", "higher"),
          figure("frame", x.c.bytes, "B", "lower")
        ],
        ...(baseline === undefined ? {} : { baseline: baseline.c.name }),
        ...(ratio === undefined ? {} : { ratio }),
        ...(notes === undefined ? {} : { notes })
      }
    }
    const speedup = ratioOf(codec!.rate, generic!.rate)
    results.push(
      row(codec!, json, speedup === undefined ? undefined : `${speedup.toFixed(1)}x the generic Schema path`),
      row(json!),
      row(raw!, json, "msgpackr pack/unpack alone: the floor of the codec's cost"),
      row(generic!, json)
    )
  }
  return results
}

if (isMain(import.meta.url)) void main(run)
