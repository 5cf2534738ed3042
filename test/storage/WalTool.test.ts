import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "../support/vitest.js"
import { Effect } from "effect"
import type { Entry } from "../../src/crdt/Entry.js"
import * as WalTool from "../../src/storage/WalTool.js"
import { digest, entry, open, close, recordStarts, recordsEnd, tempDir, walDir, walFiles, withWal } from "./walTestKit.js"

/** Nine records of one entry each over three segments of three records. */
const threeSegments = (dir: string) =>
  Effect.gen(function*() {
    const appended: Array<Entry> = []
    const replicaId = yield* withWal(dir, (wal, dataDir) =>
      Effect.forEach([1, 2, 3, 4, 5, 6, 7, 8, 9], (i) => {
        const e = entry(`c${i}`, "me", i)
        appended.push(e)
        return wal.append([e])
      }, { discard: true }).pipe(Effect.as(dataDir.replicaId)), { segmentBytes: 60 })
    const segments = walFiles(dir).filter((f) => f.endsWith(".wal"))
    expect(segments.length).toBe(3)
    return { appended, replicaId, segments }
  })

describe("WalTool", () => {
  it.scopedLive("check reports an intact WAL", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const { replicaId } = yield* threeSegments(dir)
      const r = yield* WalTool.check(dir)
      expect(r.status).toBe("ok")
      expect(r.replicaId).toBe(replicaId)
      expect(r.segments.length).toBe(3)
      expect(r.records).toBe(9)
      expect(r.entries).toBe(9)
      expect(r.counters).toBe(9)
      expect(r.damage).toEqual([])
      expect(r.bytesCut).toBe(0)
      expect(r.lockedBy).toBeUndefined()
      expect(WalTool.exitCode(r)).toBe(0)
      const text = WalTool.render(r)
      expect(text).toContain("OK: intact")
      expect(text).toContain("9 records")
    }))

  it.scopedLive("mid-log corruption: check names it, start refuses, repair lets the node start as a new replica", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const { appended, replicaId, segments } = yield* threeSegments(dir)
      const file = path.join(walDir(dir), segments[1]!)
      const bytes = fs.readFileSync(file)
      const starts = recordStarts(bytes)
      bytes[starts[1]! + 13] = bytes[starts[1]! + 13]! ^ 0x01
      fs.writeFileSync(file, bytes)

      const checked = yield* WalTool.check(dir)
      expect(checked.status).toBe("corrupted")
      expect(WalTool.exitCode(checked)).toBe(1)
      expect(checked.damage.map((d) => [d.file, d.offset, d.tornTail])).toEqual([[segments[1], starts[1], false]])
      expect(checked.bytesCut).toBe(bytes.length - starts[1]!)
      expect(WalTool.render(checked)).toContain(`dcounter wal repair --data-dir ${dir}`)
      expect(fs.readFileSync(file).equals(bytes)).toBe(true)

      const refused = yield* withWal(dir, () => Effect.void).pipe(Effect.flip)
      expect(refused._tag).toBe("WalCorrupted")

      const repaired = yield* WalTool.repair(dir)
      expect(repaired.status).toBe("corrupted")
      expect(repaired.bytesCut).toBe(bytes.length - starts[1]!)
      expect(repaired.previousReplicaId).toBe(replicaId)
      expect(repaired.replicaId).not.toBe(replicaId)
      expect(WalTool.render(repaired)).toContain("the node can start")
      expect((yield* WalTool.check(dir)).status).toBe("ok")

      const after = yield* withWal(dir, (wal, dataDir) => Effect.succeed({ recovered: wal.recovered, dataDir }))
      expect(after.dataDir.replicaId).toBe(repaired.replicaId)
      // records 5 and 6 (after the damage in the middle segment) are cut; the later segment is kept
      expect(digest(after.recovered)).toBe(digest(appended.filter((_, i) => i !== 4 && i !== 5)))
    }))

  it.scopedLive("a torn tail: check says start-up handles it, repair cuts it and keeps the replica id", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const { appended, replicaId, segments } = yield* threeSegments(dir)
      const file = path.join(walDir(dir), segments[2]!)
      fs.truncateSync(file, recordsEnd(file) - 2)
      const checked = yield* WalTool.check(dir)
      expect(checked.status).toBe("torn-tail")
      expect(WalTool.exitCode(checked)).toBe(0)
      expect(checked.damage[0]?.tornTail).toBe(true)
      const repaired = yield* WalTool.repair(dir)
      expect(repaired.previousReplicaId).toBeUndefined()
      expect(repaired.replicaId).toBe(replicaId)
      const recovered = yield* withWal(dir, (wal) => Effect.succeed(wal.recovered))
      expect(digest(recovered)).toBe(digest(appended.slice(0, 8)))
    }))

  it.scopedLive("a damaged snapshot is rewritten from its intact records; a missing segment is recreated", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      yield* withWal(dir, (wal) =>
        Effect.forEach(Array.from({ length: 40 }, (_, i) => i + 1), (i) => wal.append([entry(`c${i}`, "me", i)]), {
          discard: true
        }), { segmentBytes: 60, snapshotEveryRecords: 30, maxRecordBytes: 300 })
      const snap = walFiles(dir).find((f) => f.endsWith(".snap"))!
      const snapFile = path.join(walDir(dir), snap)
      const bytes = fs.readFileSync(snapFile)
      bytes[bytes.length - 3] = bytes[bytes.length - 3]! ^ 0xff
      fs.writeFileSync(snapFile, bytes)
      const segs = walFiles(dir).filter((f) => f.endsWith(".wal"))
      expect(segs.length).toBeGreaterThan(2)
      fs.rmSync(path.join(walDir(dir), segs[1]!))
      const checked = yield* WalTool.check(dir)
      expect(checked.status).toBe("corrupted")
      expect(checked.missingSegments).toEqual([segs[1]])
      expect(checked.damage[0]?.file).toBe(snap)
      yield* WalTool.repair(dir)
      const recovered = yield* withWal(dir, (wal) => Effect.succeed(wal.recovered))
      expect(recovered.length).toBeGreaterThan(20)
    }))

  it.scopedLive("repair refuses while a node holds the data directory; check reports the holder", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const opened = yield* open(dir)
      const err = yield* WalTool.repair(dir).pipe(Effect.flip)
      expect(err._tag).toBe("DataDirError")
      if (err._tag === "DataDirError") expect(err.reason).toBe("Locked")
      const checked = yield* WalTool.check(dir)
      expect(checked.lockedBy).toBe(process.pid)
      yield* close(opened)
    }))

  it.scopedLive("a data directory that does not exist is an error, not an empty report", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const err = yield* WalTool.check(path.join(dir, "nope")).pipe(Effect.flip)
      expect(err._tag).toBe("WalToolError")
      expect(err.reason).toBe("NotFound")
      const err2 = yield* WalTool.repair(path.join(dir, "nope")).pipe(Effect.flip)
      expect(err2._tag).toBe("WalToolError")
    }))
})
