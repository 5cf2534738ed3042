import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc, Schema } from "effect"
import { COUNTER_NAME_PATTERN, CounterName, isCounterName } from "../../src/crdt/CounterName.js"
import { Entries, Entry, entryProblem, validateEntries } from "../../src/crdt/Entry.js"
import { isReplicaId, makeReplicaId, ReplicaId } from "../../src/crdt/ReplicaId.js"
import { MAX } from "./arbitraries.js"

const RUNS = { fastCheck: { numRuns: 1000 } }

/** Strings near the edge of the name and id alphabets and lengths. */
const edgyString = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9._:-]{1,130}$/),
  fc.string({ maxLength: 10 }),
  fc.string({ unit: "grapheme", maxLength: 5 }),
  fc.constantFrom("", " ", "a b", "a\n", "\u0000", "é", "a/b", "__proto__", "constructor", "x".repeat(64), "x".repeat(65), "x".repeat(128), "x".repeat(129))
)
const edgyNumber = fc.oneof(
  fc.nat(),
  fc.maxSafeNat(),
  fc.constantFrom(-1, -0, 0.5, MAX, MAX + 1, MAX + 2, Number.NaN, Infinity, -Infinity, 2 ** 64),
  fc.double()
)
const edgyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: edgyString },
  { weight: 4, arbitrary: edgyNumber },
  { weight: 1, arbitrary: fc.constantFrom(null, undefined, true, {}, [], 1n) }
)
/** Mostly entry-shaped arrays with a few bad elements, sometimes the wrong length or type. */
const nearlyEntry: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(edgyString, fc.oneof(edgyString, fc.constantFrom("r1")), edgyNumber, edgyNumber) },
  { weight: 6, arbitrary: fc.tuple(fc.constantFrom("default"), fc.constantFrom("r1"), fc.nat(), fc.nat()) },
  { weight: 1, arbitrary: fc.array(edgyValue, { maxLength: 6 }) },
  { weight: 1, arbitrary: edgyValue }
)
const nearlyEntries: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 9, arbitrary: fc.array(nearlyEntry, { maxLength: 6 }) },
  { weight: 1, arbitrary: edgyValue }
)

const bySchema = Schema.decodeUnknownEither(Entries)

describe("validateEntries", () => {
  it.prop("accepts and rejects exactly what the Entries schema does", [nearlyEntries], ([u]) => {
    const fast = validateEntries(u)
    const slow = bySchema(u)
    expect(Either.isRight(fast)).toBe(Either.isRight(slow))
    if (Either.isRight(fast) && Either.isRight(slow)) expect(fast.right).toEqual(slow.right)
  }, RUNS)

  it.prop("accepts every Schema-generated list of entries", [Entries], ([es]) => {
    expect(Either.isRight(validateEntries(es))).toBe(true)
  }, RUNS)

  it("points at the first bad entry", () => {
    const bad = validateEntries([["a", "r1", 1, 2], ["a", "r1", -1, 2]])
    expect(Either.isLeft(bad) && bad.left.index).toBe(1)
    expect(Either.isLeft(bad) && bad.left.message).toMatch(/entries\[1\]: the increment total/)
    const notList = validateEntries({ length: 0 })
    expect(Either.isLeft(notList) && notList.left.index).toBe(-1)
    expect(entryProblem(["a", "r1", 1, 2, 3])).toMatch(/4 elements/)
    expect(entryProblem(["a", "r 1", 1, 2])).toMatch(/replica id/)
    expect(entryProblem(["a", "r1", 1, MAX + 1])).toMatch(/decrement total/)
    expect(entryProblem(["a", "r1", 0, MAX])).toBeUndefined()
  })
})

describe("CounterName", () => {
  const decode = Schema.decodeUnknownEither(CounterName)

  it.prop("the pattern, the guard and the schema agree", [edgyString], ([s]) => {
    const ok = COUNTER_NAME_PATTERN.test(s)
    expect(isCounterName(s)).toBe(ok)
    expect(Either.isRight(decode(s))).toBe(ok)
    expect(entryProblem([s, "r1", 0, 0]) === undefined).toBe(ok)
  }, RUNS)

  it("accepts 1 to 128 characters of [A-Za-z0-9._:-], prototype names included", () => {
    for (const s of ["a", "default", "likes:post-42", "A.b_c", "__proto__", "constructor", "x".repeat(128)]) {
      expect(isCounterName(s)).toBe(true)
      expect(Either.isRight(decode(s))).toBe(true)
      expect(Either.isRight(Schema.decodeUnknownEither(Entry)([s, "r1", 1, 0]))).toBe(true)
    }
  })

  it("rejects 129 characters, the empty name and other characters", () => {
    for (const s of ["x".repeat(129), "", "a b", "a/b", "é", "a\n", "a\u0000"]) {
      expect(isCounterName(s)).toBe(false)
      expect(Either.isLeft(decode(s))).toBe(true)
      expect(Either.isLeft(validateEntries([[s, "r1", 1, 0]]))).toBe(true)
    }
  })
})

describe("ReplicaId", () => {
  it.prop("the guard and the schema agree", [edgyString], ([s]) => {
    expect(isReplicaId(s)).toBe(Either.isRight(Schema.decodeUnknownEither(ReplicaId)(s)))
  }, RUNS)

  it("makes fresh, valid, distinct ids", () => {
    const ids = new Set(Array.from({ length: 100 }, () => makeReplicaId()))
    expect(ids.size).toBe(100)
    for (const id of ids) {
      expect(isReplicaId(id)).toBe(true)
      expect(id).toHaveLength(22)
    }
  })
})
