/**
 * The layout of a WAL directory (`<data dir>/wal`) and a full read-only inspection of it,
 * shared by recovery (`WalFile`) and the offline tools (`WalTool`).
 *
 *     0000000000000001.wal            segments, numbered from 1, each a magic + records
 *                                     (the last one + zeros: space preallocated for records)
 *     snapshot-0000000000000007.snap  the whole state of every segment numbered < 7
 *     *.tmp                           a snapshot being written (removed at start)
 *
 * A snapshot numbered N is written after segment N was started, so segments < N are
 * covered by it and may be deleted; replay is the snapshot plus segments N, N+1, ... in
 * order (order does not even matter: entries merge by pointwise maximum).
 *
 * Damage is a torn tail only at the end of the last segment with no intact record after
 * it: the WAL writes one record per write+fdatasync, so a crash can tear only the record
 * being written, which nobody was told is durable. Anything else is corruption.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import type { EntrySink } from "./Fold.js"
import {
  decodeEntries,
  decodeSnapshotEnd,
  findIntactRecord,
  HEADER_BYTES,
  isRecord,
  KIND_ENTRIES,
  KIND_SNAPSHOT_END,
  MAGIC_BYTES,
  MAX_PAYLOAD_BYTES,
  PayloadError,
  type RecordAt,
  readRecord,
  SEGMENT_MAGIC,
  SNAPSHOT_MAGIC
} from "./Record.js"

export const WAL_SUBDIR = "wal"

const pad = (n: number) => n.toString().padStart(16, "0")
export const segmentFile = (seq: number) => `${pad(seq)}.wal`
export const snapshotFile = (seq: number) => `snapshot-${pad(seq)}.snap`

const SEGMENT_RE = /^(\d{16})\.wal$/
const SNAPSHOT_RE = /^snapshot-(\d{16})\.snap$/

export interface Listing {
  readonly segments: ReadonlyArray<number>
  readonly snapshots: ReadonlyArray<number>
  readonly temps: ReadonlyArray<string>
}

/** The WAL files in `walDir`, sorted by number; a missing directory is empty. */
export const list = (walDir: string): Listing => {
  let names: Array<string>
  try {
    names = fs.readdirSync(walDir)
  } catch (e) {
    if (typeof e === "object" && e !== null && "code" in e && e.code === "ENOENT") {
      return { segments: [], snapshots: [], temps: [] }
    }
    throw e
  }
  const segments: Array<number> = []
  const snapshots: Array<number> = []
  const temps: Array<string> = []
  for (const name of names) {
    const seg = SEGMENT_RE.exec(name)
    const snap = SNAPSHOT_RE.exec(name)
    if (seg !== null) segments.push(Number(seg[1]))
    else if (snap !== null) snapshots.push(Number(snap[1]))
    else if (name.endsWith(".tmp")) temps.push(name)
  }
  return {
    segments: segments.sort((a, b) => a - b),
    snapshots: snapshots.sort((a, b) => a - b),
    temps
  }
}

/** Where a file stops being readable. */
export interface Damage {
  readonly file: string
  readonly offset: number
  readonly why: string
  /** Bytes from `offset` to the end of the file: what cutting it back drops. */
  readonly bytes: number
  /** A torn write at the end of the last segment (cut off at start, with a warning). */
  readonly tornTail: boolean
}

export interface SegmentScan {
  readonly seq: number
  readonly file: string
  readonly size: number
  readonly records: number
  readonly entries: number
  /** The end of the last intact record: where appending continues, or where repair cuts. */
  readonly validEnd: number
  readonly damage: Damage | undefined
}

export interface SnapshotScan {
  readonly seq: number
  readonly file: string
  readonly size: number
  readonly entries: number
  readonly damage: Damage | undefined
}

/** The read buffer, reused across scans (scans are synchronous): see `scanFile`. */
const CHUNK_BYTES = 4 * 1024 * 1024
let sharedBuffer: Buffer | undefined

interface FileScan {
  readonly size: number
  /** The end of the last record `onRecord` accepted. */
  readonly validEnd: number
  readonly damage: { readonly offset: number; readonly why: string; readonly tornTail: boolean } | undefined
}

const isZero = (buf: Buffer): boolean => {
  for (let i = 0; i < buf.length; i++) if (buf[i] !== 0) return false
  return true
}

/**
 * Reads `file` (magic, then records) in chunks through one reused buffer — fresh memory for
 * a whole 64 MiB segment costs more in page faults than reading and checking it — giving
 * each intact record to `onRecord`, which returns why it is unacceptable, or undefined.
 * Where the tail can be torn (the last segment), zeros from a record boundary to the end
 * are where the file ends (the writer extends it with zeros ahead of its records and cuts
 * them off when it closes the segment; see `WalFile`), not damage. Damage is a torn tail when
 * `tailCanBeTorn`, the damage is a bad or partial record (not a bad header magic or an
 * unacceptable record) and no intact record follows it.
 */
const scanFile = (
  file: string,
  magic: Buffer,
  tailCanBeTorn: boolean,
  onRecord: (buf: Buffer, record: RecordAt) => string | undefined
): FileScan => {
  const fd = fs.openSync(file, "r")
  try {
    const size = fs.fstatSync(fd).size
    const damage = (offset: number, why: string, canBeTorn: boolean): FileScan => {
      let tornTail = false
      if (canBeTorn && tailCanBeTorn) {
        const rest = Buffer.allocUnsafe(size - offset)
        fs.readSync(fd, rest, 0, rest.length, offset)
        // zeros to the end of the last segment: space the writer preallocated, not damage
        if (offset >= MAGIC_BYTES && isZero(rest)) return { size, validEnd: offset, damage: undefined }
        tornTail = findIntactRecord(rest, 1) === undefined
      }
      return { size, validEnd: offset, damage: { offset, why, tornTail } }
    }
    if (size < MAGIC_BYTES) return damage(0, `a partial file header (${size} bytes)`, true)
    let buf = sharedBuffer ??= Buffer.allocUnsafe(CHUNK_BYTES)
    if (fs.readSync(fd, buf, 0, MAGIC_BYTES, 0) !== MAGIC_BYTES || !buf.subarray(0, MAGIC_BYTES).equals(magic)) {
      return damage(0, "not the expected file header", false)
    }
    /** The file offset of `buf[0]`. */
    let base = MAGIC_BYTES
    let filled = 0
    let at = 0
    const refill = () => {
      buf.copyWithin(0, at, filled)
      filled -= at
      base += at
      at = 0
      if (filled >= HEADER_BYTES) {
        const needed = HEADER_BYTES + buf.readUInt32LE(0)
        if (needed > buf.length && needed <= HEADER_BYTES + MAX_PAYLOAD_BYTES) {
          const bigger = Buffer.allocUnsafe(needed)
          buf.copy(bigger, 0, 0, filled)
          buf = bigger
        }
      }
      const n = fs.readSync(fd, buf, filled, Math.min(buf.length - filled, size - base - filled), base + filled)
      filled += n
      return n > 0
    }
    refill()
    while (base + at < size) {
      const r = readRecord(buf, at, filled)
      if (!isRecord(r)) {
        if (r.truncated && base + filled < size && refill()) continue
        return damage(base + at, r.why, true)
      }
      const why = onRecord(buf, r)
      if (why !== undefined) return damage(base + at, why, false)
      at = r.end
    }
    return { size, validEnd: size, damage: undefined }
  } finally {
    fs.closeSync(fd)
  }
}

/** Reads a segment, giving its entries to `sink`. */
export const scanSegment = (walDir: string, seq: number, isLast: boolean, sink: EntrySink): SegmentScan => {
  const file = segmentFile(seq)
  let records = 0
  let entries = 0
  const scan = scanFile(path.join(walDir, file), SEGMENT_MAGIC, isLast, (buf, r) => {
    if (r.kind !== KIND_ENTRIES) return `a record of unknown kind ${r.kind}`
    // (a record that passes its CRC but holds an invalid entry is corruption: whatever it
    // gave the sink before that is discarded by recovery, which refuses to start)
    try {
      entries += decodeEntries(buf, r.payloadStart, r.end, sink)
    } catch (e) {
      if (e instanceof PayloadError) return `an intact record holding ${e.message}`
      throw e
    }
    records++
    return undefined
  })
  return {
    seq,
    file,
    size: scan.size,
    records,
    entries,
    validEnd: scan.validEnd,
    damage: scan.damage === undefined ? undefined : { file, ...scan.damage, bytes: scan.size - scan.damage.offset }
  }
}

/** Reads a snapshot; it must end with a SNAPSHOT_END record that matches what came before. */
export const scanSnapshot = (walDir: string, seq: number, sink: EntrySink): SnapshotScan => {
  const file = snapshotFile(seq)
  let entries = 0
  let ended = false
  const scan = scanFile(path.join(walDir, file), SNAPSHOT_MAGIC, false, (buf, r) => {
    if (ended) return "a record after the end record"
    try {
      if (r.kind === KIND_ENTRIES) {
        entries += decodeEntries(buf, r.payloadStart, r.end, sink)
        return undefined
      }
      if (r.kind === KIND_SNAPSHOT_END) {
        const end = decodeSnapshotEnd(buf, r.payloadStart, r.end)
        if (end.entryCount !== entries || end.coveredSegment !== seq) {
          return `an end record for ${end.entryCount} entries of segment ${end.coveredSegment}`
        }
        ended = true
        return undefined
      }
      return `a record of unknown kind ${r.kind}`
    } catch (e) {
      if (e instanceof PayloadError) return `an intact record holding ${e.message}`
      throw e
    }
  })
  const damage = scan.damage !== undefined
    ? { file, ...scan.damage, bytes: scan.size - scan.damage.offset }
    : ended
    ? undefined
    : { file, offset: scan.size, why: "no end record (an incomplete snapshot)", bytes: 0, tornTail: false }
  return { seq, file, size: scan.size, entries, damage }
}

export interface Inspection {
  readonly walDir: string
  /** The newest snapshot, if any. */
  readonly snapshot: SnapshotScan | undefined
  /** Snapshots older than the newest (left by an interrupted compaction). */
  readonly olderSnapshots: ReadonlyArray<number>
  /** Segments covered by the snapshot (left by an interrupted compaction). */
  readonly coveredSegments: ReadonlyArray<number>
  /** The segments to replay, in order. */
  readonly segments: ReadonlyArray<SegmentScan>
  /** Segment numbers that should exist between the snapshot and the last segment but do not. */
  readonly missing: ReadonlyArray<number>
  readonly temps: ReadonlyArray<string>
  /** Every record's entries were given to the sink. */
  readonly records: number
  readonly entries: number
}

/** Damage that recovery must not repair silently: not a torn tail, or a missing file. */
export const corruption = (i: Inspection): Damage | undefined => {
  if (i.snapshot?.damage !== undefined) return i.snapshot.damage
  if (i.missing.length > 0) {
    return {
      file: segmentFile(i.missing[0]!),
      offset: 0,
      why: `missing segment file${i.missing.length > 1 ? "s" : ""} ${i.missing.map(segmentFile).join(", ")}`,
      bytes: 0,
      tornTail: false
    }
  }
  for (const s of i.segments) if (s.damage !== undefined && !s.damage.tornTail) return s.damage
  return undefined
}

/**
 * Reads the whole WAL directory: the newest snapshot and every later segment, giving every
 * decoded entry to `sink` (snapshot first). Stops at nothing: damage is reported per file,
 * intact records of damaged files up to the damage are still given.
 */
export const inspect = (walDir: string, sink: EntrySink): Inspection => {
  const listing = list(walDir)
  const snapSeq = listing.snapshots.at(-1)
  const snapshot = snapSeq === undefined ? undefined : scanSnapshot(walDir, snapSeq, sink)
  const first = snapSeq ?? 1
  const live = listing.segments.filter((s) => s >= first)
  const missing: Array<number> = []
  let expected = first
  for (const s of live) {
    for (; expected < s; expected++) missing.push(expected)
    expected = s + 1
  }
  const segments = live.map((seq, i) => scanSegment(walDir, seq, i === live.length - 1, sink))
  let records = 0
  let entries = snapshot?.entries ?? 0
  for (const s of segments) {
    records += s.records
    entries += s.entries
  }
  return {
    walDir,
    snapshot,
    olderSnapshots: listing.snapshots.slice(0, -1),
    coveredSegments: listing.segments.filter((s) => s < first),
    segments,
    missing,
    temps: listing.temps,
    records,
    entries
  }
}
