import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "../support/vitest.js"
import { Effect } from "effect"
import type { Entry } from "../../src/crdt/Entry.js"
import { isRecord, readRecord } from "../../src/storage/internal/Record.js"
import * as WalDir from "../../src/storage/internal/WalDir.js"
import { collectLogs, digest, entry, recordStarts, recordsEnd, tempDir, walDir, withWal } from "./walTestKit.js"

const SEGMENT = "0000000000000001.wal"

/** A WAL with five records, one per append; returns the segment bytes and the states. */
const fiveRecords = (dir: string) =>
  Effect.gen(function*() {
    const appended: Array<Entry> = []
    yield* withWal(dir, (wal) =>
      Effect.forEach([1, 2, 3, 4, 5], (i) => {
        const e = entry(`n${i % 2}`, "me", i, i - 1)
        appended.push(e)
        return wal.append([e, entry("other", `r${i}`, 10 * i)])
      }, { discard: true }))
    const file = path.join(walDir(dir), SEGMENT)
    const written = fs.readFileSync(file)
    const starts = recordStarts(written)
    expect(starts.length).toBe(5)
    // the records without the zeros preallocated after them (the tests below cut and
    // damage the end of the last record)
    const last = readRecord(written, starts[4]!)
    if (!isRecord(last)) throw new Error("no fifth record")
    const bytes = written.subarray(0, last.end)
    expect(written.subarray(last.end).every((b) => b === 0)).toBe(true)
    fs.writeFileSync(file, bytes)
    const before = digest(appended.slice(0, 4).flatMap((e, i) => [e, entry("other", `r${i + 1}`, 10 * (i + 1))]))
    return { file, bytes, lastStart: starts[4]!, before }
  })

describe("WAL recovery", () => {
  it.scopedLive("a torn last record, cut at every byte offset, is cut off and the rest recovered", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const { before, bytes, file, lastStart } = yield* fiveRecords(dir)
      for (let cut = lastStart; cut < bytes.length; cut++) {
        fs.writeFileSync(file, bytes.subarray(0, cut))
        const [recovered, logs] = yield* collectLogs(withWal(dir, (wal) => Effect.succeed(wal.recovered)))
        expect(digest(recovered)).toBe(before)
        expect(fs.statSync(file).size).toBe(lastStart)
        if (cut > lastStart) {
          expect(logs.some((l) => l.startsWith("WARN") && l.includes(`torn write of ${cut - lastStart} bytes`))).toBe(true)
        }
      }
    }))

  it.scopedLive("zeros after the records are preallocated space, not damage; a torn record before them is cut off", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const { before, bytes, file, lastStart } = yield* fiveRecords(dir)
      const zeros = Buffer.alloc(4096)
      fs.writeFileSync(file, Buffer.concat([bytes, zeros]))
      const [all, quiet] = yield* collectLogs(withWal(dir, (wal) => Effect.succeed(wal.recovered)))
      expect(quiet.filter((l) => l.startsWith("WARN"))).toEqual([])
      expect(all.length).toBeGreaterThan(0)
      expect(digest(all)).not.toBe(before)
      // (not the last byte: a zero there may well be what was written)
      for (const cut of [lastStart + 1, lastStart + 12, lastStart + 14]) {
        fs.writeFileSync(file, Buffer.concat([bytes.subarray(0, cut), zeros]))
        const [recovered, logs] = yield* collectLogs(withWal(dir, (wal) => Effect.succeed(wal.recovered)))
        expect(digest(recovered)).toBe(before)
        expect(logs.some((l) => l.startsWith("WARN") && l.includes("torn write"))).toBe(true)
      }
    }))

  it.scopedLive("a last record with a bit flipped in any byte is cut off and the rest recovered", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const { before, bytes, file, lastStart } = yield* fiveRecords(dir)
      // every bit of every byte through the recovery scan (no files written)...
      const walDirPath = walDir(dir)
      for (let i = lastStart; i < bytes.length; i++) {
        for (let bit = 0; bit < 8; bit++) {
          const flipped = Buffer.from(bytes)
          flipped[i] = flipped[i]! ^ (1 << bit)
          fs.writeFileSync(file, flipped)
          const seen: Array<Entry> = []
          const inspection = WalDir.inspect(walDirPath, (n, r, i, d) => seen.push([n, r, i, d]))
          expect(WalDir.corruption(inspection)).toBeUndefined()
          const segment = inspection.segments[0]!
          expect(segment.damage?.tornTail).toBe(true)
          expect(segment.damage?.offset).toBe(lastStart)
          expect(segment.validEnd).toBe(lastStart)
          expect(digest(seen)).toBe(before)
        }
      }
      // ...and one flipped bit per byte through a real start-up, which cuts the file back
      for (let i = lastStart; i < bytes.length; i++) {
        const flipped = Buffer.from(bytes)
        flipped[i] = flipped[i]! ^ (1 << (i % 8))
        fs.writeFileSync(file, flipped)
        const recovered = yield* withWal(dir, (wal) => Effect.succeed(wal.recovered))
        expect(digest(recovered)).toBe(before)
        expect(fs.statSync(file).size).toBe(lastStart)
      }
    }))

  it.scopedLive("garbage after the last record (a torn write of zeros or noise) is cut off", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const { bytes, file } = yield* fiveRecords(dir)
      const all = digest((yield* withWal(dir, (wal) => Effect.succeed(wal.recovered))))
      for (const tail of [Buffer.alloc(4096), Buffer.from("not a record at all")]) {
        fs.writeFileSync(file, Buffer.concat([bytes, tail]))
        const recovered = yield* withWal(dir, (wal) => Effect.succeed(wal.recovered))
        expect(digest(recovered)).toBe(all)
        expect(fs.statSync(file).size).toBe(bytes.length)
      }
    }))

  it.scopedLive("damage with intact records after it refuses to start, naming file and offset", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const { bytes, file } = yield* fiveRecords(dir)
      const starts = recordStarts(bytes)
      const damaged = Buffer.from(bytes)
      damaged[starts[1]! + 14] = damaged[starts[1]! + 14]! ^ 0x40
      fs.writeFileSync(file, damaged)
      const error = yield* withWal(dir, () => Effect.void).pipe(Effect.flip)
      expect(error._tag).toBe("WalCorrupted")
      if (error._tag !== "WalCorrupted") return
      expect(error.file).toBe(file)
      expect(error.offset).toBe(starts[1])
      expect(error.message).toContain(`offset ${starts[1]}`)
      expect(error.message).toContain(`dcounter wal repair --data-dir ${dir}`)
      // nothing was changed by the refusal
      expect(fs.readFileSync(file).equals(damaged)).toBe(true)
    }))

  it.scopedLive("a torn end of a segment that is not the last one is corruption, not a torn tail", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      yield* withWal(dir, (wal) =>
        Effect.forEach([1, 2, 3, 4, 5, 6, 7, 8, 9], (i) => wal.append([entry("x", "me", i)]), { discard: true }), {
        segmentBytes: 40
      })
      const files = fs.readdirSync(walDir(dir)).filter((f) => f.endsWith(".wal")).sort()
      expect(files.length).toBeGreaterThan(2)
      const first = path.join(walDir(dir), files[0]!)
      fs.truncateSync(first, recordsEnd(first) - 3)
      const error = yield* withWal(dir, () => Effect.void).pipe(Effect.flip)
      expect(error._tag).toBe("WalCorrupted")
      if (error._tag === "WalCorrupted") expect(error.file).toBe(first)
    }))

  it.scopedLive("a missing segment in the middle is corruption", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      yield* withWal(dir, (wal) =>
        Effect.forEach([1, 2, 3, 4, 5, 6, 7, 8, 9], (i) => wal.append([entry("x", "me", i)]), { discard: true }), {
        segmentBytes: 40
      })
      fs.rmSync(path.join(walDir(dir), "0000000000000002.wal"))
      const error = yield* withWal(dir, () => Effect.void).pipe(Effect.flip)
      expect(error._tag).toBe("WalCorrupted")
      expect(error.message).toContain("missing segment file 0000000000000002.wal")
    }))

  it.scopedLive("a segment torn while it was being created (partial header) is started again", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      yield* withWal(dir, (wal) => wal.append([entry("x", "me", 1)]))
      const first = path.join(walDir(dir), SEGMENT)
      const records = recordsEnd(first)
      expect(fs.statSync(first).size).toBe(records)
      fs.writeFileSync(path.join(walDir(dir), "0000000000000002.wal"), "DCW")
      // zeros after the records of a segment that is not the last are not an end: the
      // writer cuts them off before it creates the next segment
      fs.appendFileSync(first, Buffer.alloc(4096))
      const refused = yield* withWal(dir, () => Effect.void).pipe(Effect.flip)
      expect(refused._tag).toBe("WalCorrupted")
      // ...as here: the crash came after that cut, while the next segment's header was written
      fs.truncateSync(first, records)
      yield* withWal(dir, (wal) =>
        Effect.gen(function*() {
          expect(digest(wal.recovered)).toBe(digest([entry("x", "me", 1)]))
          yield* wal.append([entry("x", "me", 2)])
        }))
      const recovered = yield* withWal(dir, (wal) => Effect.succeed(wal.recovered))
      expect(digest(recovered)).toBe(digest([entry("x", "me", 2)]))
    }))
})
