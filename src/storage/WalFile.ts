/**
 * `Wal` on files in `<data dir>/wal` (layout and format: `internal/WalDir.ts`,
 * `internal/Record.ts`).
 *
 * Write path: callers hand their entries to a bounded batcher (`append`, or `offer` with a
 * callback); the committer takes everything handed over so far (group commit), coalesces
 * it by `(name, replica)` (entries are totals, so the maximum is all that matters), adds
 * whatever lazily appended state is pending, writes it as ONE record and fdatasyncs it. It
 * is pipelined: the moment a batch is durable, everything queued meanwhile is written and
 * its fdatasync started, and only then are the durable batch's callers answered, so the
 * disk works while they are. That loop runs with plain callbacks (`pipeline`); the rest
 * (a cut-back, a rotation, a batch larger than `maxRecordBytes`, written as several
 * records each with its own fdatasync, a snapshot) goes through Effect steps, a batch at a
 * time. Only one write or fdatasync is ever in flight, so a crash can only tear the record
 * being written, which is what makes torn-tail detection exact.
 *
 * Segments are extended with zeros (`preallocateBytes` at a time) when a record reaches
 * their end: a record written over them changes no file size, so its fdatasync needs no
 * journal commit. Recovery reads zeros after the last record of the last segment as its
 * end; a segment is cut to its records when it is closed.
 *
 * A failed write or fdatasync (ENOSPC, EIO, EROFS) fails every append of the batch, and
 * every append queued behind it, with `WalError`, and cuts the segment back to where the
 * batch began at once, so a failed append never reappears later; the WAL keeps working
 * once the disk does.
 *
 * Snapshots: after `snapshotEveryRecords` records or `snapshotInterval`, whichever first,
 * the committer starts a new segment N and a background fiber writes the folded durable
 * state as `snapshot-N.snap` (temp, fsync, rename, fsync of the directory), then deletes
 * the segments before N and older snapshots.
 *
 * Recovery (when the layer is built): newest snapshot + later segments. A torn tail is cut
 * off with a warning; other damage fails with `WalCorrupted` naming file and offset.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Clock, Duration, Effect, Exit, Fiber, FiberSet, Layer, Metric, Queue } from "effect"
import { CounterMap } from "../crdt/CounterMap.js"
import type { Entry } from "../crdt/Entry.js"
import { DataDir } from "./DataDir.js"
import { Batcher, type Waiter } from "./internal/Batcher.js"
import { Coalescer } from "./internal/Coalescer.js"
import { type FileIo, nodeIo } from "./internal/FileIo.js"
import { errorCode, errorMessage, fsyncDir } from "./internal/fsync.js"
import {
  encodeEntries,
  encodeSnapshotEnd,
  invalidEntry,
  MAGIC_BYTES,
  MAX_ENTRY_BYTES,
  MAX_PAYLOAD_BYTES,
  SEGMENT_MAGIC,
  SNAPSHOT_MAGIC
} from "./internal/Record.js"
import * as Prometheus from "../observability/Prometheus.js"
import * as WalDir from "./internal/WalDir.js"
import { Wal, WalCorrupted, WalError, type WalStats } from "./Wal.js"
import * as WalMetrics from "./WalMetrics.js"

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
   * file-size update, so no journal commit, which made it about 2x faster on ext4 here.
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

/** The most appends one group commit takes. */
const MAX_BATCH = 4096
/** How long after a failed snapshot the next one may be tried. */
const SNAPSHOT_RETRY = Duration.seconds(30)
/** How long closing waits for the last flush and a running snapshot. */
const CLOSE_TIMEOUT = Duration.seconds(30)

const reasonOf = (e: unknown): WalError["reason"] => {
  switch (errorCode(e)) {
    case "ENOSPC":
    case "EDQUOT":
      return "NoSpace"
    case "EROFS":
      return "ReadOnly"
    default:
      return "Io"
  }
}

const walError = (what: string) => (e: unknown) =>
  new WalError({ reason: reasonOf(e), message: `${what}: ${errorMessage(e)}`, cause: e })

/** A command line that tells the operator how to proceed after `WalCorrupted`. */
export const repairHint = (dataDir: string): string =>
  `Inspect it with \`dcounter wal check --data-dir ${dataDir}\`; ` +
  `\`dcounter wal repair --data-dir ${dataDir}\` cuts the damaged file back to its last intact record ` +
  `(the node then starts as a new replica, so nothing is counted twice).`

interface Pending {
  readonly entries: ReadonlyArray<Entry>
  /** 1 for an `append`, 0 for a flush. */
  readonly appends: number
}

type Caller = Waiter<Pending, void, WalError>

interface Segment {
  readonly seq: number
  readonly fd: number
  /** Where the next record goes: the end of the last durable record. */
  size: number
  /** The file's length: records up to `size`, zeros after it (preallocated). */
  allocated: number
}

/** Recovery: reads the WAL directory into `fold`; returns the segment to append to. */
const recover = Effect.fn("WalFile.recover")(function*(dataDir: string, walDir: string, fold: CounterMap) {
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
    const clock = yield* Effect.clock
    const zeros = Buffer.alloc(Math.max(0, Math.min(segmentBytes, options.preallocateBytes ?? defaults.preallocateBytes)))
    const snapshotEveryRecords = Math.max(1, options.snapshotEveryRecords ?? defaults.snapshotEveryRecords)
    const snapshotIntervalMs = Duration.toMillis(options.snapshotInterval ?? defaults.snapshotInterval)

    /** The durable state: everything in the snapshot and the segments after it. */
    const fold = new CounterMap()
    let segment = yield* recover(dataDir.path, walDir, fold)

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

    // statistics
    let appends = 0
    let records = 0
    let syncs = 0
    let bytesWritten = 0
    let snapshots = 0
    const syncSeconds: Array<number> = []
    let syncIndex = 0

    // committer state
    let closed = false
    /** Set after a failed batch: bytes past `segment.size` may exist and must be cut first. */
    let dirty = false
    let recordsSinceSnapshot = 0
    let lastSnapshotAt = yield* Clock.currentTimeMillis
    let nextSnapshotNotBefore = 0
    let snapshotFiber: Fiber.RuntimeFiber<void> | undefined = undefined
    const lazy = new Coalescer()
    /** Runs the background snapshot writer; closed after the final flush (finalizers run LIFO). */
    const snapshotRunner = yield* FiberSet.make<void, never>()

    const batcher = new Batcher<Pending, void, WalError>(
      Math.max(1, options.maxPendingAppends ?? defaults.maxPendingAppends),
      MAX_BATCH
    )
    const lazySignal = yield* Queue.dropping<void>(1)

    const call = <A>(what: string, f: () => Promise<A>) =>
      Effect.tryPromise({ try: f, catch: walError(`${what} (${walDir})`) })
    const callSync = <A>(what: string, f: () => A) => Effect.try({ try: f, catch: walError(`${what} (${walDir})`) })

    /** Counts an fdatasync started at `t0` (performance.now()) that just succeeded. */
    const synced = (t0: number): void => {
      const seconds = (performance.now() - t0) / 1000
      syncs++
      if (syncSeconds.length < WalMetrics.SYNC_SECONDS_KEPT) syncSeconds.push(seconds)
      else syncSeconds[syncIndex++ % WalMetrics.SYNC_SECONDS_KEPT] = seconds
      WalMetrics.fsyncSeconds.unsafeUpdate(seconds, [])
    }

    /** fdatasync of `fd`, timed. */
    const datasync = (fd: number) =>
      Effect.suspend(() => {
        const t0 = performance.now()
        return call("fdatasync failed", () => io.datasync(fd)).pipe(Effect.tap(() => Effect.sync(() => synced(t0))))
      })

    /** Closes the current segment and starts the next (file, header, fdatasync, directory fsync). */
    const rotate = Effect.gen(function*() {
      // the old segment ends at its last record: no failed bytes, no preallocated zeros
      // (recovery reads zeros as an end only in the last segment)
      yield* cutToRecords
      const seq = segment.seq + 1
      const file = path.join(walDir, WalDir.segmentFile(seq))
      const fd = yield* call(`cannot create WAL segment ${file}`, () => io.open(file, "w+"))
      yield* Effect.gen(function*() {
        yield* callSync(`cannot write WAL segment ${file}`, () => io.write(fd, SEGMENT_MAGIC, 0))
        yield* datasync(fd)
        yield* call(`cannot sync WAL directory ${walDir}`, () => io.syncDir(walDir))
      }).pipe(Effect.tapError(() => Effect.promise(() => io.close(fd).catch(() => undefined))))
      const old = segment
      segment = { seq, fd, size: MAGIC_BYTES, allocated: MAGIC_BYTES }
      yield* call(`cannot close WAL segment ${old.seq}`, () => io.close(old.fd)).pipe(
        Effect.catchAll((e) => Effect.logWarning(e.message))
      )
    })

    /** Cuts the segment to its records: failed bytes (see `dirty`) and preallocated zeros. */
    const cutToRecords = Effect.gen(function*() {
      yield* cutBackFailed
      if (segment.allocated > segment.size) {
        yield* call("cannot cut a WAL segment to its records", () => io.truncate(segment.fd, segment.size))
        segment.allocated = segment.size
        yield* datasync(segment.fd)
      }
    })

    /**
     * The file now ends at `end` (a record just written there): writes zeros after it, made
     * durable by that record's fdatasync. Best effort: where the disk has no room for them
     * the record is written all the same (a partial run of zeros is still a clean end).
     */
    const extendAfter = (fd: number, end: number): void => {
      segment.allocated = end
      if (zeros.length === 0) return
      try {
        io.write(fd, zeros, end)
        segment.allocated = end + zeros.length
      } catch {
        // no room to preallocate: the next record tries again
      }
    }

    /** The most entries one record holds. */
    const perRecord = Math.max(1, Math.floor((maxRecordBytes - 1) / MAX_ENTRY_BYTES))

    /** Cuts a failed batch's bytes (`dirty`) back off the segment, durably. */
    const cutBackFailed = Effect.suspend(() => {
      if (!dirty) return Effect.void
      return Effect.gen(function*() {
        yield* call("cannot cut back a failed write", () => io.truncate(segment.fd, segment.size))
        segment.allocated = segment.size
        yield* datasync(segment.fd)
        dirty = false
      })
    })

    /** Records up to `end` are durable: the segment grows to it. */
    const durableUpTo = (end: number, recordCount: number): void => {
      const bytes = end - segment.size
      segment.size = end
      dirty = false
      records += recordCount
      recordsSinceSnapshot += recordCount
      bytesWritten += bytes
      WalMetrics.bytesTotal.unsafeUpdate(bytes, [])
    }

    /**
     * Writes `entries` durably, one record per write+fdatasync, all or nothing, after a
     * pending cut-back and a due rotation. A failure leaves `dirty` set: the records written
     * are cut off before the next write.
     */
    const writeDurably = (entries: ReadonlyArray<Entry>) =>
      Effect.gen(function*() {
        yield* cutBackFailed
        if (segment.size >= segmentBytes) yield* rotate
        let position = segment.size
        let written = 0
        for (let i = 0; i < entries.length; i += perRecord) {
          const bytes = encodeEntries(entries.slice(i, i + perRecord), maxRecordBytes)
          dirty = true
          yield* callSync("write failed", () => io.write(segment.fd, bytes, position))
          position += bytes.length
          if (position > segment.allocated) extendAfter(segment.fd, position)
          yield* datasync(segment.fd)
          written++
        }
        durableUpTo(position, written)
      })

    /** A batch taken from the batcher: its callers and the entries to write for them. */
    interface Batch {
      readonly callers: ReadonlyArray<Caller>
      /** the callers' entries and the pending lazy state, coalesced */
      readonly entries: ReadonlyArray<Entry>
      /** the lazily appended entries it carries (given back to `lazy` if it fails) */
      readonly lazyEntries: ReadonlyArray<Entry>
      readonly appendCount: number
    }

    /** Callers taken from the batcher whose outcome is not settled yet (failed on interrupt). */
    let unsettled: Array<Caller> = []

    /** Takes everything queued, with the pending lazy state; undefined if nothing is queued. */
    const takeBatch = (callers: ReadonlyArray<Caller> = batcher.takeNow()): Batch | undefined => {
      if (callers.length === 0) return undefined
      unsettled = [...callers]
      const coalescer = new Coalescer()
      let appendCount = 0
      for (const p of callers) {
        coalescer.add(p.item.entries)
        appendCount += p.item.appends
      }
      const lazyEntries = lazy.take()
      coalescer.add(lazyEntries)
      return { callers, entries: coalescer.take(), lazyEntries, appendCount }
    }

    /** The batch is durable: into the fold and the counters (its callers are answered apart). */
    const committed = (batch: Batch): void => {
      fold.apply(batch.entries)
      appends += batch.appendCount
      WalMetrics.appendsTotal.unsafeUpdate(batch.appendCount, [])
      if (batch.appendCount > 0) WalMetrics.groupCommitSize.unsafeUpdate(batch.appendCount, [])
    }

    /** Resumes every caller, even when one of them throws (rethrown after the others). */
    const answer = (callers: ReadonlyArray<Caller>): void => {
      let defect: { readonly cause: unknown } | undefined
      for (const p of callers) {
        try {
          p.resume(Exit.void)
        } catch (cause) {
          defect ??= { cause }
        }
      }
      if (defect !== undefined) throw defect.cause
    }

    /** Fails the batch and every append queued behind it (see `Wal.append`). */
    const failAll = (batch: Batch, error: WalError): void => {
      lazy.add(batch.lazyEntries)
      const failure = Exit.fail(error)
      const failed = [...unsettled, ...batcher.drain()]
      unsettled = []
      for (const p of failed) p.resume(failure)
    }

    // at once after a failure, not at the next write: a restart must not find the failed
    // records (if the disk refuses this too, the next write tries again, and so does close)
    const cutBackNow = cutBackFailed.pipe(
      Effect.catchAll((e) => Effect.logWarning(`WAL: ${e.message}; will retry before the next write`))
    )

    /** The callback-level path takes it: one record, and no cut-back or rotation first. */
    const fitsFastPath = (batch: Batch): boolean =>
      batch.entries.length > 0 && batch.entries.length <= perRecord && !dirty && segment.size < segmentBytes

    /** Bumped by every write: a late completion of an abandoned write leaves the segment alone. */
    let writeToken = 0

    /**
     * Writes a one-record batch (see `fitsFastPath`) with plain callbacks: the record (and
     * zeros past it when it reaches the end of the file), then its fdatasync; `done` gets
     * the outcome. All or nothing, like `writeDurably`.
     */
    const writeFast = (batch: Batch, done: (error: WalError | undefined) => void): void => {
      const token = ++writeToken
      const fd = segment.fd
      const start = segment.size
      const bytes = encodeEntries(batch.entries, maxRecordBytes)
      const end = start + bytes.length
      dirty = true
      try {
        io.write(fd, bytes, start)
      } catch (e) {
        // (dirty stays set: the bytes past segment.size are cut before the next write)
        return done(walError(`write failed (${walDir})`)(e))
      }
      if (end > segment.allocated) extendAfter(fd, end)
      const t0 = performance.now()
      io.datasync(fd).then(
        () => {
          synced(t0)
          if (token === writeToken) durableUpTo(end, 1)
          done(undefined)
        },
        (e: unknown) => done(walError(`fdatasync failed (${walDir})`)(e))
      )
    }

    /**
     * The pipelined commit at the callback level, with no fiber step per batch: when a batch
     * is durable, everything queued meanwhile is coalesced and its write + fdatasync begun
     * BEFORE the durable batch's callers are answered, so the disk works while they are.
     * (The same loop as Effect steps promoted each request's objects to the old generation:
     * 2-3 MB per scavenge, and 12 % of the CPU in the collector.) Once nothing is queued it
     * waits at the callback level too: the next offer starts the next batch (in a microtask,
     * so it is not written from inside the offer). Resumes the committer with the next batch
     * when it needs the general path (a failure's cut-back, a rotation, several records, a
     * snapshot, an empty flush).
     */
    const pipeline = (first: Batch) =>
      Effect.async<Batch | undefined>((resume) => {
        let ended = false
        const end = (next: Effect.Effect<Batch | undefined>) => {
          ended = true
          resume(next)
        }
        /** unregisters the wait for the next offer */
        let unpark: (() => void) | undefined
        const park = (): void => {
          unpark = batcher.onNextOffer(() => {
            unpark = undefined
            queueMicrotask(restart)
          })
        }
        const restart = (): void => {
          if (ended) return
          try {
            start(takeBatch())
          } catch (defect) {
            end(Effect.die(defect))
          }
        }
        const start = (next: Batch | undefined): void => {
          if (next === undefined) return park()
          if (!fitsFastPath(next)) return end(Effect.succeed(next))
          run(next)
        }
        const run = (batch: Batch): void =>
          writeFast(batch, (error) => {
            if (ended) return
            try {
              settle(batch, error)
            } catch (defect) {
              end(Effect.die(defect))
            }
          })
        const settle = (batch: Batch, error: WalError | undefined): void => {
          if (error !== undefined) {
            failAll(batch, error)
            return end(Effect.as(cutBackNow, undefined))
          }
          unsettled = []
          // the durable batch is answered whatever happens to the next one
          try {
            committed(batch)
            if (snapshotDueNow()) {
              // a snapshot starts a new segment: nothing may be in flight on this one
              return end(Effect.zipRight(maybeSnapshot, Effect.sync(() => takeBatch())))
            }
            start(takeBatch())
          } finally {
            answer(batch.callers)
          }
        }
        run(first)
        return Effect.sync(() => {
          ended = true
          unpark?.()
        })
      })

    /**
     * One run of the committer, from the first batch until nothing is queued: the callback
     * path (`pipeline`) while batches fit it, the general one (empty flushes, cut-backs,
     * rotations, several records) a batch at a time otherwise.
     */
    const commitFrom = (first: ReadonlyArray<Caller>) =>
      Effect.gen(function*() {
        let batch = takeBatch(first)
        while (batch !== undefined) {
          if (fitsFastPath(batch)) {
            batch = yield* pipeline(batch)
            continue
          }
          const result = yield* Effect.either(batch.entries.length === 0 ? Effect.void : writeDurably(batch.entries))
          if (result._tag === "Left") {
            failAll(batch, result.left)
            return yield* cutBackNow
          }
          unsettled = []
          try {
            committed(batch)
          } finally {
            answer(batch.callers)
          }
          yield* maybeSnapshot
          batch = takeBatch()
        }
      })

    /** After a defect or an interrupt: no write in flight is trusted; cut back before the next. */
    const abandonWrites = (): void => {
      writeToken++
      dirty = true
    }

    /**
     * Writes the fold's first `count` entries (all it held when segment `seq` began) as
     * snapshot `seq`, a chunk at a time straight from the fold, with no copy of the state:
     * the fold only ever holds durable entries and never loses one, so an entry that grew
     * meanwhile is written with totals that are durable in segment `seq` or later, which
     * replay merges anyway.
     */
    const writeSnapshot = (seq: number, count: number) =>
      Effect.gen(function*() {
        const final = path.join(walDir, WalDir.snapshotFile(seq))
        const tmp = `${final}.tmp`
        const fd = yield* call(`cannot create snapshot ${tmp}`, () => io.open(tmp, "w"))
        let bytes = 0
        yield* Effect.gen(function*() {
          yield* callSync("snapshot write failed", () => io.write(fd, SNAPSHOT_MAGIC, 0))
          bytes = MAGIC_BYTES
          const perWrite = Math.max(1, Math.floor(maxRecordBytes / 64))
          for (let i = 0; i < count; i += perWrite) {
            const chunk = encodeEntries(fold.entriesAt(i, Math.min(perWrite, count - i)), maxRecordBytes)
            const at = bytes
            yield* callSync("snapshot write failed", () => io.write(fd, chunk, at))
            bytes += chunk.length
            yield* Effect.yieldNow()
          }
          const end = encodeSnapshotEnd(count, seq)
          const at = bytes
          yield* callSync("snapshot write failed", () => io.write(fd, end, at))
          bytes += end.length
          yield* call("snapshot fsync failed", () => io.fsync(fd))
        }).pipe(
          Effect.ensuring(Effect.promise(() => io.close(fd).catch(() => undefined))),
          Effect.tapError(() => Effect.promise(() => io.unlink(tmp).catch(() => undefined)))
        )
        yield* call(`cannot rename snapshot ${tmp}`, () => io.rename(tmp, final))
        yield* call(`cannot sync WAL directory ${walDir}`, () => io.syncDir(walDir))
        snapshots++
        bytesWritten += bytes
        yield* Metric.incrementBy(WalMetrics.bytesTotal, bytes)
        // compaction: everything before segment `seq` is in the snapshot now
        const listing = yield* Effect.try({ try: () => WalDir.list(walDir), catch: walError("cannot list the WAL") })
        const obsolete = [
          ...listing.segments.filter((s) => s < seq).map(WalDir.segmentFile),
          ...listing.snapshots.filter((s) => s < seq).map(WalDir.snapshotFile)
        ]
        for (const name of obsolete) yield* call(`cannot delete ${name}`, () => io.unlink(path.join(walDir, name)))
        if (obsolete.length > 0) yield* call(`cannot sync WAL directory ${walDir}`, () => io.syncDir(walDir))
        yield* Effect.logDebug(`WAL snapshot ${WalDir.snapshotFile(seq)}: ${count} entries, ${bytes} bytes; deleted ${obsolete.length} files`)
      })

    /** Whether a snapshot should start now. */
    const snapshotDueNow = (): boolean => {
      const now = clock.unsafeCurrentTimeMillis()
      return snapshotFiber === undefined && recordsSinceSnapshot > 0 && now >= nextSnapshotNotBefore &&
        (recordsSinceSnapshot >= snapshotEveryRecords || now - lastSnapshotAt >= snapshotIntervalMs)
    }

    /** Starts a snapshot when due: a new segment now, the state written in the background. */
    const maybeSnapshot = Effect.gen(function*() {
      if (!snapshotDueNow()) return
      const now = yield* Clock.currentTimeMillis
      const rotated = yield* Effect.either(rotate)
      if (rotated._tag === "Left") {
        nextSnapshotNotBefore = now + Duration.toMillis(SNAPSHOT_RETRY)
        return yield* Effect.logWarning(`WAL snapshot postponed: ${rotated.left.message}`)
      }
      const seq = segment.seq
      const count = fold.entryCount
      const pendingRecords = recordsSinceSnapshot
      recordsSinceSnapshot = 0
      lastSnapshotAt = now
      snapshotFiber = yield* writeSnapshot(seq, count).pipe(
        Effect.catchAll((e) =>
          Effect.gen(function*() {
            recordsSinceSnapshot += pendingRecords
            nextSnapshotNotBefore = (yield* Clock.currentTimeMillis) + Duration.toMillis(SNAPSHOT_RETRY)
            yield* Effect.logWarning(`WAL snapshot failed, retrying in ${Duration.format(SNAPSHOT_RETRY)}: ${e.message}`)
          })
        ),
        Effect.ensuring(Effect.sync(() => (snapshotFiber = undefined))),
        Effect.interruptible,
        FiberSet.run(snapshotRunner)
      )
    })

    const closedError = () => new WalError({ reason: "Closed", message: `the WAL in ${walDir} is closed` })

    // the committer: one write+fdatasync at a time, everything queued meanwhile is the next batch
    const committer = yield* batcher.next.pipe(
      Effect.flatMap((batch) =>
        commitFrom(batch).pipe(
          Effect.catchAllCause((cause) =>
            Effect.gen(function*() {
              yield* Effect.logError("WAL committer failed on a batch", cause)
              abandonWrites()
              const error = Exit.fail(new WalError({ reason: "Io", message: "internal error in the WAL committer", cause }))
              const failed = [...unsettled, ...batcher.drain()]
              unsettled = []
              for (const p of failed) p.resume(error)
              yield* cutBackNow
            })
          ),
          Effect.onInterrupt(() =>
            Effect.sync(() => {
              abandonWrites()
              const error = Exit.fail(closedError())
              const failed = unsettled
              unsettled = []
              for (const p of failed) p.resume(error)
            })
          )
        )
      ),
      Effect.forever,
      // interruptible even when the layer is built inside an uninterruptible region
      Effect.interruptible,
      Effect.forkScoped
    )

    /** Hands entries to the committer and waits for their batch to be durable. */
    const submit = (entries: ReadonlyArray<Entry>, appendCount: number) => batcher.submit({ entries, appends: appendCount })

    /** Hands entries to the committer (`resume` gets the outcome), unless closed or invalid. */
    const offer = (entries: ReadonlyArray<Entry>, appendCount: number, resume: (exit: Exit.Exit<void, WalError>) => void) => {
      if (closed) return resume(Exit.fail(closedError()))
      for (const e of entries) {
        const why = invalidEntry(e)
        if (why !== undefined) return resume(Exit.die(new Error(`Wal.append: ${why}`)))
      }
      batcher.offer({ entries, appends: appendCount }, resume)
    }
    const enqueue = (entries: ReadonlyArray<Entry>, appendCount: number) =>
      Effect.async<void, WalError>((resume) => offer(entries, appendCount, resume))

    // lazy flusher: within `flushInterval` of the first lazy append, make it durable
    let lazyFailing = false
    yield* Queue.take(lazySignal).pipe(
      Effect.zipRight(Effect.sleep(flushInterval)),
      Effect.zipRight(Effect.suspend(() =>
        lazy.size === 0 && !lazyFailing ? Effect.void : enqueue([], 0).pipe(
          Effect.zipRight(Effect.suspend(() => {
            if (!lazyFailing) return Effect.void
            lazyFailing = false
            return Effect.logInfo("WAL lazy flush works again")
          })),
          Effect.catchAll((e) =>
            Effect.gen(function*() {
              if (closed) return
              if (!lazyFailing) yield* Effect.logWarning(`WAL lazy flush failed, retrying every ${Duration.format(flushInterval)}: ${e.message}`)
              lazyFailing = true
              yield* lazySignal.offer(undefined)
            })
          )
        )
      )),
      Effect.forever,
      // interruptible even when the layer is built inside an uninterruptible region
      Effect.interruptible,
      Effect.forkScoped
    )

    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        closed = true
        const flushed = yield* submit([], 0).pipe(Effect.timeout(CLOSE_TIMEOUT), Effect.either)
        if (flushed._tag === "Left") yield* Effect.logError("WAL flush on close failed", flushed.left)
        yield* Fiber.interrupt(committer)
        // a clean stop leaves the segment ending at its records
        yield* cutToRecords.pipe(
          Effect.catchAll((e) =>
            Effect.logError(`WAL: ${e.message}${dirty ? "; a failed append may be replayed at the next start" : ""}`)
          )
        )
        if (snapshotFiber !== undefined) {
          yield* Fiber.join(snapshotFiber).pipe(Effect.timeout(CLOSE_TIMEOUT), Effect.ignore)
        }
        const closedFailure = Exit.fail(closedError())
        for (const p of batcher.drain()) p.resume(closedFailure)
        yield* call("cannot close the WAL segment", () => io.close(segment.fd)).pipe(
          Effect.catchAll((e) => Effect.logWarning(e.message))
        )
      })
    )

    const stats: Effect.Effect<WalStats> = Effect.sync(() => ({
      appends,
      records,
      syncs,
      bytesWritten,
      snapshots,
      syncSeconds: [...syncSeconds]
    }))

    return Wal.of({
      // computed when read (once, by the store, before any append), not kept for the
      // node's life: a million-entry array would cost more than the fold itself
      get recovered() {
        return fold.entries()
      },
      recoveredMap: () => fold.clone(),
      append: (entries) => enqueue(entries, 1),
      offer: (entries, resume) => offer(entries, 1, resume),
      appendLazy: (entries) =>
        Effect.suspend(() => {
          if (closed) return Effect.fail(closedError())
          for (const e of entries) {
            const why = invalidEntry(e)
            if (why !== undefined) return Effect.dieMessage(`Wal.appendLazy: ${why}`)
          }
          lazy.add(entries)
          return lazySignal.offer(undefined).pipe(Effect.asVoid)
        }),
      flush: enqueue([], 0),
      stats
    })
  })

/**
 * The file WAL in `<data dir>/wal`, recovered when built. Fails with `WalCorrupted` on
 * damage other than a torn tail and with `WalError` when the directory cannot be read.
 */
export const layer = (options: WalFileOptions = {}): Layer.Layer<Wal, WalCorrupted | WalError, DataDir> =>
  Layer.scoped(Wal, make(options))
