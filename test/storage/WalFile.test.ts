import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "../support/vitest.js"
import { Effect, Metric, TestClock } from "effect"
import type { Entry } from "../../src/crdt/Entry.js"
import { type FileIo, nodeIo } from "../../src/storage/internal/FileIo.js"
import type { Wal } from "../../src/storage/Wal.js"
import * as WalMetrics from "../../src/storage/WalMetrics.js"
import { digest, entry, recordsEnd, tempDir, walFiles, withWal } from "./walTestKit.js"

describe("WalFile", () => {
  it.scopedLive("durable appends survive a restart; concurrent appends share fdatasyncs", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const expected: Array<Entry> = []
      yield* withWal(dir, (wal) =>
        Effect.gen(function*() {
          expect(wal.recovered).toEqual([])
          yield* wal.append([entry("a", "r1", 1)])
          expected.push(entry("a", "r1", 1))
          const writes = Array.from({ length: 200 }, (_, i) => entry(`c${i % 10}`, `w${i}`, i + 1, i))
          yield* Effect.forEach(writes, (e) => wal.append([e]), { concurrency: "unbounded" })
          expected.push(...writes)
          const stats = yield* wal.stats
          expect(stats.appends).toBe(201)
          expect(stats.syncs).toBeLessThan(201)
          expect(stats.syncSeconds.length).toBe(stats.syncs)
        }))
      yield* withWal(dir, (wal) => Effect.sync(() => expect(digest(wal.recovered)).toBe(digest(expected))))
      expect(walFiles(dir)).toEqual(["0000000000000001.wal"])
    }))

  it.scopedLive("flush and close make lazily appended state durable", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      yield* withWal(dir, (wal) =>
        Effect.gen(function*() {
          yield* wal.appendLazy([entry("x", "p", 5), entry("x", "q", 1)])
          yield* wal.appendLazy([entry("x", "p", 3, 2)])
          yield* wal.flush
          const stats = yield* wal.stats
          expect(stats.records).toBe(1)
          yield* wal.appendLazy([entry("y", "p", 9)])
        }))
      yield* withWal(dir, (wal) =>
        Effect.sync(() =>
          expect(digest(wal.recovered)).toBe(digest([entry("x", "p", 5, 2), entry("x", "q", 1), entry("y", "p", 9)]))
        ))
    }))
})

describe("WalFile snapshots and compaction", () => {
  it.scopedLive("keep the same state across restarts while old segments are deleted", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const options = { segmentBytes: 300, snapshotEveryRecords: 25 }
      const expected: Array<Entry> = []
      const writeSome = (wal: Wal["Type"], from: number) =>
        Effect.forEach(Array.from({ length: 150 }, (_, i) => from + i), (i) => {
          const e = entry(`c${i % 7}`, `r${i % 3}`, i, Math.floor(i / 2))
          expected.push(e)
          return i % 10 === 0 ? wal.appendLazy([e]) : wal.append([e])
        }, { discard: true })
      const stats = yield* withWal(dir, (wal) => writeSome(wal, 1).pipe(Effect.zipRight(wal.stats)), options)
      expect(stats.snapshots).toBeGreaterThan(0)
      const check = () => {
        const files = walFiles(dir)
        const snaps = files.filter((f) => f.endsWith(".snap"))
        expect(snaps.length).toBe(1)
        const covered = Number(snaps[0]!.slice(9, 25))
        const segments = files.filter((f) => f.endsWith(".wal")).map((f) => Number(f.slice(0, 16)))
        expect(segments.every((s) => s >= covered)).toBe(true)
        expect(files.some((f) => f.endsWith(".tmp"))).toBe(false)
      }
      check()
      const again = yield* withWal(dir, (wal) =>
        Effect.gen(function*() {
          expect(digest(wal.recovered)).toBe(digest(expected))
          yield* writeSome(wal, 1000)
          return yield* wal.stats
        }), options)
      expect(again.snapshots).toBeGreaterThan(0)
      check()
      const recovered = yield* withWal(dir, (wal) => Effect.succeed(wal.recovered), options)
      expect(digest(recovered)).toBe(digest(expected))
    }))

  it.scopedLive("a snapshot written in chunks while appends go on loses nothing; recoveredMap is a copy of the caller's own", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      // a snapshot every 3 records, written 3 entries per chunk (the smallest record size)
      const options = { snapshotEveryRecords: 3, maxRecordBytes: 211 }
      const expected: Array<Entry> = []
      const stats = yield* withWal(dir, (wal) =>
        Effect.forEach(Array.from({ length: 300 }, (_, i) => i), (i) => {
          const e = entry(`c${i % 40}`, `r${i % 2}`, i + 1)
          expected.push(e)
          return wal.append([e])
        }, { concurrency: 8, discard: true }).pipe(Effect.zipRight(wal.stats)), options)
      expect(stats.snapshots).toBeGreaterThan(0)
      yield* withWal(dir, (wal) =>
        Effect.sync(() => {
          const copy = wal.recoveredMap()
          expect(digest(copy.entries())).toBe(digest(expected))
          expect(digest(wal.recovered)).toBe(digest(expected))
          copy.apply([entry("only-in-the-copy", "r0", 1)])
          expect(wal.recoveredMap().entryCount).toBe(copy.entryCount - 1)
        }), options)
    }))

  it.scoped("snapshot by time when the record count is not reached", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const options = { snapshotEveryRecords: 1_000_000, snapshotInterval: "1 minute" } as const
      yield* withWal(dir, (wal) =>
        Effect.gen(function*() {
          yield* wal.append([entry("a", "r", 1)])
          expect((yield* wal.stats).snapshots).toBe(0)
          yield* TestClock.adjust("61 seconds")
          yield* wal.append([entry("a", "r", 2)])
        }), options)
      expect(walFiles(dir)).toEqual(["0000000000000002.wal", "snapshot-0000000000000002.snap"])
      const recovered = yield* withWal(dir, (wal) => Effect.succeed(wal.recovered), options)
      expect(digest(recovered)).toBe(digest([entry("a", "r", 2)]))
    }))
})

describe("WalFile on a failing disk", () => {
  const failure = (code: string) => Object.assign(new Error(`${code}: simulated disk failure`), { code })

  it.scopedLive("fails the affected appends with the reason, never keeps them, and recovers with the disk", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      let fault: "ENOSPC" | "EIO" | "EROFS" | undefined
      const io: Partial<FileIo> = {
        // a full disk takes part of the write, then fails; a read-only one takes nothing
        write: (fd, buf, position) => {
          if (fault === "ENOSPC") {
            nodeIo.write(fd, buf.subarray(0, buf.length >> 1), position)
            throw failure("ENOSPC")
          }
          if (fault === "EROFS") throw failure("EROFS")
          nodeIo.write(fd, buf, position)
        },
        datasync: (fd) => (fault === "EIO" ? Promise.reject(failure("EIO")) : nodeIo.datasync(fd)),
        open: (file, flags) => (fault === "EROFS" ? Promise.reject(failure("EROFS")) : nodeIo.open(file, flags))
      }
      const options = { io, segmentBytes: 100 }
      yield* withWal(dir, (wal) =>
        Effect.gen(function*() {
          yield* wal.append([entry("ok", "me", 1)])
          fault = "ENOSPC"
          const e1 = yield* wal.append([entry("lost", "me", 1)]).pipe(Effect.flip)
          expect(e1.reason).toBe("NoSpace")
          yield* wal.appendLazy([entry("remote", "peer", 5)])
          expect((yield* wal.flush.pipe(Effect.flip)).reason).toBe("NoSpace")
          fault = "EIO"
          const e2 = yield* wal.append([entry("lost", "me", 2)]).pipe(Effect.flip)
          expect(e2.reason).toBe("Io")
          fault = undefined
          yield* wal.append([entry("ok", "me", 2)])
          yield* Effect.forEach([3, 4, 5, 6, 7, 8], (i) => wal.append([entry("ok", "me", i)]), { discard: true })
          expect((yield* wal.stats).records).toBe(8)
          fault = "EROFS"
          const e3 = yield* wal.append([entry("lost", "me", 3)]).pipe(Effect.flip)
          expect(e3.reason).toBe("ReadOnly")
          fault = undefined
          yield* wal.append([entry("ok", "me", 9)])
          const stats = yield* wal.stats
          expect(stats.appends).toBe(9)
        }), options)
      const recovered = yield* withWal(dir, (wal) => Effect.succeed(wal.recovered))
      // the failed appends never reappear; the lazily appended remote state was kept and written
      expect(digest(recovered)).toBe(digest([entry("ok", "me", 9), entry("remote", "peer", 5)]))
    }))

  it.scopedLive("with no room for the preallocated zeros the records are still written; closed segments end at their records", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      let zeroWrites = 0
      const io: Partial<FileIo> = {
        write: (fd, buf, position) => {
          if (buf.every((b) => b === 0)) {
            zeroWrites++
            throw failure("ENOSPC")
          }
          nodeIo.write(fd, buf, position)
        }
      }
      const appended = [1, 2, 3, 4, 5, 6].map((i) => entry("z", "me", i))
      yield* withWal(dir, (wal) => Effect.forEach(appended, (e) => wal.append([e]), { discard: true }), { io, segmentBytes: 60 })
      expect(zeroWrites).toBeGreaterThan(0)
      const segments = walFiles(dir).filter((f) => f.endsWith(".wal"))
      expect(segments.length).toBeGreaterThan(1)
      const recovered = yield* withWal(dir, (wal) => Effect.succeed(wal.recovered))
      expect(digest(recovered)).toBe(digest([entry("z", "me", 6)]))
      // with room, the segment written to is extended with zeros; closed segments, and the
      // last one after a clean close, end at their records
      const dir2 = yield* tempDir
      const segmentsOf = () => walFiles(dir2).filter((f) => f.endsWith(".wal")).map((f) => path.join(dir2, "wal", f))
      yield* withWal(dir2, (wal) =>
        Effect.gen(function*() {
          yield* Effect.forEach(appended, (e) => wal.append([e]), { discard: true })
          const open = segmentsOf()
          expect(open.length).toBeGreaterThan(1)
          for (const f of open.slice(0, -1)) expect(fs.statSync(f).size).toBe(recordsEnd(f))
          expect(fs.statSync(open.at(-1)!).size).toBeGreaterThan(recordsEnd(open.at(-1)!))
        }), { segmentBytes: 60 })
      for (const f of segmentsOf()) expect(fs.statSync(f).size).toBe(recordsEnd(f))
    }))

  it.scopedLive("a lost data directory starts empty with a fresh replica id", () =>
    Effect.gen(function*() {
      const root = yield* tempDir
      const dir = path.join(root, "node")
      const first = yield* withWal(dir, (wal, dataDir) => wal.append([entry("a", dataDir.replicaId, 3)]).pipe(Effect.as(dataDir)))
      expect(first.fresh).toBe(true)
      const same = yield* withWal(dir, (wal, dataDir) => Effect.succeed({ dataDir, recovered: wal.recovered }))
      expect(same.dataDir.replicaId).toBe(first.replicaId)
      expect(same.recovered).toEqual([entry("a", first.replicaId, 3)])
      fs.rmSync(dir, { recursive: true })
      const lost = yield* withWal(dir, (wal, dataDir) => Effect.succeed({ dataDir, recovered: wal.recovered }))
      expect(lost.dataDir.fresh).toBe(true)
      expect(lost.dataDir.replicaId).not.toBe(first.replicaId)
      expect(lost.recovered).toEqual([])
    }))
})

describe("WalFile lazy appends, metrics and close", () => {
  /** Lets real I/O callbacks run for a while, without sleeping (bounded). */
  const settle = (done: () => boolean) =>
    Effect.gen(function*() {
      for (let i = 0; i < 200 && !done(); i++) yield* Effect.promise(() => new Promise((r) => setImmediate(r)))
    })

  it.scoped("lazily appended entries are coalesced and written within the flush interval", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      yield* withWal(dir, (wal) =>
        Effect.gen(function*() {
          yield* wal.appendLazy([entry("x", "p", 1)])
          yield* wal.appendLazy([entry("x", "p", 7), entry("y", "p", 2)])
          yield* wal.appendLazy([entry("x", "p", 3)])
          yield* TestClock.adjust("49 millis")
          yield* settle(() => false)
          expect((yield* wal.stats).records).toBe(0)
          yield* TestClock.adjust("1 millis")
          let records = 0
          for (let i = 0; i < 2000 && records === 0; i++) {
            yield* Effect.promise(() => new Promise((r) => setImmediate(r)))
            records = (yield* wal.stats).records
          }
          // one record holding the coalesced maximum of each entry
          expect(records).toBe(1)
        }), { flushInterval: "50 millis" })
      const recovered = yield* withWal(dir, (wal) => Effect.succeed(wal.recovered))
      expect(digest(recovered)).toBe(digest([entry("x", "p", 7), entry("y", "p", 2)]))
    }))

  it.scopedLive("counts appends and bytes in the metrics and the fdatasync histogram", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const before = yield* Metric.value(WalMetrics.appendsTotal)
      const bytesBefore = yield* Metric.value(WalMetrics.bytesTotal)
      const syncsBefore = yield* Metric.value(WalMetrics.fsyncSeconds)
      yield* withWal(dir, (wal) =>
        Effect.forEach([1, 2, 3], (i) => wal.append([entry("m", "r", i)]), { concurrency: "unbounded", discard: true }))
      const after = yield* Metric.value(WalMetrics.appendsTotal)
      const bytesAfter = yield* Metric.value(WalMetrics.bytesTotal)
      const syncsAfter = yield* Metric.value(WalMetrics.fsyncSeconds)
      expect(after.count - before.count).toBe(3)
      expect(bytesAfter.count).toBeGreaterThan(bytesBefore.count)
      expect(syncsAfter.count).toBeGreaterThan(syncsBefore.count)
    }))

  it.scopedLive("after close every call fails with reason Closed", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const wal = yield* withWal(dir, (wal) => Effect.succeed(wal))
      for (const call of [wal.append([entry("a", "r", 1)]), wal.appendLazy([entry("a", "r", 1)]), wal.flush]) {
        const error = yield* Effect.flip(call)
        expect(error.reason).toBe("Closed")
      }
    }))
})
