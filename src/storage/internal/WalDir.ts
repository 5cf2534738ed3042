/**
 * The layout of a WAL directory (`<data dir>/wal`) and a full read-only inspection of it,
 * shared by recovery (`WalFile`) and the offline tools (`WalTool`).
 *
 *     0000000000000001.wal            segments, numbered from 1, each a magic + records
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
import type { Entry } from "../../crdt/Entry.js"
import {
  decodeEntries,
  decodeSnapshotEnd,
  findIntactRecord,
  isRecord,
  KIND_ENTRIES,
  KIND_SNAPSHOT_END,
  MAGIC_BYTES,
  PayloadError,
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

/** Reads a segment, giving its entries record by record to `onEntries`. */
export const scanSegment = (
  walDir: string,
  seq: number,
  isLast: boolean,
  onEntries: (entries: Array<Entry>) => void
): SegmentScan => {
  const file = segmentFile(seq)
  const buf = fs.readFileSync(path.join(walDir, file))
  const damageAt = (offset: number, why: string, canBeTorn: boolean): SegmentScan => ({
    seq,
    file,
    size: buf.length,
    records,
    entries,
    validEnd: offset,
    damage: {
      file,
      offset,
      why,
      bytes: buf.length - offset,
      tornTail: canBeTorn && isLast && findIntactRecord(buf, offset + 1) === undefined
    }
  })
  let records = 0
  let entries = 0
  if (buf.length < MAGIC_BYTES) return damageAt(0, `a partial file header (${buf.length} bytes)`, true)
  if (!buf.subarray(0, MAGIC_BYTES).equals(SEGMENT_MAGIC)) return damageAt(0, "not a dcounter WAL segment header", false)
  let offset = MAGIC_BYTES
  const batch: Array<Entry> = []
  while (offset < buf.length) {
    const r = readRecord(buf, offset)
    if (!isRecord(r)) return damageAt(offset, r.why, true)
    if (r.kind !== KIND_ENTRIES) return damageAt(offset, `a record of unknown kind ${r.kind}`, false)
    batch.length = 0
    try {
      decodeEntries(buf, r.payloadStart, r.end, batch)
    } catch (e) {
      if (e instanceof PayloadError) return damageAt(offset, `an intact record holding ${e.message}`, false)
      throw e
    }
    onEntries(batch)
    records++
    entries += batch.length
    offset = r.end
  }
  return { seq, file, size: buf.length, records, entries, validEnd: offset, damage: undefined }
}

/** Reads a snapshot; it must end with a SNAPSHOT_END record that matches what came before. */
export const scanSnapshot = (
  walDir: string,
  seq: number,
  onEntries: (entries: Array<Entry>) => void
): SnapshotScan => {
  const file = snapshotFile(seq)
  const buf = fs.readFileSync(path.join(walDir, file))
  let entries = 0
  const damageAt = (offset: number, why: string): SnapshotScan => ({
    seq,
    file,
    size: buf.length,
    entries,
    damage: { file, offset, why, bytes: buf.length - offset, tornTail: false }
  })
  if (buf.length < MAGIC_BYTES || !buf.subarray(0, MAGIC_BYTES).equals(SNAPSHOT_MAGIC)) {
    return damageAt(0, "not a dcounter snapshot header")
  }
  let offset = MAGIC_BYTES
  const batch: Array<Entry> = []
  while (offset < buf.length) {
    const r = readRecord(buf, offset)
    if (!isRecord(r)) return damageAt(offset, r.why)
    try {
      if (r.kind === KIND_ENTRIES) {
        batch.length = 0
        decodeEntries(buf, r.payloadStart, r.end, batch)
        onEntries(batch)
        entries += batch.length
      } else if (r.kind === KIND_SNAPSHOT_END) {
        const end = decodeSnapshotEnd(buf, r.payloadStart, r.end)
        if (end.entryCount !== entries || end.coveredSegment !== seq) {
          return damageAt(offset, `an end record for ${end.entryCount} entries of segment ${end.coveredSegment}`)
        }
        if (r.end !== buf.length) return damageAt(r.end, "bytes after the end record")
        return { seq, file, size: buf.length, entries, damage: undefined }
      } else {
        return damageAt(offset, `a record of unknown kind ${r.kind}`)
      }
    } catch (e) {
      if (e instanceof PayloadError) return damageAt(offset, `an intact record holding ${e.message}`)
      throw e
    }
    offset = r.end
  }
  return damageAt(offset, "no end record (an incomplete snapshot)")
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
  /** Every record's entries were given to `onEntries`. */
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
 * decoded batch of entries to `onEntries` (snapshot first). Stops at nothing: damage is
 * reported per file, intact records of damaged files up to the damage are still given.
 */
export const inspect = (walDir: string, onEntries: (entries: Array<Entry>) => void): Inspection => {
  const listing = list(walDir)
  const snapSeq = listing.snapshots.at(-1)
  const snapshot = snapSeq === undefined ? undefined : scanSnapshot(walDir, snapSeq, onEntries)
  const first = snapSeq ?? 1
  const live = listing.segments.filter((s) => s >= first)
  const missing: Array<number> = []
  let expected = first
  for (const s of live) {
    for (; expected < s; expected++) missing.push(expected)
    expected = s + 1
  }
  const segments = live.map((seq, i) => scanSegment(walDir, seq, i === live.length - 1, onEntries))
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
