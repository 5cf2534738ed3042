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
 * delta into any replica that had seen version `v` yields the full state.
 */
import { createHash } from "node:crypto"
import { Either } from "effect"
import type { CounterName } from "./CounterName.js"
import type { Entry } from "./Entry.js"
import * as PNCounter from "./PNCounter.js"
import type { ReplicaId } from "./ReplicaId.js"

interface Slot {
  inc: number
  dec: number
  version: number
}

interface Counter {
  readonly slots: Map<ReplicaId, Slot>
  sumInc: number
  sumDec: number
}

export class CounterMap {
  private readonly counters = new Map<CounterName, Counter>()
  private currentVersion = 0
  private digestCache: string | undefined = undefined

  /** Increases by one on every change; 0 for an empty map. */
  get version(): number {
    return this.currentVersion
  }

  get size(): number {
    return this.counters.size
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
   * `Overflow` when an entry or the counter's sum would pass 2^53-1. Changes nothing.
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
      }
      const version = ++this.currentVersion
      if (s === undefined) {
        c.slots.set(replica, { inc, dec, version })
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
        changed.push([name, replica, ni, nd])
      }
    }
    if (changed.length > 0) this.digestCache = undefined
    return changed
  }

  /** Every entry, in no particular order. */
  entries(): Array<Entry> {
    return this.deltaSince(0)
  }

  /** The entries that changed after `version`. `deltaSince(0)` is the full state. */
  deltaSince(version: number): Array<Entry> {
    const out: Array<Entry> = []
    if (version >= this.currentVersion) return out
    for (const [name, c] of this.counters) {
      for (const [replica, s] of c.slots) {
        if (s.version > version) out.push([name, replica, s.inc, s.dec])
      }
    }
    return out
  }

  /**
   * A digest of the state: hex SHA-256 over the entries sorted by (name, replica). Equal
   * states have equal digests whatever order they were built in. Cached until the next
   * change.
   */
  digest(): string {
    if (this.digestCache !== undefined) return this.digestCache
    const h = createHash("sha256")
    const names = [...this.counters.keys()].sort()
    for (const name of names) {
      const c = this.counters.get(name)!
      const replicas = [...c.slots.keys()].sort()
      for (const r of replicas) {
        const s = c.slots.get(r)!
        h.update(`${name}\u0000${r}\u0000${s.inc}\u0000${s.dec}\n`)
      }
    }
    this.digestCache = h.digest("hex")
    return this.digestCache
  }

  clone(): CounterMap {
    const m = new CounterMap()
    m.apply(this.entries())
    return m
  }

  /** `{name: value}` for every counter, sorted by name. */
  values(): Array<{ readonly name: CounterName; readonly value: number }> {
    return [...this.counters.keys()].sort().map((name) => ({ name, value: this.value(name) }))
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
