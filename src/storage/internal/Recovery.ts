/**
 * Recovery of the file WAL when its layer is built: the newest snapshot plus every later
 * segment, folded into the durable state; a torn tail of the last segment (the one record
 * that was being written at a crash, never acknowledged) is cut off with a warning; any
 * other damage fails with `WalCorrupted` naming file and offset, because repairing it
 * silently could lose acknowledged writes. Leftovers of an interrupted snapshot or
 * compaction are removed. Returns the segment the committer appends to.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Clock, Effect } from "effect"
import type { CounterMap } from "../../crdt/CounterMap.js"
import { WalCorrupted } from "../Wal.js"
import { fsyncDir } from "./fsync.js"
import { MAGIC_BYTES, SEGMENT_MAGIC } from "./Record.js"
import type { Segment } from "./SegmentWriter.js"
import { walError } from "./walError.js"
import * as WalDir from "./WalDir.js"

/** A command line that tells the operator how to proceed after `WalCorrupted`. */
export const repairHint = (dataDir: string): string =>
  `Inspect it with \`dcounter wal check --data-dir ${dataDir}\`; ` +
  `\`dcounter wal repair --data-dir ${dataDir}\` cuts the damaged file back to its last intact record ` +
  `(the node then starts as a new replica, so nothing is counted twice).`

/** Recovery: reads the WAL directory into `fold`; returns the segment to append to. */
export const recover = Effect.fn("WalFile.recover")(function*(dataDir: string, walDir: string, fold: CounterMap) {
  const started = yield* Clock.currentTimeMillis
  const inspection = yield* Effect.try({
    try: () => {
      if (!fs.existsSync(walDir)) {
        fs.mkdirSync(walDir)
        fsyncDir(dataDir)
      }
      // straight into the map: no object or tuple per decoded entry
      return WalDir.inspect(walDir, (name, replica, inc, dec) => {
        fold.applyOne(name, replica, inc, dec)
      })
    },
    catch: walError(`cannot read the WAL in ${walDir}`)
  })
  const bad = WalDir.corruption(inspection)
  if (bad !== undefined) {
    return yield* Effect.fail(
      new WalCorrupted({
        file: path.join(walDir, bad.file),
        offset: bad.offset,
        message: `the WAL is damaged: ${path.join(walDir, bad.file)} at offset ${bad.offset} holds ${bad.why}, ` +
          `and this is not a torn write at the end of the log, so the node will not start. ` +
          repairHint(dataDir)
      })
    )
  }
  const last = inspection.segments.at(-1)
  if (last?.damage !== undefined) {
    yield* Effect.logWarning(
      `WAL: cut off a torn write of ${last.damage.bytes} bytes at the end of ${last.file} ` +
        `(offset ${last.damage.offset}: ${last.damage.why}); it was never acknowledged`
    )
  }
  const segment = yield* Effect.try({
    try: (): Segment => {
      const leftovers = [
        ...inspection.temps,
        ...inspection.coveredSegments.map(WalDir.segmentFile),
        ...inspection.olderSnapshots.map(WalDir.snapshotFile)
      ]
      for (const name of leftovers) fs.rmSync(path.join(walDir, name), { force: true })
      if (last === undefined) {
        const seq = inspection.snapshot?.seq ?? 1
        const fd = fs.openSync(path.join(walDir, WalDir.segmentFile(seq)), "w+")
        fs.writeSync(fd, SEGMENT_MAGIC, 0, MAGIC_BYTES, 0)
        fs.fdatasyncSync(fd)
        fsyncDir(walDir)
        return { seq, fd, size: MAGIC_BYTES, allocated: MAGIC_BYTES }
      }
      const fd = fs.openSync(path.join(walDir, last.file), "r+")
      if (last.validEnd < MAGIC_BYTES) {
        fs.ftruncateSync(fd, 0)
        fs.writeSync(fd, SEGMENT_MAGIC, 0, MAGIC_BYTES, 0)
        fs.fdatasyncSync(fd)
        return { seq: last.seq, fd, size: MAGIC_BYTES, allocated: MAGIC_BYTES }
      }
      if (last.size > last.validEnd) {
        fs.ftruncateSync(fd, last.validEnd)
        fs.fdatasyncSync(fd)
      }
      if (leftovers.length > 0) fsyncDir(walDir)
      return { seq: last.seq, fd, size: last.validEnd, allocated: last.validEnd }
    },
    catch: walError(`cannot open the WAL in ${walDir}`)
  })
  const took = (yield* Clock.currentTimeMillis) - started
  yield* Effect.logInfo(
    `WAL recovered ${fold.size} counters from ${walDir}: ` +
      (inspection.snapshot === undefined ? "no snapshot" : `snapshot ${inspection.snapshot.file} (${inspection.snapshot.entries} entries)`) +
      ` + ${inspection.records} records in ${inspection.segments.length} segments, ${took} ms`
  )
  return segment
})
