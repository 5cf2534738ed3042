import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import * as PNCounter from "../../src/crdt/PNCounter.js"
import type { ReplicaId } from "../../src/crdt/ReplicaId.js"
import { count, MAX, replicaId } from "./arbitraries.js"

const RUNS = { fastCheck: { numRuns: 1000 } }

const counter: fc.Arbitrary<PNCounter.PNCounter> = fc
  .array(fc.tuple(replicaId, count, count), { maxLength: 8 })
  .map((xs) => ({ replicas: new Map(xs.map(([r, inc, dec]) => [r, { inc, dec }])) }))

const r = (s: string) => s as ReplicaId

/** value computed independently, exactly, then clamped like PNCounter.value promises. */
const exactValue = (c: PNCounter.PNCounter): number => {
  let v = 0n
  for (const t of c.replicas.values()) v += BigInt(t.inc) - BigInt(t.dec)
  return v > BigInt(MAX) ? MAX : v < -BigInt(MAX) ? -MAX : Number(v)
}

describe("PNCounter", () => {
  it.prop("merge is commutative", [counter, counter], ([a, b]) => {
    expect(PNCounter.equals(PNCounter.merge(a, b), PNCounter.merge(b, a))).toBe(true)
  }, RUNS)

  it.prop("merge is associative", [counter, counter, counter], ([a, b, c]) => {
    const left = PNCounter.merge(PNCounter.merge(a, b), c)
    const right = PNCounter.merge(a, PNCounter.merge(b, c))
    expect(PNCounter.equals(left, right)).toBe(true)
  }, RUNS)

  it.prop("merge is idempotent and absorbs what it merged", [counter, counter], ([a, b]) => {
    expect(PNCounter.equals(PNCounter.merge(a, a), a)).toBe(true)
    const ab = PNCounter.merge(a, b)
    expect(PNCounter.equals(PNCounter.merge(ab, b), ab)).toBe(true)
  }, RUNS)

  it.prop("merge is the pointwise maximum", [counter, counter], ([a, b]) => {
    const m = PNCounter.merge(a, b)
    for (const rep of new Set([...a.replicas.keys(), ...b.replicas.keys()])) {
      const ta = PNCounter.totals(a, rep)
      const tb = PNCounter.totals(b, rep)
      expect(PNCounter.totals(m, rep)).toEqual({ inc: Math.max(ta.inc, tb.inc), dec: Math.max(ta.dec, tb.dec) })
    }
  }, RUNS)

  it.prop("value = sum(inc) - sum(dec), exact or clamped, never rounded", [counter], ([c]) => {
    expect(PNCounter.value(c)).toBe(exactValue(c))
  }, RUNS)

  const write = fc.record({
    replica: fc.constantFrom(r("a"), r("b"), r("c")),
    kind: fc.constantFrom("inc" as const, "dec" as const),
    by: fc.oneof(fc.integer({ min: 1, max: 100 }), fc.integer({ min: MAX - 100, max: MAX }), fc.constantFrom(0, -3, 0.5, MAX + 2))
  })

  it.prop(
    "add keeps every entry and sum within 2^53-1, refuses with Overflow otherwise and changes nothing",
    [fc.array(write, { maxLength: 30 })],
    ([writes]) => {
      let c = PNCounter.empty
      let expected = 0
      for (const w of writes) {
        const before = c
        const next = PNCounter.add(c, w.replica, w.kind, w.by)
        if (Either.isRight(next)) {
          c = next.right
          expected += w.kind === "inc" ? w.by : -w.by
        } else {
          expect(next.left._tag).toBe("Overflow")
          expect(c).toBe(before)
        }
        expect(PNCounter.sumInc(c)).toBeLessThanOrEqual(MAX)
        expect(PNCounter.sumDec(c)).toBeLessThanOrEqual(MAX)
        expect(PNCounter.value(c)).toBe(expected)
      }
    },
    RUNS
  )

  it("add does not mutate its input", () => {
    const c = Either.getOrThrow(PNCounter.increment(PNCounter.empty, r("a"), 2))
    const d = Either.getOrThrow(PNCounter.decrement(c, r("a")))
    expect(PNCounter.totals(c, r("a"))).toEqual({ inc: 2, dec: 0 })
    expect(PNCounter.totals(d, r("a"))).toEqual({ inc: 2, dec: 1 })
    expect(PNCounter.value(d)).toBe(1)
    expect(PNCounter.empty.replicas.size).toBe(0)
  })

  it("equals ignores all-zero replicas", () => {
    const z = { replicas: new Map([[r("a"), { inc: 0, dec: 0 }]]) }
    expect(PNCounter.equals(z, PNCounter.empty)).toBe(true)
    expect(PNCounter.equals(PNCounter.empty, z)).toBe(true)
    expect(PNCounter.equals(Either.getOrThrow(PNCounter.increment(PNCounter.empty, r("a"))), PNCounter.empty)).toBe(false)
  })
})
