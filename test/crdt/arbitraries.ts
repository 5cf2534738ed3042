/** Shared fast-check arbitraries for CRDT tests (not a test file itself). */
import { FastCheck as fc } from "effect"
import type { CounterName } from "../../src/crdt/CounterName.js"
import type { Entry } from "../../src/crdt/Entry.js"
import type { ReplicaId } from "../../src/crdt/ReplicaId.js"

export const MAX = Number.MAX_SAFE_INTEGER

/** Names that break naive object-keyed code, and the longest legal name. */
export const trickyNames: ReadonlyArray<CounterName> = [
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "hasOwnProperty",
  "valueOf",
  "default",
  "x".repeat(128)
] as ReadonlyArray<string> as ReadonlyArray<CounterName>

/** Mostly a small pool, so entries collide and merges have work to do. */
export const counterName: fc.Arbitrary<CounterName> = fc
  .oneof(
    { weight: 6, arbitrary: fc.constantFrom("default", "a", "b", "likes:42", "views.x") },
    { weight: 2, arbitrary: fc.constantFrom(...trickyNames) },
    { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9._:-]{1,128}$/) }
  )
  .map((s) => s as CounterName)

export const replicaId: fc.Arbitrary<ReplicaId> = fc
  .oneof(
    { weight: 6, arbitrary: fc.constantFrom("r1", "r2", "r3", "r4", "Jm3w0zq9T2u8b1XkPq7VfA") },
    { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/) }
  )
  .map((s) => s as ReplicaId)

/** Counts: mostly small, sometimes near 2^53-1. */
export const count: fc.Arbitrary<number> = fc.oneof(
  { weight: 8, arbitrary: fc.nat({ max: 1000 }) },
  { weight: 1, arbitrary: fc.integer({ min: MAX - 1000, max: MAX }) },
  { weight: 1, arbitrary: fc.maxSafeNat() }
)

export const entry: fc.Arbitrary<Entry> = fc.tuple(counterName, replicaId, count, count)

export const entries: fc.Arbitrary<ReadonlyArray<Entry>> = fc.array(entry, { maxLength: 30 })

/** A canonical, order-free form of a state, independent of the digest under test. */
export const canonical = (es: ReadonlyArray<Entry>): string =>
  JSON.stringify(
    [...es]
      .filter((e) => e[2] !== 0 || e[3] !== 0)
      .map((e) => [e[0], e[1], e[2], e[3]])
      .sort((a, b) => (a[0]! < b[0]! ? -1 : a[0]! > b[0]! ? 1 : a[1]! < b[1]! ? -1 : a[1]! > b[1]! ? 1 : 0))
  )

/** The reference merge: pointwise maximum over a plain Map, written independently. */
export const referenceState = (...lists: ReadonlyArray<ReadonlyArray<Entry>>): Array<Entry> => {
  const m = new Map<string, Entry>()
  for (const list of lists) {
    for (const e of list) {
      const k = `${e[0]}\u0000${e[1]}`
      const prev = m.get(k)
      m.set(k, prev === undefined ? e : [e[0], e[1], Math.max(prev[2], e[2]), Math.max(prev[3], e[3])])
    }
  }
  return [...m.values()]
}
