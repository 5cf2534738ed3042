/**
 * A map of named PN-counters: the whole replicated state of a dcounter cluster.
 *
 * State is a set of entries `(name, replica) -> {inc, dec}`; merge is the pointwise
 * maximum, so it is commutative, associative and idempotent. The class keeps its data in
 * mutable maps so the node's hot path updates one entry in O(1); every method that
 * changes it says so, and `clone` gives an independent copy. The free functions at the
 * bottom (`merge`, `fromEntries`, ...) are the pure view used by tests and tools.
 *
 * Versions: every entry remembers the map's version at which it last grew, so
 * `deltaSince(v)` lists exactly the entries that changed after version `v`: merging that
 * delta into any replica that had seen version `v` yields the full state. Entries are
 * also kept in a list ordered by version, so `deltaSince(v)` costs O(entries changed
 * since v), not O(state): the eager push after each write stays cheap on a large map.
 *
 * Digest: the sum modulo 2^256 of SHA-256(entry) over all entries. A sum does not depend
 * on order, so equal states have equal digests however they were built, and it is kept
 * up to date incrementally: `digest()` rehashes only the entries changed since the last
 * call (one subtraction and one addition each), not the whole state.
 */
import { hash } from "node:crypto"
import { Either } from "effect"
import type { CounterName } from "./CounterName.js"
import type { Entry } from "./Entry.js"
import { NameIndex, type PageRequest } from "./NameIndex.js"
import * as PNCounter from "./PNCounter.js"
import type { ReplicaId } from "./ReplicaId.js"

interface Slot {
  readonly name: CounterName
  readonly replica: ReplicaId
  inc: number
  dec: number
  version: number
  /** The neighbours in the version-ordered list: `older` has a lower version. */
  older: Slot | undefined
  newer: Slot | undefined
  /** The totals this slot currently contributes to the digest sum; -1: none yet. */
  hashedInc: number
  hashedDec: number
}

interface Counter {
  readonly slots: Map<ReplicaId, Slot>
  sumInc: number
  sumDec: number
}

const DIGEST_WORDS = 8

/** SHA-256 of one entry; names and replica ids never contain NUL, so this is unambiguous. */
const entryHash = (name: string, replica: string, inc: number, dec: number): Buffer =>
  hash("sha256", `${name}\u0000${replica}\u0000${inc}\u0000${dec}`, "buffer")

/** acc += h (mod 2^256), both little-endian 32-bit words. */
const addHash = (acc: Uint32Array, h: Buffer): void => {
  let carry = 0
  for (let i = 0; i < DIGEST_WORDS; i++) {
    const s = acc[i]! + h.readUInt32LE(i * 4) + carry
    acc[i] = s >>> 0
    carry = s > 0xffffffff ? 1 : 0
  }
}

/** acc -= h (mod 2^256). */
const subHash = (acc: Uint32Array, h: Buffer): void => {
  let borrow = 0
  for (let i = 0; i < DIGEST_WORDS; i++) {
    const d = acc[i]! - h.readUInt32LE(i * 4) - borrow
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
  /** the last name of this page, present when more counters follow */
  readonly next?: CounterName
}

export type { PageRequest } from "./NameIndex.js"

export class CounterMap {
  private readonly counters = new Map<CounterName, Counter>()
  private currentVersion = 0
  private entryTotal = 0
  /** Oldest and newest slot of the version-ordered list. */
  private oldest: Slot | undefined = undefined
  private newest: Slot | undefined = undefined
  private readonly digestSum = new Uint32Array(DIGEST_WORDS)
  /** The map version `digestSum` reflects. */
  private digestVersion = 0
  private digestCache: string = hex(new Uint32Array(DIGEST_WORDS))
  /** The names in sorted order for `page` (cold until the first page; see NameIndex). */
  private readonly nameIndex = new NameIndex()

  /** Increases by one on every change; 0 for an empty map. */
  get version(): number {
    return this.currentVersion
  }

  /** The number of counters. */
  get size(): number {
    return this.counters.size
  }

  /** The number of entries, i.e. of (counter, replica) pairs: what `entries()` would return. */
  get entryCount(): number {
    return this.entryTotal
  }

  names(): ReadonlyArray<CounterName> {
    return [...this.counters.keys()]
  }

  has(name: CounterName): boolean {
    return this.counters.has(name)
  }

  /** The counter's value; 0 for a counter never written. */
  value(name: CounterName): number {
    const c = this.counters.get(name)
    if (c === undefined) return 0
    if (c.sumInc <= Number.MAX_SAFE_INTEGER && c.sumDec <= Number.MAX_SAFE_INTEGER) return c.sumInc - c.sumDec
    return PNCounter.value(this.counter(name))
  }

  totals(name: CounterName, replica: ReplicaId): PNCounter.Totals {
    const s = this.counters.get(name)?.slots.get(replica)
    return s === undefined ? { inc: 0, dec: 0 } : { inc: s.inc, dec: s.dec }
  }

  /** The counter as an immutable PN-counter value. */
  counter(name: CounterName): PNCounter.PNCounter {
    const c = this.counters.get(name)
    if (c === undefined) return PNCounter.empty
    const replicas = new Map<ReplicaId, PNCounter.Totals>()
    for (const [r, s] of c.slots) replicas.set(r, { inc: s.inc, dec: s.dec })
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
    const c = this.counters.get(name)
    const s = c?.slots.get(replica)
    const inc = s?.inc ?? 0
    const dec = s?.dec ?? 0
    const current = kind === "inc" ? inc : dec
    const sum = kind === "inc" ? (c?.sumInc ?? 0) : (c?.sumDec ?? 0)
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
      let c = this.counters.get(name)
      const s = c?.slots.get(replica)
      if (s !== undefined && s.inc >= inc && s.dec >= dec) continue
      if (s === undefined && inc === 0 && dec === 0) continue
      if (c === undefined) {
        c = { slots: new Map(), sumInc: 0, sumDec: 0 }
        this.counters.set(name, c)
        this.nameIndex.add(name)
      }
      const version = ++this.currentVersion
      if (s === undefined) {
        const slot: Slot = {
          name,
          replica,
          inc,
          dec,
          version,
          older: undefined,
          newer: undefined,
          hashedInc: -1,
          hashedDec: -1
        }
        c.slots.set(replica, slot)
        this.append(slot)
        this.entryTotal++
        c.sumInc += inc
        c.sumDec += dec
        changed.push([name, replica, inc, dec])
      } else {
        const ni = Math.max(s.inc, inc)
        const nd = Math.max(s.dec, dec)
        c.sumInc += ni - s.inc
        c.sumDec += nd - s.dec
        s.inc = ni
        s.dec = nd
        s.version = version
        this.unlink(s)
        this.append(s)
        changed.push([name, replica, ni, nd])
      }
    }
    return changed
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
    const out: Array<Entry> = []
    const from = Number.isNaN(version) ? 0 : version
    if (from >= this.currentVersion) return out
    let first = this.newest
    while (first !== undefined && first.older !== undefined && first.older.version > from) first = first.older
    for (let s = first; s !== undefined; s = s.newer) {
      if (s.version > from) out.push([s.name, s.replica, s.inc, s.dec])
    }
    return out
  }

  /**
   * A digest of the state (64 hex characters): equal states have equal digests whatever
   * order they were built in, and different states differ (barring a 2^-256 accident).
   * Rehashes only the entries changed since the previous call.
   */
  digest(): string {
    if (this.digestVersion === this.currentVersion) return this.digestCache
    for (let s = this.newest; s !== undefined && s.version > this.digestVersion; s = s.older) {
      if (s.hashedInc >= 0) subHash(this.digestSum, entryHash(s.name, s.replica, s.hashedInc, s.hashedDec))
      addHash(this.digestSum, entryHash(s.name, s.replica, s.inc, s.dec))
      s.hashedInc = s.inc
      s.hashedDec = s.dec
    }
    this.digestVersion = this.currentVersion
    this.digestCache = hex(this.digestSum)
    return this.digestCache
  }

  /** An independent copy with the same entries, versions and digest. */
  clone(): CounterMap {
    const m = new CounterMap()
    for (let s = this.oldest; s !== undefined; s = s.newer) {
      let c = m.counters.get(s.name)
      if (c === undefined) {
        const orig = this.counters.get(s.name)!
        c = { slots: new Map(), sumInc: orig.sumInc, sumDec: orig.sumDec }
        m.counters.set(s.name, c)
      }
      const copy: Slot = { ...s, older: undefined, newer: undefined }
      c.slots.set(s.replica, copy)
      m.append(copy)
    }
    m.currentVersion = this.currentVersion
    m.entryTotal = this.entryTotal
    m.digestSum.set(this.digestSum)
    m.digestVersion = this.digestVersion
    m.digestCache = this.digestCache
    return m
  }

  /** `{name: value}` for every counter, sorted by name. */
  values(): Array<{ readonly name: CounterName; readonly value: number }> {
    return [...this.counters.keys()].sort().map((name) => ({ name, value: this.value(name) }))
  }

  /**
   * One page of counters sorted by name (see `NameIndex`): at most `limit` counters after
   * `after` whose names start with `prefix`; `next` (the page's last name) when more follow.
   */
  page(request: PageRequest): CounterPage {
    const page = this.nameIndex.page(() => this.counters.keys(), request)
    const counters = page.names.map((name) => ({ name: name as CounterName, value: this.value(name as CounterName) }))
    return page.next === undefined ? { counters } : { counters, next: page.next as CounterName }
  }

  private append(s: Slot): void {
    s.older = this.newest
    s.newer = undefined
    if (this.newest === undefined) this.oldest = s
    else this.newest.newer = s
    this.newest = s
  }

  private unlink(s: Slot): void {
    if (s.older === undefined) this.oldest = s.newer
    else s.older.newer = s.newer
    if (s.newer === undefined) this.newest = s.older
    else s.newer.older = s.older
    s.older = undefined
    s.newer = undefined
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
