import * as fs from "node:fs"
import * as path from "node:path"
import { crc32 as zlibCrc32 } from "node:zlib"
import { describe, expect, it } from "../support/vitest.js"
import { Effect, FastCheck as fc } from "effect"
import type { CounterName } from "../../src/crdt/CounterName.js"
import type { Entry } from "../../src/crdt/Entry.js"
import type { ReplicaId } from "../../src/crdt/ReplicaId.js"
import * as Record from "../../src/storage/internal/Record.js"
import * as WalDir from "../../src/storage/internal/WalDir.js"
import { tempDir } from "./walTestKit.js"

const nameChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-".split("")
const replicaChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-".split("")
const count = fc.oneof(fc.nat(300), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }))
const entryArb: fc.Arbitrary<Entry> = fc.tuple(
  fc.array(fc.constantFrom(...nameChars), { minLength: 1, maxLength: 128 }).map((a) => a.join("") as CounterName),
  fc.array(fc.constantFrom(...replicaChars), { minLength: 1, maxLength: 64 }).map((a) => a.join("") as ReplicaId),
  count,
  count
)

const decodeAll = (bytes: Buffer): Array<Entry> => {
  const out: Array<Entry> = []
  let offset = 0
  while (offset < bytes.length) {
    const r = Record.readRecord(bytes, offset)
    if (!Record.isRecord(r)) throw new Error(r.why)
    Record.decodeEntries(bytes, r.payloadStart, r.end, (n, rep, i, d) => out.push([n, rep, i, d]))
    offset = r.end
  }
  return out
}

describe("Record", () => {
  it.prop("crc32 equals zlib's on any range", [fc.uint8Array({ maxLength: 3000 }), fc.nat(), fc.nat()], ([bytes, a, b]) => {
    const start = bytes.length === 0 ? 0 : a % bytes.length
    const end = start + (bytes.length === 0 ? 0 : b % (bytes.length - start + 1))
    expect(Record.crc32(bytes, start, end)).toBe(zlibCrc32(bytes.subarray(start, end)))
  }, { fastCheck: { numRuns: 2000 } })

  it.prop("entries round-trip through records of any size limit", [fc.array(entryArb, { maxLength: 40 }), fc.integer({ min: 1, max: 4000 })], ([entries, max]) => {
    const valid = entries.every((e) => Record.invalidEntry(e) === undefined)
    expect(valid).toBe(true)
    expect(decodeAll(Record.encodeEntries(entries, max))).toEqual(entries)
  }, { fastCheck: { numRuns: 1000 } })

  it.prop("decoding arbitrary bytes never throws anything but PayloadError", [fc.uint8Array({ maxLength: 200 })], ([bytes]) => {
    const buf = Buffer.from(bytes)
    try {
      Record.decodeEntries(buf, 0, buf.length, () => undefined)
    } catch (e) {
      expect(e).toBeInstanceOf(Record.PayloadError)
    }
    const r = Record.readRecord(buf, 0)
    if (!Record.isRecord(r)) expect(typeof r.why).toBe("string")
  }, { fastCheck: { numRuns: 2000 } })

  it("invalidEntry refuses what the decoder would refuse", () => {
    const bad: Array<Entry> = [
      ["" as CounterName, "r" as ReplicaId, 1, 0],
      ["a b" as CounterName, "r" as ReplicaId, 1, 0],
      ["a" as CounterName, "r.x" as ReplicaId, 1, 0],
      ["a" as CounterName, "r" as ReplicaId, -1, 0],
      ["a" as CounterName, "r" as ReplicaId, 1.5, 0],
      ["a" as CounterName, "r" as ReplicaId, 0, 2 ** 53],
      ["é" as CounterName, "r" as ReplicaId, 1, 0]
    ]
    for (const e of bad) expect(Record.invalidEntry(e)).toBeDefined()
  })

  it.scopedLive("segments larger than the read buffer, with records across its boundary, scan exactly", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const big: Array<Entry> = Array.from({ length: 40_000 }, (_, i) => [`big-${i}` as CounterName, "r" as ReplicaId, i, 0])
      const parts: Array<Buffer> = [Record.SEGMENT_MAGIC]
      let expected = 0
      for (let i = 0; i < 100_000; i++) {
        parts.push(Record.encodeEntries([[`c${i % 100}` as CounterName, "me" as ReplicaId, i, 0]], 1 << 20))
        expected++
        // a record of ~1 MiB now and then, and one bigger than the 4 MiB read buffer
        if (i % 50_000 === 7) {
          const giant = Array.from({ length: 60_000 }, (_, k): Entry => [`${"n".repeat(120)}-${k}` as CounterName, "r" as ReplicaId, k, 0])
          parts.push(Record.encodeEntries(i === 7 ? giant : big, Record.MAX_PAYLOAD_BYTES))
          expected++
        }
      }
      const whole = Buffer.concat(parts)
      expect(whole.length).toBeGreaterThan(10 * 1024 * 1024)
      let biggest = 0
      let records = 0
      const starts: Array<number> = []
      for (let offset = Record.MAGIC_BYTES; offset < whole.length; records++) {
        const r = Record.readRecord(whole, offset)
        if (!Record.isRecord(r)) throw new Error(r.why)
        starts.push(offset)
        biggest = Math.max(biggest, r.end - offset)
        offset = r.end
      }
      expect(biggest).toBeGreaterThan(4 * 1024 * 1024)
      expect(records).toBe(expected)
      const file = path.join(dir, WalDir.segmentFile(1))
      fs.writeFileSync(file, whole)
      const scan = WalDir.scanSegment(dir, 1, true, () => undefined)
      expect(scan.damage).toBeUndefined()
      expect(scan.records).toBe(records)
      expect(scan.validEnd).toBe(whole.length)
      // a torn copy of the last record at the end is a torn tail; the same damage earlier is not
      const last = Record.encodeEntries([["z" as CounterName, "me" as ReplicaId, 1, 0]], 1 << 20)
      fs.writeFileSync(file, Buffer.concat([whole, last.subarray(0, last.length - 1)]))
      const torn = WalDir.scanSegment(dir, 1, true, () => undefined)
      expect(torn.damage?.tornTail).toBe(true)
      expect(torn.damage?.offset).toBe(whole.length)
      const damaged = Buffer.from(whole)
      const at = whole.length - 3 * 1024 * 1024
      damaged[at] = damaged[at]! ^ 0x10
      fs.writeFileSync(file, damaged)
      const corrupt = WalDir.scanSegment(dir, 1, true, () => undefined)
      expect(corrupt.damage?.tornTail).toBe(false)
      expect(corrupt.damage!.offset).toBe(starts.filter((o) => o <= at).at(-1))
    }))
})
