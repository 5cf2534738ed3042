/**
 * A map of named PN-counters: the whole replicated state of a dcounter cluster.
 *
 * State is a set of entries `(name, replica) -> {inc, dec}`; merge is the pointwise
 * maximum, so it is commutative, associative and idempotent. The class keeps its data in
 * mutable storage so the node's hot path updates one entry in O(1); every method that
 * changes it says so, and `clone` gives an independent copy. The free functions at the
 * bottom (`merge`, `fromEntries`, ...) are the pure view used by tests and tools.
 *
 * Layout: a node holds millions of entries, so they are not objects. Counter names are
 * kept once (`counterNames`: counter number -> name) and found through a hash index in a
 * typed array (`index`), replica ids in a small table (a cluster has few replicas);
 * everything else lives in typed arrays grown by half when full (a "slot" is one entry):
 *
 *   - per counter: its first slot, and the sums of its increments and decrements;
 *   - per slot: its counter, its replica, the next slot of the same counter, its older and
 *     newer neighbour in the version-ordered list (see below), and inc, dec and version.
 *
 * Counters and slots are never removed (totals only grow), so a counter or slot number is
 * stable for the map's life, and a slot's number is its creation order.
 *
 * Versions: every slot remembers the map's version at which it last grew, so
 * `deltaSince(v)` lists exactly the entries that changed after version `v`: merging that
 * delta into any replica that had seen version `v` yields the full state. Slots are also
 * kept in a doubly linked list ordered by version, so `deltaSince(v)` costs O(entries
 * changed since v), not O(state): the eager push after each write stays cheap on a large map.
 *
 * Digest: the sum modulo 2^256 of a 256-bit hash of each entry. A sum does not depend on
 * order, so equal states have equal digests however they were built, and it is kept up
 * to date incrementally: `digest()` hashes only the slots changed since the last call. The
 * contribution a slot had to the sum is taken out when it first grows after a digest (its
 * totals are still the hashed ones then), so no slot stores what it was hashed with.
 * The entry hash is not SHA-256 any more but a MurmurHash3-style 128-bit mix (spread to
 * 256 bits) computed in JS: rebuilding the digest of a million entries at start-up took
 * seconds with SHA-256, and the digest only has to tell states apart between nodes that
 * trust each other (not resist forgery). The digest string keeps its shape (64 hex
 * characters) but its value changed: every node of a cluster must run a build with the
 * same digest, or anti-entropy sees every state as different (and ships full states).
 */
import { Either } from "effect"
import type { CounterName } from "./CounterName.js"
import type { Entry } from "./Entry.js"
import { NameIndex, type PageRequest as NamePageRequest } from "./NameIndex.js"
import * as PNCounter from "./PNCounter.js"
import type { ReplicaId } from "./ReplicaId.js"

const NONE = -1

// per-slot Int32 fields, interleaved: [counter, replica, nextOfCounter, older, newer]
const S_COUNTER = 0
const S_REPLICA = 1
const S_NEXT = 2
const S_OLDER = 3
const S_NEWER = 4
const S_INTS = 5
// per-slot Float64 fields: [inc, dec, version] (inc at +0, dec at +1)
const S_VERSION = 2
const S_NUMS = 3
// per-counter Float64 fields: [sumInc, sumDec]
const C_NUMS = 2

const INITIAL_CAPACITY = 4

const grownCapacity = (capacity: number, needed: number): number =>
  Math.max(needed, capacity + (capacity >> 1) + INITIAL_CAPACITY)

const growInt32 = (a: Int32Array, length: number): Int32Array => {
  const b = new Int32Array(length)
  b.set(a)
  return b
}

const growFloat64 = (a: Float64Array, length: number): Float64Array => {
  const b = new Float64Array(length)
  b.set(a)
  return b
}

// ---------------------------------------------------------------------------------------
// entry hash (MurmurHash3 x86_128 over 32-bit words, then spread to 8 words)

const DIGEST_WORDS = 8
const TWO_32 = 4294967296
const C1 = 0x239b961b
const C2 = 0xab0e9789
const C3 = 0x38b34ae5
const C4 = 0xa1e38b93

const rotl = (x: number, r: number): number => (x << r) | (x >>> (32 - r))

const fmix = (h: number): number => {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/**
 * The words hashed for one entry: the name's characters two per word, its length, the
 * replica's 128-bit hash, inc and dec as two words each. Names are at most 128 characters
 * (longer ones only cost a bigger buffer).
 */
let words = new Uint32Array(80)
/** The last hash: 8 words. */
const hashOut = new Uint32Array(DIGEST_WORDS)

/** MurmurHash3 x86_128 of `words[0, n)` with `seed`, into `hashOut[0..3]`. */
const murmur128 = (n: number, seed: number): void => {
  let h1 = seed
  let h2 = seed
  let h3 = seed
  let h4 = seed
  let i = 0
  for (; i + 4 <= n; i += 4) {
    let k1 = words[i]!
    let k2 = words[i + 1]!
    let k3 = words[i + 2]!
    let k4 = words[i + 3]!
    k1 = Math.imul(rotl(Math.imul(k1, C1), 15), C2)
    h1 ^= k1
    h1 = (Math.imul(rotl(h1, 19) + h2, 5) + 0x561ccd1b) | 0
    k2 = Math.imul(rotl(Math.imul(k2, C2), 16), C3)
    h2 ^= k2
    h2 = (Math.imul(rotl(h2, 17) + h3, 5) + 0x0bcaa747) | 0
    k3 = Math.imul(rotl(Math.imul(k3, C3), 17), C4)
    h3 ^= k3
    h3 = (Math.imul(rotl(h3, 15) + h4, 5) + 0x96cd1c35) | 0
    k4 = Math.imul(rotl(Math.imul(k4, C4), 18), C1)
    h4 ^= k4
    h4 = (Math.imul(rotl(h4, 13) + h1, 5) + 0x32ac3b17) | 0
  }
  // the tail: up to 3 words
  const left = n - i
  if (left >= 3) h3 ^= Math.imul(rotl(Math.imul(words[i + 2]!, C3), 17), C4)
  if (left >= 2) h2 ^= Math.imul(rotl(Math.imul(words[i + 1]!, C2), 16), C3)
  if (left >= 1) h1 ^= Math.imul(rotl(Math.imul(words[i]!, C1), 15), C2)
  const len = n * 4
  h1 ^= len
  h2 ^= len
  h3 ^= len
  h4 ^= len
  h1 = (h1 + h2 + h3 + h4) | 0
  h2 = (h2 + h1) | 0
  h3 = (h3 + h1) | 0
  h4 = (h4 + h1) | 0
  h1 = fmix(h1)
  h2 = fmix(h2)
  h3 = fmix(h3)
  h4 = fmix(h4)
  h1 = (h1 + h2 + h3 + h4) | 0
  h2 = (h2 + h1) | 0
  h3 = (h3 + h1) | 0
  h4 = (h4 + h1) | 0
  hashOut[0] = h1
  hashOut[1] = h2
  hashOut[2] = h3
  hashOut[3] = h4
}

/** Puts `s` into `words` from `at`, two characters per word; returns the next free index. */
const putString = (s: string, at: number): number => {
  const n = s.length
  if (at + (n >> 1) + 16 > words.length) {
    const bigger = new Uint32Array(at + (n >> 1) + 64)
    bigger.set(words)
    words = bigger
  }
  let i = 0
  for (; i + 1 < n; i += 2) words[at++] = s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16)
  if (i < n) words[at++] = s.charCodeAt(i)
  words[at++] = n
  return at
}

/** The 128-bit hash of a replica id (kept in the replica table): 4 words appended to `out`. */
const replicaHash = (replica: string, out: Array<number>): void => {
  murmur128(putString(replica, 0), 0x5bd1e995)
  out.push(hashOut[0]!, hashOut[1]!, hashOut[2]!, hashOut[3]!)
}

/** The hash of one entry into `hashOut` (8 words). */
const entryHash = (name: string, replicaHashes: ReadonlyArray<number>, replica: number, inc: number, dec: number): void => {
  let n = putString(name, 0)
  const r = replica * 4
  words[n++] = replicaHashes[r]!
  words[n++] = replicaHashes[r + 1]!
  words[n++] = replicaHashes[r + 2]!
  words[n++] = replicaHashes[r + 3]!
  words[n++] = inc >>> 0
  words[n++] = Math.floor(inc / TWO_32)
  words[n++] = dec >>> 0
  words[n++] = Math.floor(dec / TWO_32)
  murmur128(n, 0x9747b28c)
  // spread to 256 bits: each upper word mixes two lanes with its own constant
  for (let i = 0; i < 4; i++) {
    hashOut[4 + i] = fmix((hashOut[i]! ^ Math.imul(i + 1, 0x9e3779b9)) + rotl(hashOut[(i + 1) & 3]!, 7 + i))
  }
}

/** The hash of a counter name in the name index (FNV-1a, then spread over every bit). */
const nameHash = (name: string): number => {
  let h = 0x811c9dc5 ^ name.length
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193)
  return fmix(h)
}

/** acc += hashOut (mod 2^256), little-endian 32-bit words. */
const addHash = (acc: Uint32Array): void => {
  let carry = 0
  for (let i = 0; i < DIGEST_WORDS; i++) {
    const s = acc[i]! + hashOut[i]! + carry
    acc[i] = s >>> 0
    carry = s > 0xffffffff ? 1 : 0
  }
}

/** acc -= hashOut (mod 2^256). */
const subHash = (acc: Uint32Array): void => {
  let borrow = 0
  for (let i = 0; i < DIGEST_WORDS; i++) {
    const d = acc[i]! - hashOut[i]! - borrow
    acc[i] = d >>> 0
    borrow = d < 0 ? 1 : 0
  }
}

const hex = (acc: Uint32Array): string => {
  let out = ""
  for (let i = DIGEST_WORDS - 1; i >= 0; i--) out += acc[i]!.toString(16).padStart(8, "0")
  return out
}

/** One page of `CounterMap.page`. */
export interface CounterPage {
  readonly counters: ReadonlyArray<{ readonly name: CounterName; readonly value: number }>
  /**
   * present when more counters follow: by name, the last name of this page; by recency, a
   * cursor (`r.` and base-36 numbers, within the name alphabet) that only this map resolves
   */
  readonly next?: CounterName
  /**
   * why the request's `after` was refused by recency (no counters then): not a cursor at all,
   * or a cursor of another map (another node's, or this node's before a restart)
   */
  readonly rejected?: { readonly reason: "NotACursor" | "OtherIssuer"; readonly message: string }
}

/** What `CounterMap.page` takes: a page by name (the default) or by recency of change. */
export interface PageRequest extends NamePageRequest {
  readonly order?: "name" | "recent" | undefined
}

/**
 * Most slots one page by recency looks at. A page of 1000 counters each written by a few
 * replicas fits; a rare prefix answers a short page with `next` instead of walking the map.
 */
export const RECENT_SCAN_LIMIT = 10_000

/** Where a walk by recency stopped (see `CounterMap.recentPage`). */
interface RecentCursor {
  /** the map that issued it */
  readonly epoch: number
  /** 1: counters last changed at most at `v0`, newest first; 2: changed after `v0`, oldest first */
  readonly phase: 1 | 2
  /** the map's version when the walk began */
  readonly v0: number
  /** the last slot looked at (NONE: none yet in this phase) */
  readonly slot: number
  /** that slot's version then (`v0` when `slot` is NONE): tells whether it moved since */
  readonly version: number
}

const formatCursor = (c: RecentCursor): string =>
  `r.${c.epoch.toString(36)}.${c.phase}.${c.v0.toString(36)}.${(c.slot + 1).toString(36)}.${c.version.toString(36)}`

const CURSOR = /^r\.([0-9a-z]{1,7})\.([12])\.([0-9a-z]{1,11})\.([0-9a-z]{1,11})\.([0-9a-z]{1,11})$/

const parseCursor = (s: string): RecentCursor | undefined => {
  const m = CURSOR.exec(s)
  if (m === null) return undefined
  const [epoch, v0, slot, version] = [m[1]!, m[3]!, m[4]!, m[5]!].map((x) => parseInt(x, 36))
  if (![epoch, v0, slot, version].every((n) => Number.isSafeInteger(n))) return undefined
  if (version! > v0! && m[2] === "1") return undefined
  return { epoch: epoch!, phase: m[2] === "1" ? 1 : 2, v0: v0!, slot: slot! - 1, version: version! }
}

// ---------------------------------------------------------------------------------------

export class CounterMap {
  /**
   * name -> counter number: open addressing with linear probing, each cell the counter
   * number + 1 (0: empty), at most half full: far less memory per name than a `Map`, which
   * matters at a million counters.
   */
  private index: Int32Array = new Int32Array(INITIAL_CAPACITY * 2)
  /** counter number -> name; its length is the number of counters */
  private counterNames: Array<CounterName> = []
  /** counter number -> its first slot */
  private firstSlot: Int32Array = new Int32Array(INITIAL_CAPACITY)
  /** counter number -> [sumInc, sumDec] */
  private sums: Float64Array = new Float64Array(INITIAL_CAPACITY * C_NUMS)

  /** replica id -> replica number */
  private replicaIndex = new Map<ReplicaId, number>()
  private replicaIds: Array<ReplicaId> = []
  /** 4 words per replica: the replica id's hash, part of every entry hash */
  private replicaHashes: Array<number> = []

  private slotCount = 0
  /** slot -> S_INTS int fields */
  private slotInts: Int32Array = new Int32Array(INITIAL_CAPACITY * S_INTS)
  /** slot -> S_NUMS number fields */
  private slotNums: Float64Array = new Float64Array(INITIAL_CAPACITY * S_NUMS)
  /** Oldest and newest slot of the version-ordered list. */
  private oldest = NONE
  private newest = NONE

  private currentVersion = 0
  private readonly digestSum = new Uint32Array(DIGEST_WORDS)
  /** The map version `digestSum` reflects: slots of a higher version are not in it. */
  private digestVersion = 0
  private digestCache: string = hex(new Uint32Array(DIGEST_WORDS))
  /**
   * Tells this map's recency cursors from another's (a node's map lives as long as its
   * process; versions start again after a restart): not a secret, only a mismatch check.
   */
  private readonly epoch = Math.floor(Math.random() * 0x7fffffff)
  /** The names in sorted order for `page` (cold until the first page; see NameIndex). */
  private readonly nameIndex = new NameIndex()

  /** Increases by one on every change; 0 for an empty map. */
  get version(): number {
    return this.currentVersion
  }

  /** The number of counters. */
  get size(): number {
    return this.counterNames.length
  }

  /** The number of entries, i.e. of (counter, replica) pairs: what `entries()` would return. */
  get entryCount(): number {
    return this.slotCount
  }

  names(): ReadonlyArray<CounterName> {
    return this.counterNames.slice()
  }

  has(name: CounterName): boolean {
    return this.counterOf(name) !== NONE
  }

  /** The counter's value; 0 for a counter never written. */
  value(name: CounterName): number {
    const c = this.counterOf(name)
    if (c === NONE) return 0
    const sumInc = this.sums[c * C_NUMS]!
    const sumDec = this.sums[c * C_NUMS + 1]!
    if (sumInc <= Number.MAX_SAFE_INTEGER && sumDec <= Number.MAX_SAFE_INTEGER) return sumInc - sumDec
    return PNCounter.value(this.counter(name))
  }

  totals(name: CounterName, replica: ReplicaId): PNCounter.Totals {
    const s = this.slotOf(name, replica)
    return s === NONE ? { inc: 0, dec: 0 } : { inc: this.slotNums[s * S_NUMS]!, dec: this.slotNums[s * S_NUMS + 1]! }
  }

  /** The counter as an immutable PN-counter value. */
  counter(name: CounterName): PNCounter.PNCounter {
    const c = this.counterOf(name)
    if (c === NONE) return PNCounter.empty
    // in creation order, as the slots were added
    const slots: Array<number> = []
    for (let s = this.firstSlot[c]!; s !== NONE; s = this.slotInts[s * S_INTS + S_NEXT]!) slots.push(s)
    const replicas = new Map<ReplicaId, PNCounter.Totals>()
    for (let i = slots.length - 1; i >= 0; i--) {
      const s = slots[i]!
      replicas.set(this.replicaIds[this.slotInts[s * S_INTS + S_REPLICA]!]!, {
        inc: this.slotNums[s * S_NUMS]!,
        dec: this.slotNums[s * S_NUMS + 1]!
      })
    }
    return { replicas }
  }

  /**
   * The entry a local write would produce: the replica's totals after adding `by`, or
   * `Overflow` when `by` is not a positive safe integer or when the entry or the counter's
   * sum would pass 2^53-1. Changes nothing.
   */
  prepare(
    name: CounterName,
    replica: ReplicaId,
    kind: "inc" | "dec",
    by: number
  ): Either.Either<Entry, PNCounter.Overflow> {
    if (!Number.isSafeInteger(by) || by <= 0) {
      return Either.left(new PNCounter.Overflow({ message: `by must be a positive safe integer, got ${by}` }))
    }
    const c = this.counterOf(name)
    const s = c === NONE ? NONE : this.slotOf(name, replica)
    const inc = s === NONE ? 0 : this.slotNums[s * S_NUMS]!
    const dec = s === NONE ? 0 : this.slotNums[s * S_NUMS + 1]!
    const current = kind === "inc" ? inc : dec
    const sum = c === NONE ? 0 : this.sums[c * C_NUMS + (kind === "inc" ? 0 : 1)]!
    if (current + by > Number.MAX_SAFE_INTEGER || sum + by > Number.MAX_SAFE_INTEGER) {
      return Either.left(
        new PNCounter.Overflow({
          message: `${kind === "inc" ? "incrementing" : "decrementing"} ${name} by ${by} would pass 2^53-1`
        })
      )
    }
    return Either.right(kind === "inc" ? [name, replica, inc + by, dec] : [name, replica, inc, dec + by])
  }

  /**
   * Merges entries into this map (mutates). Returns the entries that raised something,
   * with their resulting totals: exactly what a peer that had this map's previous state
   * needs to learn.
   */
  apply(entries: Iterable<Entry>): Array<Entry> {
    const changed: Array<Entry> = []
    for (const [name, replica, inc, dec] of entries) {
      const s = this.merge(name, replica, inc, dec)
      if (s !== NONE) changed.push([name, replica, this.slotNums[s * S_NUMS]!, this.slotNums[s * S_NUMS + 1]!])
    }
    return changed
  }

  /**
   * `apply` of one entry given as its parts, without allocating: for replay, which merges
   * millions of decoded entries. Mutates; returns whether it raised something.
   */
  applyOne(name: CounterName, replica: ReplicaId, inc: number, dec: number): boolean {
    return this.merge(name, replica, inc, dec) !== NONE
  }

  /** Every entry, oldest change first. */
  entries(): Array<Entry> {
    return this.deltaSince(0)
  }

  /**
   * The entries that changed after `version`, oldest change first. `deltaSince(0)` is the
   * full state. Costs O(result), not O(state).
   */
  deltaSince(version: number): Array<Entry> {
    const from = Number.isNaN(version) ? 0 : version
    if (from >= this.currentVersion) return []
    const ints = this.slotInts
    const nums = this.slotNums
    let first = this.newest
    if (first === NONE) return []
    let n = 1
    for (;;) {
      const older = ints[first * S_INTS + S_OLDER]!
      if (older === NONE || nums[older * S_NUMS + S_VERSION]! <= from) break
      first = older
      n++
    }
    const out = new Array<Entry>(n)
    let i = 0
    for (let s = first; s !== NONE; s = ints[s * S_INTS + S_NEWER]!) out[i++] = this.entryAt(s)
    return out
  }

  /**
   * Up to `max` entries in creation order, starting with the `position`-th entry ever
   * created (0: the first). Entries are never removed, so walking the positions from 0 to
   * `entryCount` in chunks, while the map keeps changing, sees every entry that existed
   * when the walk began, each with totals at least as high as it had then (a snapshot
   * written in the background needs exactly that, without a copy of the whole state).
   */
  entriesAt(position: number, max: number): Array<Entry> {
    const end = Math.min(this.slotCount, position + Math.max(0, max))
    const out: Array<Entry> = []
    for (let s = Math.max(0, position); s < end; s++) out.push(this.entryAt(s))
    return out
  }

  /**
   * A digest of the state (64 hex characters): equal states have equal digests whatever
   * order they were built in, and different states differ (barring an accident of about
   * 2^-128). Hashes only the entries changed since the previous call.
   */
  digest(): string {
    if (this.digestVersion === this.currentVersion) return this.digestCache
    const ints = this.slotInts
    const nums = this.slotNums
    for (let s = this.newest; s !== NONE && nums[s * S_NUMS + S_VERSION]! > this.digestVersion; s = ints[s * S_INTS + S_OLDER]!) {
      const i = s * S_INTS
      entryHash(
        this.counterNames[ints[i + S_COUNTER]!]!,
        this.replicaHashes,
        ints[i + S_REPLICA]!,
        nums[s * S_NUMS]!,
        nums[s * S_NUMS + 1]!
      )
      addHash(this.digestSum)
    }
    this.digestVersion = this.currentVersion
    this.digestCache = hex(this.digestSum)
    return this.digestCache
  }

  /** An independent copy with the same entries, versions and digest. */
  clone(): CounterMap {
    const m = new CounterMap()
    const counters = this.counterNames.length
    m.index = this.index.slice()
    m.counterNames = this.counterNames.slice()
    m.firstSlot = this.firstSlot.slice(0, Math.max(counters, INITIAL_CAPACITY))
    m.sums = this.sums.slice(0, Math.max(counters, INITIAL_CAPACITY) * C_NUMS)
    m.replicaIndex = new Map(this.replicaIndex)
    m.replicaIds = this.replicaIds.slice()
    m.replicaHashes = this.replicaHashes.slice()
    const slots = Math.max(this.slotCount, INITIAL_CAPACITY)
    m.slotCount = this.slotCount
    m.slotInts = this.slotInts.slice(0, slots * S_INTS)
    m.slotNums = this.slotNums.slice(0, slots * S_NUMS)
    m.oldest = this.oldest
    m.newest = this.newest
    m.currentVersion = this.currentVersion
    m.digestSum.set(this.digestSum)
    m.digestVersion = this.digestVersion
    m.digestCache = this.digestCache
    return m
  }

  /** `{name: value}` for every counter, sorted by name. */
  values(): Array<{ readonly name: CounterName; readonly value: number }> {
    return this.counterNames.slice().sort().map((name) => ({ name, value: this.value(name) }))
  }

  /**
   * One page of counters sorted by name (see `NameIndex`): at most `limit` counters after
   * `after` whose names start with `prefix`; `next` (the page's last name) when more follow.
   * With `order: "recent"`, most recently changed first (see `recentPage`).
   */
  page(request: PageRequest): CounterPage {
    if (request.order === "recent") return this.recentPage(request)
    const page = this.nameIndex.page(() => this.counterNames, request)
    const counters = page.names.map((name) => ({ name: name as CounterName, value: this.value(name as CounterName) }))
    return page.next === undefined ? { counters } : { counters, next: page.next as CounterName }
  }

  /**
   * One page of counters most recently changed first (`order: "recent"`): a counter's place
   * is the map version of its last change. No sort: the walk follows the version-ordered
   * slot list from the newest end and lists a counter at its newest slot (a counter has one
   * slot per replica that wrote it, so a slot of an older version is skipped by looking at
   * the few slots of its counter). Nothing is kept per counter for this.
   *
   * The cursor (`next`, passed back as `after`) names the slot the walk stopped at and the
   * map version when the walk began (`v0`), so the next page resumes in O(1) and pages stay
   * stable: the walk first lists, newest first, the counters whose last change is at most
   * `v0`; a counter changed after `v0` (while the pages are read) has left that part, and is
   * listed in a second part, after the first, oldest change first (a change during that part
   * moves it ahead of the walk again, so it cannot be skipped). So every counter present at
   * the start is listed at least once; one changed during the walk may be listed twice;
   * without changes, each once, newest first.
   *
   * A page scans at most `RECENT_SCAN_LIMIT` slots (a rare prefix must not walk the whole
   * map in one request), so it may hold fewer than `limit` counters while `next` is present.
   * A cursor not issued by this map (another node's, or this node's before a restart: the
   * versions would mean nothing here) is refused with `rejected` and no counters.
   */
  private recentPage(request: PageRequest): CounterPage {
    const limit = Math.max(1, Math.floor(request.limit))
    const prefix = request.prefix ?? ""
    const ints = this.slotInts
    const nums = this.slotNums
    const versionOf = (s: number) => nums[s * S_NUMS + S_VERSION]!
    let phase: 1 | 2
    let v0: number
    /** the first slot to look at, in the walk's direction (NONE: nothing left in this part) */
    let s: number
    if (request.after === undefined) {
      phase = 1
      v0 = this.currentVersion
      s = this.newest
    } else {
      const cursor = parseCursor(request.after)
      if (cursor === undefined) {
        return {
          counters: [],
          rejected: {
            reason: "NotACursor",
            message: `after must be the next of a previous page when order=recent, not ${JSON.stringify(request.after)}`
          }
        }
      }
      if (cursor.epoch !== this.epoch || cursor.v0 > this.currentVersion || cursor.slot >= this.slotCount) {
        return {
          counters: [],
          rejected: {
            reason: "OtherIssuer",
            message: "after is a cursor this node did not issue (another node's, or its own before a restart): " +
              "ask the node that issued it, or list again without after"
          }
        }
      }
      phase = cursor.phase
      v0 = cursor.v0
      if (cursor.slot !== NONE && versionOf(cursor.slot) === cursor.version) {
        s = ints[cursor.slot * S_INTS + (phase === 1 ? S_OLDER : S_NEWER)]!
      } else {
        // the slot moved (its counter changed since): find the place again by version
        s = phase === 1 ? this.olderThan(cursor.version) : this.oldestAfter(cursor.version)
      }
    }
    const counters: Array<{ readonly name: CounterName; readonly value: number }> = []
    let last = NONE
    let scanned = 0
    for (;;) {
      if (s === NONE && phase === 1) {
        // the first part is done: the counters changed after v0 follow, oldest change first
        phase = 2
        last = NONE
        s = this.oldestAfter(v0)
      }
      if (s === NONE || counters.length === limit || scanned === RECENT_SCAN_LIMIT) break
      scanned++
      last = s
      const c = ints[s * S_INTS + S_COUNTER]!
      if (this.isNewestOfCounter(s, c)) {
        const name = this.counterNames[c]!
        if (name.startsWith(prefix)) counters.push({ name, value: this.value(name) })
      }
      s = ints[s * S_INTS + (phase === 1 ? S_OLDER : S_NEWER)]!
    }
    if (s === NONE) return { counters }
    const version = last === NONE ? v0 : versionOf(last)
    return { counters, next: formatCursor({ epoch: this.epoch, phase, v0, slot: last, version }) as CounterName }
  }

  /** Whether slot `s` is the newest slot of its counter `c`. */
  private isNewestOfCounter(s: number, c: number): boolean {
    const ints = this.slotInts
    const nums = this.slotNums
    const v = nums[s * S_NUMS + S_VERSION]!
    for (let o = this.firstSlot[c]!; o !== NONE; o = ints[o * S_INTS + S_NEXT]!) {
      if (nums[o * S_NUMS + S_VERSION]! > v) return false
    }
    return true
  }

  /** The newest slot changed before `version`, or NONE. Costs O(slots changed since). */
  private olderThan(version: number): number {
    const ints = this.slotInts
    const nums = this.slotNums
    let s = this.newest
    while (s !== NONE && nums[s * S_NUMS + S_VERSION]! >= version) s = ints[s * S_INTS + S_OLDER]!
    return s
  }

  /** The oldest slot changed after `version`, or NONE. Costs O(slots changed after it). */
  private oldestAfter(version: number): number {
    const ints = this.slotInts
    const nums = this.slotNums
    let found = NONE
    for (let s = this.newest; s !== NONE && nums[s * S_NUMS + S_VERSION]! > version; s = ints[s * S_INTS + S_OLDER]!) found = s
    return found
  }

  // -------------------------------------------------------------------------------------

  private entryAt(s: number): Entry {
    const i = s * S_INTS
    return [
      this.counterNames[this.slotInts[i + S_COUNTER]!]!,
      this.replicaIds[this.slotInts[i + S_REPLICA]!]!,
      this.slotNums[s * S_NUMS]!,
      this.slotNums[s * S_NUMS + 1]!
    ]
  }

  /** The counter number of `name`, or NONE. */
  private counterOf(name: CounterName): number {
    const index = this.index
    const mask = index.length - 1
    for (let i = nameHash(name) & mask; ; i = (i + 1) & mask) {
      const v = index[i]!
      if (v === 0) return NONE
      if (this.counterNames[v - 1] === name) return v - 1
    }
  }

  private insert(name: CounterName, c: number): void {
    const index = this.index
    const mask = index.length - 1
    let i = nameHash(name) & mask
    while (index[i] !== 0) i = (i + 1) & mask
    index[i] = c + 1
  }

  /** A new index of `size` cells (a power of two) holding every counter. */
  private rehash(size: number): void {
    this.index = new Int32Array(size)
    const names = this.counterNames
    for (let c = 0; c < names.length; c++) this.insert(names[c]!, c)
  }

  /** The slot of `(name, replica)`, or NONE. */
  private slotOf(name: CounterName, replica: ReplicaId): number {
    const c = this.counterOf(name)
    const r = this.replicaIndex.get(replica)
    if (c === NONE || r === undefined) return NONE
    return this.slotOfCounter(c, r)
  }

  private slotOfCounter(c: number, r: number): number {
    const ints = this.slotInts
    for (let s = this.firstSlot[c]!; s !== NONE; s = ints[s * S_INTS + S_NEXT]!) {
      if (ints[s * S_INTS + S_REPLICA] === r) return s
    }
    return NONE
  }

  /** Merges one entry; returns the slot it raised, or NONE when it raised nothing. */
  private merge(name: CounterName, replica: ReplicaId, inc: number, dec: number): number {
    let c = this.counterOf(name)
    let r = this.replicaIndex.get(replica)
    const s = c === NONE || r === undefined ? NONE : this.slotOfCounter(c, r)
    if (s === NONE) {
      if (inc === 0 && dec === 0) return NONE
      if (c === NONE) c = this.newCounter(name)
      if (r === undefined) r = this.newReplica(replica)
      const slot = this.newSlot(c, r, inc, dec)
      this.sums[c * C_NUMS] += inc
      this.sums[c * C_NUMS + 1] += dec
      return slot
    }
    const nums = this.slotNums
    const oldInc = nums[s * S_NUMS]!
    const oldDec = nums[s * S_NUMS + 1]!
    if (oldInc >= inc && oldDec >= dec) return NONE
    const version = nums[s * S_NUMS + S_VERSION]!
    if (version <= this.digestVersion) {
      // in the digest with its current totals: take that contribution out now
      entryHash(name, this.replicaHashes, r!, oldInc, oldDec)
      subHash(this.digestSum)
    }
    const ni = inc > oldInc ? inc : oldInc
    const nd = dec > oldDec ? dec : oldDec
    this.sums[c * C_NUMS] += ni - oldInc
    this.sums[c * C_NUMS + 1] += nd - oldDec
    nums[s * S_NUMS] = ni
    nums[s * S_NUMS + 1] = nd
    nums[s * S_NUMS + S_VERSION] = ++this.currentVersion
    this.unlink(s)
    this.append(s)
    return s
  }

  /** The one place a counter is created. */
  private newCounter(name: CounterName): number {
    const c = this.counterNames.length
    if (c === this.firstSlot.length) {
      const capacity = grownCapacity(this.firstSlot.length, c + 1)
      this.firstSlot = growInt32(this.firstSlot, capacity)
      this.sums = growFloat64(this.sums, capacity * C_NUMS)
    }
    this.counterNames.push(name)
    this.nameIndex.add(name)
    if (this.counterNames.length * 2 > this.index.length) this.rehash(this.index.length * 2)
    else this.insert(name, c)
    this.firstSlot[c] = NONE
    return c
  }

  private newReplica(replica: ReplicaId): number {
    const r = this.replicaIds.length
    this.replicaIndex.set(replica, r)
    this.replicaIds.push(replica)
    replicaHash(replica, this.replicaHashes)
    return r
  }

  /** A new slot at the newest end of the version list; the counter's sums are the caller's. */
  private newSlot(c: number, r: number, inc: number, dec: number): number {
    const s = this.slotCount
    if (s * S_INTS === this.slotInts.length) {
      const capacity = grownCapacity(s, s + 1)
      this.slotInts = growInt32(this.slotInts, capacity * S_INTS)
      this.slotNums = growFloat64(this.slotNums, capacity * S_NUMS)
    }
    this.slotCount++
    const i = s * S_INTS
    this.slotInts[i + S_COUNTER] = c
    this.slotInts[i + S_REPLICA] = r
    this.slotInts[i + S_NEXT] = this.firstSlot[c]!
    this.firstSlot[c] = s
    this.slotNums[s * S_NUMS] = inc
    this.slotNums[s * S_NUMS + 1] = dec
    this.slotNums[s * S_NUMS + S_VERSION] = ++this.currentVersion
    this.append(s)
    return s
  }

  private append(s: number): void {
    const ints = this.slotInts
    ints[s * S_INTS + S_OLDER] = this.newest
    ints[s * S_INTS + S_NEWER] = NONE
    if (this.newest === NONE) this.oldest = s
    else ints[this.newest * S_INTS + S_NEWER] = s
    this.newest = s
  }

  private unlink(s: number): void {
    const ints = this.slotInts
    const older = ints[s * S_INTS + S_OLDER]!
    const newer = ints[s * S_INTS + S_NEWER]!
    if (older === NONE) this.oldest = newer
    else ints[older * S_INTS + S_NEWER] = newer
    if (newer === NONE) this.newest = older
    else ints[newer * S_INTS + S_OLDER] = older
  }
}

/** A new map holding the given entries. */
export const fromEntries = (entries: Iterable<Entry>): CounterMap => {
  const m = new CounterMap()
  m.apply(entries)
  return m
}

/** The pure merge: a new map, neither argument changed. */
export const merge = (a: CounterMap, b: CounterMap): CounterMap => {
  const m = a.clone()
  m.apply(b.entries())
  return m
}

/** Equal states: the same digest. */
export const equals = (a: CounterMap, b: CounterMap): boolean => a.digest() === b.digest()

/** Applies a local write to a copy; pure. */
export const add = (
  m: CounterMap,
  name: CounterName,
  replica: ReplicaId,
  kind: "inc" | "dec",
  by: number
): Either.Either<CounterMap, PNCounter.Overflow> =>
  Either.map(m.prepare(name, replica, kind, by), (entry) => {
    const next = m.clone()
    next.apply([entry])
    return next
  })
