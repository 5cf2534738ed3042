/**
 * The file WAL's snapshots and compaction. After `everyRecords` records or `intervalMs`
 * with at least one record, whichever comes first, the committer calls `maybeSnapshot`
 * between batches: it rotates to a new segment N (nothing may be in flight on the old
 * one), and a background fiber writes the folded durable state as `snapshot-N.snap`
 * (temp, fsync, rename, fsync of the directory), then deletes the segments before N and
 * older snapshots. A failed snapshot is retried after `SNAPSHOT_RETRY`; the records it
 * would have covered count towards the next one.
 *
 * The fiber runs in a `FiberSet` of the layer's scope, made before the committer, so it
 * is closed after the final flush (finalizers run in reverse).
 */
import * as path from "node:path"
import type { Scope } from "effect"
import { Clock, Duration, Effect, type Fiber, FiberSet, Metric } from "effect"
import type { CounterMap } from "../../crdt/CounterMap.js"
import * as WalMetrics from "../WalMetrics.js"
import type { FileIo } from "./FileIo.js"
import { encodeEntries, encodeSnapshotEnd, MAGIC_BYTES, SNAPSHOT_MAGIC } from "./Record.js"
import type { SegmentWriter } from "./SegmentWriter.js"
import { call, callSync, walError } from "./walError.js"
import * as WalDir from "./WalDir.js"
import type { WalTally } from "./WalTally.js"

/** How long after a failed snapshot the next one may be tried. */
export const SNAPSHOT_RETRY = Duration.seconds(30)

export interface SnapshotterConfig {
  readonly walDir: string
  readonly io: FileIo
  readonly maxRecordBytes: number
  /** snapshot after this many records since the last snapshot... */
  readonly everyRecords: number
  /** ...or after this long with at least one record */
  readonly intervalMs: number
}

export interface Snapshotter {
  /** Whether a snapshot should start now (no clock effect: the committer asks between callbacks). */
  readonly dueNow: () => boolean
  /** Starts a snapshot when due: a new segment now, the state written in the background. */
  readonly maybeSnapshot: Effect.Effect<void>
  /** The snapshot being written, if one is. */
  readonly running: () => Fiber.RuntimeFiber<void> | undefined
}

/**
 * `fold` is the durable state (it only ever holds durable entries and never loses one);
 * `writer` is the segment writer the snapshot rotates.
 */
export const make = (
  config: SnapshotterConfig,
  fold: CounterMap,
  writer: SegmentWriter,
  tally: WalTally
): Effect.Effect<Snapshotter, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { io, maxRecordBytes, walDir } = config
    const clock = yield* Effect.clock
    let lastSnapshotAt = yield* Clock.currentTimeMillis
    let nextSnapshotNotBefore = 0
    let snapshotFiber: Fiber.RuntimeFiber<void> | undefined = undefined
    const runner = yield* FiberSet.make<void, never>()

    /**
     * Writes the fold's first `count` entries (all it held when segment `seq` began) as
     * snapshot `seq`, a chunk at a time straight from the fold, with no copy of the state:
     * an entry that grew meanwhile is written with totals that are durable in segment
     * `seq` or later, which replay merges anyway.
     */
    const writeSnapshot = (seq: number, count: number) =>
      Effect.gen(function*() {
        const final = path.join(walDir, WalDir.snapshotFile(seq))
        const tmp = `${final}.tmp`
        const fd = yield* call(walDir, `cannot create snapshot ${tmp}`, () => io.open(tmp, "w"))
        let bytes = 0
        yield* Effect.gen(function*() {
          yield* callSync(walDir, "snapshot write failed", () => io.write(fd, SNAPSHOT_MAGIC, 0))
          bytes = MAGIC_BYTES
          const perWrite = Math.max(1, Math.floor(maxRecordBytes / 64))
          for (let i = 0; i < count; i += perWrite) {
            const chunk = encodeEntries(fold.entriesAt(i, Math.min(perWrite, count - i)), maxRecordBytes)
            const at = bytes
            yield* callSync(walDir, "snapshot write failed", () => io.write(fd, chunk, at))
            bytes += chunk.length
            yield* Effect.yieldNow()
          }
          const end = encodeSnapshotEnd(count, seq)
          const at = bytes
          yield* callSync(walDir, "snapshot write failed", () => io.write(fd, end, at))
          bytes += end.length
          yield* call(walDir, "snapshot fsync failed", () => io.fsync(fd))
        }).pipe(
          Effect.ensuring(Effect.promise(() => io.close(fd).catch(() => undefined))),
          Effect.tapError(() => Effect.promise(() => io.unlink(tmp).catch(() => undefined)))
        )
        yield* call(walDir, `cannot rename snapshot ${tmp}`, () => io.rename(tmp, final))
        yield* call(walDir, `cannot sync WAL directory ${walDir}`, () => io.syncDir(walDir))
        tally.snapshots++
        tally.bytesWritten += bytes
        yield* Metric.incrementBy(WalMetrics.bytesTotal, bytes)
        // compaction: everything before segment `seq` is in the snapshot now
        const listing = yield* Effect.try({ try: () => WalDir.list(walDir), catch: walError("cannot list the WAL") })
        const obsolete = [
          ...listing.segments.filter((s) => s < seq).map(WalDir.segmentFile),
          ...listing.snapshots.filter((s) => s < seq).map(WalDir.snapshotFile)
        ]
        for (const name of obsolete) yield* call(walDir, `cannot delete ${name}`, () => io.unlink(path.join(walDir, name)))
        if (obsolete.length > 0) yield* call(walDir, `cannot sync WAL directory ${walDir}`, () => io.syncDir(walDir))
        yield* Effect.logDebug(`WAL snapshot ${WalDir.snapshotFile(seq)}: ${count} entries, ${bytes} bytes; deleted ${obsolete.length} files`)
      })

    const dueNow = (): boolean => {
      const now = clock.unsafeCurrentTimeMillis()
      const records = writer.state.recordsSinceSnapshot
      return snapshotFiber === undefined && records > 0 && now >= nextSnapshotNotBefore &&
        (records >= config.everyRecords || now - lastSnapshotAt >= config.intervalMs)
    }

    const maybeSnapshot = Effect.gen(function*() {
      if (!dueNow()) return
      const now = yield* Clock.currentTimeMillis
      const rotated = yield* Effect.either(writer.rotate)
      if (rotated._tag === "Left") {
        nextSnapshotNotBefore = now + Duration.toMillis(SNAPSHOT_RETRY)
        return yield* Effect.logWarning(`WAL snapshot postponed: ${rotated.left.message}`)
      }
      const seq = writer.state.segment.seq
      const count = fold.entryCount
      const pendingRecords = writer.state.recordsSinceSnapshot
      writer.state.recordsSinceSnapshot = 0
      lastSnapshotAt = now
      snapshotFiber = yield* writeSnapshot(seq, count).pipe(
        Effect.catchAll((e) =>
          Effect.gen(function*() {
            writer.state.recordsSinceSnapshot += pendingRecords
            nextSnapshotNotBefore = (yield* Clock.currentTimeMillis) + Duration.toMillis(SNAPSHOT_RETRY)
            yield* Effect.logWarning(`WAL snapshot failed, retrying in ${Duration.format(SNAPSHOT_RETRY)}: ${e.message}`)
          })
        ),
        Effect.ensuring(Effect.sync(() => (snapshotFiber = undefined))),
        Effect.interruptible,
        FiberSet.run(runner)
      )
    })

    return { dueNow, maybeSnapshot, running: () => snapshotFiber }
  })
