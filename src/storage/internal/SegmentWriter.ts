/**
 * The file WAL's open segment and every write to it: records (one write + fdatasync each,
 * all or nothing for a batch), the zeros preallocated after them, the cut-back of a failed
 * write, rotation to the next segment. Only the committer writes records, one write or
 * fdatasync in flight at a time, so a crash can only tear the record being written; that
 * is what makes recovery's torn-tail detection exact.
 *
 * Segments are extended with zeros (`zeros.length` at a time) when a record reaches their
 * end: a record written over them changes no file size, so its fdatasync needs no journal
 * commit. Recovery reads zeros after the last record of the last segment as its end; a
 * segment is cut to its records when it is closed (rotation, close).
 *
 * A failed write leaves `dirty` set: the bytes past `segment.size` are cut off (durably)
 * before the next write, so a failed append never reappears after a restart.
 *
 * `writeFast` is written with plain callbacks, not Effect steps: it is the committer's
 * pipelined path, run once per group commit on the node's durable write path, where a
 * fiber step per batch costs more than the write itself. Everything rarer (cut-backs,
 * rotations, batches of several records) is an Effect.
 */
import * as path from "node:path"
import { Effect } from "effect"
import type { Entry } from "../../crdt/Entry.js"
import type { WalError } from "../Wal.js"
import * as WalMetrics from "../WalMetrics.js"
import type { FileIo } from "./FileIo.js"
import { encodeEntries, MAGIC_BYTES, MAX_ENTRY_BYTES, SEGMENT_MAGIC } from "./Record.js"
import { call, callSync, walError } from "./walError.js"
import * as WalDir from "./WalDir.js"
import * as WalTally from "./WalTally.js"

/** The segment records are appended to. */
export interface Segment {
  readonly seq: number
  readonly fd: number
  /** Where the next record goes: the end of the last durable record. */
  size: number
  /** The file's length: records up to `size`, zeros after it (preallocated). */
  allocated: number
}

export interface SegmentWriterConfig {
  readonly walDir: string
  readonly io: FileIo
  /** a segment is rotated once it holds this many bytes */
  readonly segmentBytes: number
  /** the largest record payload */
  readonly maxRecordBytes: number
  /** written after the records whenever they reach the end of the file (may be empty) */
  readonly zeros: Uint8Array
}

/** The writer's mutable state, shared with the committer and the snapshotter. */
export interface SegmentState {
  segment: Segment
  /** Set after a failed write: bytes past `segment.size` may exist and must be cut first. */
  dirty: boolean
  /** Records made durable since the last snapshot started. */
  recordsSinceSnapshot: number
  /** Bumped by every fast write: a late completion of an abandoned write leaves the segment alone. */
  writeToken: number
}

export interface SegmentWriter {
  readonly state: SegmentState
  /** The most entries one record holds. */
  readonly perRecord: number
  /** Whether `writeFast` may take `entryCount` entries now: one record, no cut-back or rotation first. */
  readonly fitsOneRecord: (entryCount: number) => boolean
  /**
   * Writes `entries` durably, one record per write + fdatasync, all or nothing, after a
   * pending cut-back and a due rotation.
   */
  readonly writeDurably: (entries: ReadonlyArray<Entry>) => Effect.Effect<void, WalError>
  /**
   * Writes entries that fit one record (see `fitsOneRecord`): the record (and zeros past
   * it when it reaches the end of the file), then its fdatasync; `done` gets the outcome.
   */
  readonly writeFast: (entries: ReadonlyArray<Entry>, done: (error: WalError | undefined) => void) => void
  /** Closes the current segment and starts the next (file, header, fdatasync, directory fsync). */
  readonly rotate: Effect.Effect<void, WalError>
  /** Cuts the segment to its records: failed bytes (see `dirty`) and preallocated zeros. */
  readonly cutToRecords: Effect.Effect<void, WalError>
  /** The cut-back of a failed write, at once; a refusal is logged and retried before the next write. */
  readonly cutBackNow: Effect.Effect<void>
  /** After a defect or an interrupt: no write in flight is trusted; cut back before the next. */
  readonly abandonWrites: () => void
}

export const make = (config: SegmentWriterConfig, tally: WalTally.WalTally, initial: Segment): SegmentWriter => {
  const { io, maxRecordBytes, segmentBytes, walDir, zeros } = config
  const state: SegmentState = { segment: initial, dirty: false, recordsSinceSnapshot: 0, writeToken: 0 }
  const perRecord = Math.max(1, Math.floor((maxRecordBytes - 1) / MAX_ENTRY_BYTES))

  /** fdatasync of `fd`, timed. */
  const datasync = (fd: number) =>
    Effect.suspend(() => {
      const t0 = performance.now()
      return call(walDir, "fdatasync failed", () => io.datasync(fd)).pipe(
        Effect.tap(() => Effect.sync(() => WalTally.synced(tally, (performance.now() - t0) / 1000)))
      )
    })

  /**
   * The file now ends at `end` (a record just written there): writes zeros after it, made
   * durable by that record's fdatasync. Best effort: where the disk has no room for them
   * the record is written all the same (a partial run of zeros is still a clean end).
   */
  const extendAfter = (fd: number, end: number): void => {
    state.segment.allocated = end
    if (zeros.length === 0) return
    try {
      io.write(fd, zeros, end)
      state.segment.allocated = end + zeros.length
    } catch {
      // no room to preallocate: the next record tries again
    }
  }

  /** Cuts a failed batch's bytes (`dirty`) back off the segment, durably. */
  const cutBackFailed = Effect.suspend(() => {
    if (!state.dirty) return Effect.void
    return Effect.gen(function*() {
      const segment = state.segment
      yield* call(walDir, "cannot cut back a failed write", () => io.truncate(segment.fd, segment.size))
      segment.allocated = segment.size
      yield* datasync(segment.fd)
      state.dirty = false
    })
  })

  const cutToRecords = Effect.gen(function*() {
    yield* cutBackFailed
    const segment = state.segment
    if (segment.allocated > segment.size) {
      yield* call(walDir, "cannot cut a WAL segment to its records", () => io.truncate(segment.fd, segment.size))
      segment.allocated = segment.size
      yield* datasync(segment.fd)
    }
  })

  const rotate = Effect.gen(function*() {
    // the old segment ends at its last record: no failed bytes, no preallocated zeros
    // (recovery reads zeros as an end only in the last segment)
    yield* cutToRecords
    const seq = state.segment.seq + 1
    const file = path.join(walDir, WalDir.segmentFile(seq))
    const fd = yield* call(walDir, `cannot create WAL segment ${file}`, () => io.open(file, "w+"))
    yield* Effect.gen(function*() {
      yield* callSync(walDir, `cannot write WAL segment ${file}`, () => io.write(fd, SEGMENT_MAGIC, 0))
      yield* datasync(fd)
      yield* call(walDir, `cannot sync WAL directory ${walDir}`, () => io.syncDir(walDir))
    }).pipe(Effect.tapError(() => Effect.promise(() => io.close(fd).catch(() => undefined))))
    const old = state.segment
    state.segment = { seq, fd, size: MAGIC_BYTES, allocated: MAGIC_BYTES }
    yield* call(walDir, `cannot close WAL segment ${old.seq}`, () => io.close(old.fd)).pipe(
      Effect.catchAll((e) => Effect.logWarning(e.message))
    )
  })

  /** Records up to `end` are durable: the segment grows to it. */
  const durableUpTo = (end: number, recordCount: number): void => {
    const bytes = end - state.segment.size
    state.segment.size = end
    state.dirty = false
    tally.records += recordCount
    state.recordsSinceSnapshot += recordCount
    tally.bytesWritten += bytes
    WalMetrics.bytesTotal.unsafeUpdate(bytes, [])
  }

  const writeDurably = (entries: ReadonlyArray<Entry>) =>
    Effect.gen(function*() {
      yield* cutBackFailed
      if (state.segment.size >= segmentBytes) yield* rotate
      const segment = state.segment
      let position = segment.size
      let written = 0
      for (let i = 0; i < entries.length; i += perRecord) {
        const bytes = encodeEntries(entries.slice(i, i + perRecord), maxRecordBytes)
        state.dirty = true
        const at = position
        yield* callSync(walDir, "write failed", () => io.write(segment.fd, bytes, at))
        position += bytes.length
        if (position > segment.allocated) extendAfter(segment.fd, position)
        yield* datasync(segment.fd)
        written++
      }
      durableUpTo(position, written)
    })

  const writeFast = (entries: ReadonlyArray<Entry>, done: (error: WalError | undefined) => void): void => {
    const token = ++state.writeToken
    const fd = state.segment.fd
    const start = state.segment.size
    const bytes = encodeEntries(entries, maxRecordBytes)
    const end = start + bytes.length
    state.dirty = true
    try {
      io.write(fd, bytes, start)
    } catch (e) {
      // (dirty stays set: the bytes past segment.size are cut before the next write)
      return done(walError(`write failed (${walDir})`)(e))
    }
    if (end > state.segment.allocated) extendAfter(fd, end)
    const t0 = performance.now()
    io.datasync(fd).then(
      () => {
        WalTally.synced(tally, (performance.now() - t0) / 1000)
        if (token === state.writeToken) durableUpTo(end, 1)
        done(undefined)
      },
      (e: unknown) => done(walError(`fdatasync failed (${walDir})`)(e))
    )
  }

  // at once after a failure, not at the next write: a restart must not find the failed
  // records (if the disk refuses this too, the next write tries again, and so does close)
  const cutBackNow = cutBackFailed.pipe(
    Effect.catchAll((e) => Effect.logWarning(`WAL: ${e.message}; will retry before the next write`))
  )

  return {
    state,
    perRecord,
    fitsOneRecord: (entryCount) =>
      entryCount > 0 && entryCount <= perRecord && !state.dirty && state.segment.size < segmentBytes,
    writeDurably,
    writeFast,
    rotate,
    cutToRecords,
    cutBackNow,
    abandonWrites: () => {
      state.writeToken++
      state.dirty = true
    }
  }
}
