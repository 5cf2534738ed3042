/**
 * The on-disk format shared by WAL segments and snapshots.
 *
 * A file starts with an 8-byte magic (`DCWAL001` for a segment, `DCSNAP01` for a
 * snapshot) followed by records:
 *
 *     u32le payload length | u32le CRC32(payload) | u32le CRC32(the 8 bytes before) | payload
 *
 * (a segment may end in zeros after its last record: space its writer preallocated; an
 * all-zero header never passes its checksum, so zeros cannot be read as a record)
 *
 * The header has its own checksum, so a reader can tell a record start from noise in O(1)
 * (used to decide whether damage is a torn tail or has intact records after it), and a
 * flipped length bit is caught before any payload is read. CRC32 is zlib's (IEEE).
 *
 * A payload starts with a kind byte. `ENTRIES` (1) is followed by entries, each
 *
 *     u8 name length | name (ASCII) | u8 replica length | replica (ASCII) | uvarint inc | uvarint dec
 *
 * (uvarint: LEB128, at most 8 bytes, at most 2^53-1). `SNAPSHOT_END` (2), only in
 * snapshots, is followed by `uvarint entry count | uvarint covered segment` and proves the
 * snapshot complete. Decoding validates every byte: names and replica ids must match their
 * schemas' character sets and lengths, so a record that passes its CRC but was written by
 * something else still cannot put an invalid entry into the state.
 */
import { crc32 as zlibCrc32 } from "node:zlib"
import type { CounterName } from "../../crdt/CounterName.js"
import type { Entry } from "../../crdt/Entry.js"
import type { ReplicaId } from "../../crdt/ReplicaId.js"
import type { EntrySink } from "./Fold.js"

export const HEADER_BYTES = 12
export const MAGIC_BYTES = 8
/** No record payload is larger: a length field above it is damage, not a record. */
export const MAX_PAYLOAD_BYTES = 16 * 1024 * 1024
export const SEGMENT_MAGIC = Buffer.from("DCWAL001", "latin1")
export const SNAPSHOT_MAGIC = Buffer.from("DCSNAP01", "latin1")

export const KIND_ENTRIES = 1
export const KIND_SNAPSHOT_END = 2

/** The largest encoding of one entry: 1 + 128 + 1 + 64 + 8 + 8. */
export const MAX_ENTRY_BYTES = 210

// ---------------------------------------------------------------------------------------
// CRC32

/** Slicing-by-8 tables: `T[k * 256 + b]` is the CRC of byte b followed by k zero bytes. */
const T = (() => {
  const t = new Int32Array(256 * 8)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    t[n] = c
  }
  for (let n = 0; n < 256; n++) {
    for (let k = 1; k < 8; k++) t[k * 256 + n] = (t[(k - 1) * 256 + n]! >>> 8) ^ t[t[(k - 1) * 256 + n]! & 0xff]!
  }
  return t
})()

/**
 * CRC32 (zlib's) of `buf[start, end)`. Records are mostly tens of bytes, where a call into
 * zlib costs more than the checksum: a byte loop below 16 bytes, slicing-by-8 up to 1 KiB
 * (fewer steps per byte than the byte loop for records of tens of bytes), zlib beyond.
 */
export const crc32 = (buf: Uint8Array, start: number, end: number): number => {
  const len = end - start
  if (len > 1024) return zlibCrc32(buf.subarray(start, end))
  let c = -1
  let i = start
  if (len >= 16) {
    for (; i + 8 <= end; i += 8) {
      const a = (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24)) ^ c
      c = T[1792 + (a & 0xff)]! ^ T[1536 + ((a >>> 8) & 0xff)]! ^ T[1280 + ((a >>> 16) & 0xff)]! ^
        T[1024 + (a >>> 24)]! ^ T[768 + buf[i + 4]!]! ^ T[512 + buf[i + 5]!]! ^ T[256 + buf[i + 6]!]! ^ T[buf[i + 7]!]!
    }
  }
  for (; i < end; i++) c = T[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8)
  return (c ^ -1) >>> 0
}

// ---------------------------------------------------------------------------------------
// validation tables

const NAME_CHAR = new Uint8Array(256)
const REPLICA_CHAR = new Uint8Array(256)
for (const ch of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") {
  NAME_CHAR[ch.charCodeAt(0)] = 1
  REPLICA_CHAR[ch.charCodeAt(0)] = 1
}
for (const ch of "._:-") NAME_CHAR[ch.charCodeAt(0)] = 1
for (const ch of "_-") REPLICA_CHAR[ch.charCodeAt(0)] = 1

const validString = (s: string, table: Uint8Array, max: number): boolean => {
  if (s.length < 1 || s.length > max) return false
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c > 255 || table[c] === 0) return false
  }
  return true
}

const validCount = (n: number): boolean => Number.isSafeInteger(n) && n >= 0

/** Why an entry cannot be written, or undefined when it can. */
export const invalidEntry = (e: Entry): string | undefined => {
  if (!validString(e[0], NAME_CHAR, 128)) return `invalid counter name ${JSON.stringify(e[0])}`
  if (!validString(e[1], REPLICA_CHAR, 64)) return `invalid replica id ${JSON.stringify(e[1])}`
  if (!validCount(e[2]) || !validCount(e[3])) return `invalid totals ${e[2]}/${e[3]}`
  return undefined
}

// ---------------------------------------------------------------------------------------
// encoding

const writeUvarint = (buf: Buffer, pos: number, v: number): number => {
  while (v >= 0x80) {
    buf[pos++] = (v % 0x80) | 0x80
    v = Math.floor(v / 0x80)
  }
  buf[pos++] = v
  return pos
}

/** u8 length, then the characters (validated ASCII). */
const writeAscii = (buf: Buffer, pos: number, s: string): number => {
  buf[pos++] = s.length
  for (let i = 0; i < s.length; i++) buf[pos++] = s.charCodeAt(i)
  return pos
}

const sealRecord = (buf: Buffer, start: number, end: number): void => {
  const len = end - start - HEADER_BYTES
  buf.writeUInt32LE(len, start)
  buf.writeUInt32LE(crc32(buf, start + HEADER_BYTES, end), start + 4)
  buf.writeUInt32LE(crc32(buf, start, start + 8), start + 8)
}

const uvarintBytes = (v: number): number => {
  let n = 1
  while (v >= 0x80) {
    v = Math.floor(v / 0x80)
    n++
  }
  return n
}

/**
 * Frames entries as ENTRIES records of at most `maxPayloadBytes` payload each, back to back
 * in one exactly sized buffer. Entries must be valid (`invalidEntry`).
 */
export const encodeEntries = (entries: ReadonlyArray<Entry>, maxPayloadBytes: number): Buffer => {
  const perRecord = Math.max(1, Math.floor((Math.min(maxPayloadBytes, MAX_PAYLOAD_BYTES) - 1) / MAX_ENTRY_BYTES))
  const records = Math.max(1, Math.ceil(entries.length / perRecord))
  let size = records * (HEADER_BYTES + 1)
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!
    size += 2 + e[0].length + e[1].length + uvarintBytes(e[2]) + uvarintBytes(e[3])
  }
  const buf = Buffer.allocUnsafe(size)
  let pos = 0
  let i = 0
  do {
    const start = pos
    pos += HEADER_BYTES
    buf[pos++] = KIND_ENTRIES
    const stop = Math.min(entries.length, i + perRecord)
    for (; i < stop; i++) {
      const e = entries[i]!
      pos = writeAscii(buf, pos, e[0])
      pos = writeAscii(buf, pos, e[1])
      pos = writeUvarint(buf, pos, e[2])
      pos = writeUvarint(buf, pos, e[3])
    }
    sealRecord(buf, start, pos)
  } while (i < entries.length)
  return buf
}

/** The SNAPSHOT_END record. */
export const encodeSnapshotEnd = (entryCount: number, coveredSegment: number): Buffer => {
  const buf = Buffer.alloc(HEADER_BYTES + 1 + 16)
  let pos = HEADER_BYTES
  buf[pos++] = KIND_SNAPSHOT_END
  pos = writeUvarint(buf, pos, entryCount)
  pos = writeUvarint(buf, pos, coveredSegment)
  sealRecord(buf, 0, pos)
  return buf.subarray(0, pos)
}

// ---------------------------------------------------------------------------------------
// decoding

/** A record found at an offset: its payload is `buf[payloadStart, end)`. */
export interface RecordAt {
  readonly kind: number
  readonly payloadStart: number
  readonly end: number
}

/** Why the bytes at an offset are not a record. `truncated`: they run past the end. */
export interface NotARecord {
  readonly why: string
  readonly truncated: boolean
}

export const isRecord = (r: RecordAt | NotARecord): r is RecordAt => "kind" in r

/** Reads the record at `offset`, checking both checksums. */
export const readRecord = (buf: Buffer, offset: number, limit: number = buf.length): RecordAt | NotARecord => {
  const left = limit - offset
  if (left < HEADER_BYTES) return { why: `a partial record header (${left} bytes)`, truncated: true }
  const view = buf
  const len = view.readUInt32LE(offset)
  if (crc32(buf, offset, offset + 8) !== view.readUInt32LE(offset + 8)) {
    return { why: "a record header whose checksum does not match", truncated: false }
  }
  if (len === 0 || len > MAX_PAYLOAD_BYTES) return { why: `a record length of ${len} bytes`, truncated: false }
  const end = offset + HEADER_BYTES + len
  if (end > limit) {
    return { why: `a partial record (${left} of ${HEADER_BYTES + len} bytes)`, truncated: true }
  }
  if (crc32(buf, offset + HEADER_BYTES, end) !== view.readUInt32LE(offset + 4)) {
    return { why: "a record whose payload checksum does not match", truncated: false }
  }
  return { kind: buf[offset + HEADER_BYTES]!, payloadStart: offset + HEADER_BYTES + 1, end }
}

/**
 * Whether an intact record starts anywhere in `buf[from, limit)`: damage followed by an
 * intact record is not a torn tail. Header checksums make each probe O(1).
 */
export const findIntactRecord = (buf: Buffer, from: number, limit: number = buf.length): number | undefined => {
  for (let at = from; at + HEADER_BYTES <= limit; at++) {
    const r = readRecord(buf, at, limit)
    if (isRecord(r)) return at
  }
  return undefined
}

/**
 * Interned strings by content: replay decodes the same few names and replica ids millions
 * of times, and looking one up by a hash computed during validation is several times
 * cheaper than allocating a new string each time. Bounded: cleared when full.
 */
const INTERN_MAX = 8192
const interned = new Map<number, string>()

export class PayloadError extends Error {}

/**
 * Validates `buf[start, start + len)` against `table` and returns it as a string (interned).
 * Throws `PayloadError` naming `what` on an invalid character.
 */
const readToken = (buf: Buffer, start: number, len: number, table: Uint8Array, what: string): string => {
  let h = len
  for (let i = start; i < start + len; i++) {
    const c = buf[i]!
    if (table[c] === 0) throw new PayloadError(`${what} with an invalid character`)
    h = Math.imul(h ^ c, 0x01000193)
  }
  const hit = interned.get(h)
  if (hit !== undefined && hit.length === len) {
    let same = true
    for (let i = 0; i < len; i++) {
      if (hit.charCodeAt(i) !== buf[start + i]) {
        same = false
        break
      }
    }
    if (same) return hit
  }
  const s = buf.toString("latin1", start, start + len)
  if (interned.size >= INTERN_MAX) interned.clear()
  interned.set(h, s)
  return s
}

/** The position after the last `readUvarint` (avoids allocating a pair per number). */
let varintEnd = 0

const readUvarint = (buf: Uint8Array, pos: number, end: number): number => {
  let result = 0
  let mul = 1
  for (let n = 0; n < 8; n++) {
    if (pos >= end) throw new PayloadError("an entry cut short")
    const b = buf[pos++]!
    result += (b & 0x7f) * mul
    if (b < 0x80) {
      if (result > Number.MAX_SAFE_INTEGER) throw new PayloadError(`a total above 2^53-1`)
      varintEnd = pos
      return result
    }
    mul *= 0x80
  }
  throw new PayloadError("a varint longer than 8 bytes")
}

/**
 * Decodes an ENTRIES payload `buf[start, end)` (after the kind byte), giving each entry to
 * `sink`; returns how many. Throws `PayloadError`.
 */
export const decodeEntries = (buf: Buffer, start: number, end: number, sink: EntrySink): number => {
  let pos = start
  let count = 0
  while (pos < end) {
    const nameLen = buf[pos++]!
    if (nameLen < 1 || nameLen > 128 || pos + nameLen > end) throw new PayloadError(`a counter name length of ${nameLen}`)
    const name = readToken(buf, pos, nameLen, NAME_CHAR, "a counter name") as CounterName
    pos += nameLen
    if (pos >= end) throw new PayloadError("an entry cut short")
    const replicaLen = buf[pos++]!
    if (replicaLen < 1 || replicaLen > 64 || pos + replicaLen > end) {
      throw new PayloadError(`a replica id length of ${replicaLen}`)
    }
    const replica = readToken(buf, pos, replicaLen, REPLICA_CHAR, "a replica id") as ReplicaId
    pos += replicaLen
    const inc = readUvarint(buf, pos, end)
    const dec = readUvarint(buf, varintEnd, end)
    pos = varintEnd
    sink(name, replica, inc, dec)
    count++
  }
  return count
}

/** Decodes a SNAPSHOT_END payload. Throws `PayloadError`. */
export const decodeSnapshotEnd = (
  buf: Uint8Array,
  start: number,
  end: number
): { readonly entryCount: number; readonly coveredSegment: number } => {
  const entryCount = readUvarint(buf, start, end)
  const coveredSegment = readUvarint(buf, varintEnd, end)
  if (varintEnd !== end) throw new PayloadError("trailing bytes after the snapshot end")
  return { entryCount, coveredSegment }
}
