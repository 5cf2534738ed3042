/**
 * `Wal` on files in `<data dir>/wal` (layout and format: `internal/WalDir.ts`,
 * `internal/Record.ts`): the public layer, composing the parts in `internal/`, each
 * owning one concern:
 *
 * - `Recovery`: newest snapshot + later segments into the durable state when the layer is
 *   built; a torn tail is cut off with a warning, other damage fails with `WalCorrupted`.
 * - `SegmentWriter`: the open segment and every write to it (records, preallocated zeros,
 *   cut-back of a failed write, rotation); one write or fdatasync in flight at a time.
 * - `Committer` (over `Batcher`): group commit, pipelined; a failed batch fails every
 *   append queued behind it.
 * - `Snapshotter`: snapshots of the durable state and compaction of the segments.
 * - `LazyFlusher`: coalesced lazy appends made durable within `flushInterval`.
 *
 * The port stays made of Effects: `append` and `flush` are `Callback`s, so the node's
 * write path runs them without a fiber (`Callback.run`) while everyone else yields them.
 * Closing the layer flushes, stops the committer, cuts the segment to its records, waits
 * for a running snapshot and answers whatever is left with `WalError` reason `Closed`.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Duration, Effect, Exit, Fiber, Layer } from "effect"
import { CounterMap } from "../crdt/CounterMap.js"
import type { Entry } from "../crdt/Entry.js"
import * as Callback from "../internal/Callback.js"
import * as Prometheus from "../observability/Prometheus.js"
import { DataDir } from "./DataDir.js"
import { Coalescer } from "./internal/Coalescer.js"
import * as Committer from "./internal/Committer.js"
import { type FileIo, nodeIo } from "./internal/FileIo.js"
import * as LazyFlusher from "./internal/LazyFlusher.js"
import { invalidEntry, MAX_ENTRY_BYTES, MAX_PAYLOAD_BYTES } from "./internal/Record.js"
import { recover } from "./internal/Recovery.js"
import * as SegmentWriter from "./internal/SegmentWriter.js"
import * as Snapshotter from "./internal/Snapshotter.js"
import { call, closedError } from "./internal/walError.js"
import * as WalDir from "./internal/WalDir.js"
import * as WalTally from "./internal/WalTally.js"
import { Wal, type WalCorrupted, type WalError } from "./Wal.js"

export { repairHint } from "./internal/Recovery.js"

export interface WalFileOptions {
  /** A segment is closed and a new one started once it holds this many bytes (default 64 MiB). */
  readonly segmentBytes?: number
  /** The largest record payload written; bigger batches become several records (default 1 MiB). */
  readonly maxRecordBytes?: number
  /** How long lazily appended entries may wait before they are made durable (default 50 ms). */
  readonly flushInterval?: Duration.DurationInput
  /** Snapshot after this many records since the last snapshot (default 100,000)... */
  readonly snapshotEveryRecords?: number
  /** ...or after this long with at least one record, whichever comes first (default 10 minutes). */
  readonly snapshotInterval?: Duration.DurationInput
  /**
   * Zeros written ahead of the records whenever they reach the end of the file (default
   * 1 MiB, at most `segmentBytes`): an fdatasync of a record written over them needs no
   * file-size update, so no journal commit (figures: docs/performance.md).
   */
  readonly preallocateBytes?: number
  /** Appends waiting for the committer before `append` itself waits (default 16,384). */
  readonly maxPendingAppends?: number
  /** Overrides of file operations, for fault-injection tests. */
  readonly io?: Partial<FileIo>
}

export const defaults = {
  segmentBytes: 64 * 1024 * 1024,
  maxRecordBytes: 1024 * 1024,
  preallocateBytes: 1024 * 1024,
  flushInterval: Duration.millis(50),
  snapshotEveryRecords: 100_000,
  snapshotInterval: Duration.minutes(10),
  maxPendingAppends: 16_384
} as const

/** How long closing waits for the last flush and a running snapshot. */
const CLOSE_TIMEOUT = Duration.seconds(30)

export const make = (options: WalFileOptions = {}) =>
  Effect.gen(function*() {
    const dataDir = yield* DataDir
    const walDir = path.join(dataDir.path, WalDir.WAL_SUBDIR)
    const io: FileIo = { ...nodeIo, ...options.io }
    const segmentBytes = options.segmentBytes ?? defaults.segmentBytes
    const maxRecordBytes = Math.min(
      MAX_PAYLOAD_BYTES,
      Math.max(MAX_ENTRY_BYTES + 1, options.maxRecordBytes ?? defaults.maxRecordBytes)
    )
    const flushInterval = Duration.decode(options.flushInterval ?? defaults.flushInterval)
    const zeros = Buffer.alloc(Math.max(0, Math.min(segmentBytes, options.preallocateBytes ?? defaults.preallocateBytes)))

    /** The durable state: everything in the snapshot and the segments after it. */
    const fold = new CounterMap()
    const initial = yield* recover(dataDir.path, walDir, fold)

    yield* Prometheus.collector(() => {
      const files = WalDir.list(walDir)
      let bytes = 0
      for (const name of [...files.segments.map(WalDir.segmentFile), ...files.snapshots.map(WalDir.snapshotFile)]) {
        try {
          bytes += fs.statSync(path.join(walDir, name)).size
        } catch {
          // removed by a snapshot between listing and stat: no longer part of the WAL
        }
      }
      return [
        Prometheus.gaugeFamily("dcounter_wal_segments", "WAL segment files on disk.", files.segments.length),
        Prometheus.gaugeFamily("dcounter_wal_snapshots", "WAL snapshot files on disk.", files.snapshots.length),
        Prometheus.gaugeFamily("dcounter_wal_disk_bytes", "Bytes of the WAL's segments and snapshots on disk (preallocated space included).", bytes)
      ]
    })

    const tally = WalTally.make()
    const writer = SegmentWriter.make({ walDir, io, segmentBytes, maxRecordBytes, zeros }, tally, initial)
    // made before the committer: its fibers are closed after the final flush (finalizers run LIFO)
    const snapshotter = yield* Snapshotter.make(
      {
        walDir,
        io,
        maxRecordBytes,
        everyRecords: Math.max(1, options.snapshotEveryRecords ?? defaults.snapshotEveryRecords),
        intervalMs: Duration.toMillis(options.snapshotInterval ?? defaults.snapshotInterval)
      },
      fold,
      writer,
      tally
    )
    const lazy = new Coalescer()
    const closedFailure = () => closedError(walDir)
    const { batcher, fiber: committer } = yield* Committer.make(
      { maxPendingAppends: options.maxPendingAppends ?? defaults.maxPendingAppends, closedError: closedFailure },
      { fold, writer, snapshotter, lazy, tally }
    )
    let closed = false

    /** Hands entries to the committer (`resume` gets the outcome), unless closed or invalid. */
    const offer = (entries: ReadonlyArray<Entry>, appendCount: number, resume: (exit: Exit.Exit<void, WalError>) => void) => {
      if (closed) return resume(Exit.fail(closedFailure()))
      for (const e of entries) {
        const why = invalidEntry(e)
        if (why !== undefined) return resume(Exit.die(new Error(`Wal.append: ${why}`)))
      }
      batcher.offer({ entries, appends: appendCount }, resume)
    }
    const flush = Callback.make<void, WalError>((resume) => offer([], 0, resume))

    const flusher = yield* LazyFlusher.make({ pending: lazy, flushInterval, flush, isClosed: () => closed })

    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        closed = true
        const flushed = yield* batcher.submit({ entries: [], appends: 0 }).pipe(Effect.timeout(CLOSE_TIMEOUT), Effect.either)
        if (flushed._tag === "Left") yield* Effect.logError("WAL flush on close failed", flushed.left)
        yield* Fiber.interrupt(committer)
        // a clean stop leaves the segment ending at its records
        yield* writer.cutToRecords.pipe(
          Effect.catchAll((e) =>
            Effect.logError(`WAL: ${e.message}${writer.state.dirty ? "; a failed append may be replayed at the next start" : ""}`)
          )
        )
        const snapshot = snapshotter.running()
        if (snapshot !== undefined) {
          yield* Fiber.join(snapshot).pipe(Effect.timeout(CLOSE_TIMEOUT), Effect.ignore)
        }
        const failure = Exit.fail(closedFailure())
        for (const p of batcher.drain()) p.resume(failure)
        const fd = writer.state.segment.fd
        yield* call(walDir, "cannot close the WAL segment", () => io.close(fd)).pipe(
          Effect.catchAll((e) => Effect.logWarning(e.message))
        )
      })
    )

    return Wal.of({
      // computed when read (once, by the store, before any append), not kept for the
      // node's life: a million-entry array would cost more than the fold itself
      get recovered() {
        return fold.entries()
      },
      recoveredMap: () => fold.clone(),
      append: (entries) => Callback.make((resume) => offer(entries, 1, resume)),
      appendLazy: (entries) =>
        Effect.suspend(() => {
          if (closed) return Effect.fail(closedFailure())
          for (const e of entries) {
            const why = invalidEntry(e)
            if (why !== undefined) return Effect.dieMessage(`Wal.appendLazy: ${why}`)
          }
          return flusher.add(entries)
        }),
      flush,
      stats: Effect.sync(() => WalTally.stats(tally))
    })
  })

/**
 * The file WAL in `<data dir>/wal`, recovered when built. Fails with `WalCorrupted` on
 * damage other than a torn tail and with `WalError` when the directory cannot be read.
 */
export const layer = (options: WalFileOptions = {}): Layer.Layer<Wal, WalCorrupted | WalError, DataDir> =>
  Layer.scoped(Wal, make(options))
