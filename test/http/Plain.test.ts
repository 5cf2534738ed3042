import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, Either, FastCheck as fc, ParseResult, Schema } from "effect"
import { CountBody } from "../../src/api/CountBody.js"
import { compilePlain, NOT_PLAIN } from "../../src/http/internal/plain.js"
import { BatchRequest, BatchResponse } from "../../src/node/NodeApi.js"

const Value = Schema.Struct({ value: Schema.Number, nodeId: Schema.String })
const Rich = Schema.Struct({
  kind: Schema.Literal("a", "b"),
  n: Schema.optional(Schema.Int.pipe(Schema.between(0, 10))),
  name: Schema.String.pipe(Schema.minLength(1), Schema.brand("Name")),
  inner: Schema.Struct({ ok: Schema.Boolean, note: Schema.optional(Schema.String) })
})
const Listy = Schema.Struct({
  items: Schema.Array(Schema.Struct({ a: Schema.String, b: Schema.optional(Schema.Int) })).pipe(Schema.maxItems(3)),
  u: Schema.Union(Schema.Struct({ x: Schema.Number }), Schema.Struct({ y: Schema.String, z: Schema.Boolean }))
})
const schemas = { CountBody, Value, Rich, Listy, BatchRequest, BatchResponse } as const
// what ApiServer's decoder passes (codec.ts)
const parseOptions = { errors: "all", onExcessProperty: "ignore" } as const

const keys = [
  "by", "By", "value", "nodeId", "kind", "n", "name", "inner", "ok", "note",
  "items", "u", "a", "b", "x", "y", "z", "writes", "results", "error", "message"
]
const leaf = fc.oneof(
  fc.integer({ min: -3, max: 12 }),
  fc.double(),
  fc.string({ maxLength: 3 }),
  fc.constantFrom("a", "b", "", "x"),
  fc.boolean(),
  fc.constant(undefined),
  fc.constant(null)
)
/** objects close to the schemas (right and wrong keys and values, arrays of them), and anything at all */
const near = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: "small" }, leaf, tie("object"), fc.array(tie("object"), { maxLength: 4 })),
  object: fc.dictionary(fc.constantFrom(...keys), tie("value"), { maxKeys: 5 })
}))
const input = fc.oneof(near.object, fc.anything())

describe("plain struct fast accept", () => {
  it("compiles plain structs only", () => {
    expect(compilePlain(CountBody.ast)).toBeDefined()
    expect(compilePlain(Value.ast)).toBeDefined()
    expect(compilePlain(Rich.ast)).toBeDefined()
    expect(compilePlain(Schema.Struct({ n: Schema.NumberFromString }).ast)).toBeUndefined()
    expect(compilePlain(Schema.Record({ key: Schema.String, value: Schema.Number }).ast)).toBeUndefined()
    expect(compilePlain(Schema.String.ast)).toBeUndefined()
    // a union with a struct member: the parser's output is a copy, not the input
    const withStruct = Schema.Union(Schema.Struct({ a: Schema.String }).pipe(Schema.filter(() => true)), Schema.Number)
    expect(compilePlain(Schema.Struct({ u: withStruct }).ast)).toBeUndefined()
    // a union of structs one value could match two of: the parser would pick the first
    const overlapping = Schema.Union(Schema.Struct({ a: Schema.String }), Schema.Struct({ a: Schema.String, b: Schema.Number }))
    expect(compilePlain(Schema.Struct({ u: overlapping }).ast)).toBeUndefined()
    const optional = Schema.Union(Schema.Struct({ a: Schema.optional(Schema.String) }), Schema.Struct({ b: Schema.Number }))
    expect(compilePlain(Schema.Struct({ u: optional }).ast)).toBeUndefined()
    // tuples with fixed elements are left to the parser; arrays are compiled
    expect(compilePlain(Schema.Struct({ t: Schema.Tuple(Schema.String, Schema.Number) }).ast)).toBeUndefined()
    expect(compilePlain(Listy.ast)).toBeDefined()
    expect(compilePlain(BatchRequest.ast)).toBeDefined()
    expect(compilePlain(BatchResponse.ast)).toBeDefined()
  })

  it("accepts the common valid values, as a copy in declaration order", () => {
    const count = compilePlain(CountBody.ast)!
    expect(count({ by: 5 })).toEqual({ by: 5 })
    expect(count({})).toEqual({})
    const value = compilePlain(Value.ast)!
    const out = value({ nodeId: "n1", value: 3 })
    expect(out).toEqual({ value: 3, nodeId: "n1" })
    expect(Object.keys(out as object)).toEqual(["value", "nodeId"])
    const rich = compilePlain(Rich.ast)!
    expect(rich({ kind: "a", name: "x", inner: { ok: true } })).toEqual({ kind: "a", name: "x", inner: { ok: true } })
    const batch = compilePlain(BatchRequest.ast)!
    const writes = [{ name: "a", kind: "inc", by: 1 }, { name: "b.c", kind: "dec", by: 2 }]
    expect(batch({ writes })).toEqual({ writes })
    for (const bad of [[], Array.from({ length: 257 }, () => writes[0]), [{ ...writes[0], by: 0 }], [{ ...writes[0], x: 1 }]]) {
      expect(batch({ writes: bad })).toBe(NOT_PLAIN)
    }
    const results = compilePlain(BatchResponse.ast)!
    const answer = { nodeId: "n", results: [{ value: 1 }, { error: "overflow", message: "m" }] }
    expect(results(answer)).toEqual(answer)
    expect(results({ nodeId: "n", results: [{ value: 1, error: "x", message: "m" }] })).toBe(NOT_PLAIN)
  })

  it("leaves everything doubtful to the full parser", () => {
    const count = compilePlain(CountBody.ast)!
    for (const bad of [{ by: 0 }, { by: 1.5 }, { by: "1" }, { By: 1 }, { by: 1, x: 2 }, null, [1], "by", new Map()]) {
      expect(count(bad)).toBe(NOT_PLAIN)
    }
    const value = compilePlain(Value.ast)!
    expect(value({ value: 1 })).toBe(NOT_PLAIN)
    expect(value(Object.assign(Object.create({ inherited: 1 }) as object, { value: 1, nodeId: "n" }))).toBe(NOT_PLAIN)
  })

  for (const [name, schema] of Object.entries(schemas)) {
    const plain = compilePlain(schema.ast)!
    const decode = ParseResult.decodeUnknownEither(schema as Schema.Schema<unknown, unknown>, parseOptions)
    const encode = ParseResult.encodeUnknownEither(schema as Schema.Schema<unknown, unknown>)
    // valid values too (the schema's own arbitrary), so the property is not vacuous
    const valid = Arbitrary.make(schema as Schema.Schema<unknown, unknown>)
    it.prop(`${name}: whatever the fast accept takes, decoding and encoding give the same value`, [fc.oneof(input, valid)], ([u]) => {
      const fast = plain(u)
      if (fast === NOT_PLAIN) return
      const decoded = decode(u)
      const encoded = encode(u)
      expect(Either.isRight(decoded) && Either.isRight(encoded)).toBe(true)
      if (Either.isRight(decoded) && Either.isRight(encoded)) {
        expect(fast).toStrictEqual(decoded.right)
        expect(fast).toStrictEqual(encoded.right)
        expect(Object.keys(fast as object)).toEqual(Object.keys(decoded.right as object))
      }
    }, { fastCheck: { numRuns: 2000 } })

    it.prop(`${name}: valid values are taken by the fast accept`, [valid], ([u]) => {
      expect(plain(u)).not.toBe(NOT_PLAIN)
    })

    it.prop(`${name}: whatever the full decoder refuses, the fast accept refuses too`, [input], ([u]) => {
      if (Either.isLeft(decode(u))) expect(plain(u)).toBe(NOT_PLAIN)
    }, { fastCheck: { numRuns: 2000 } })
  }
})
