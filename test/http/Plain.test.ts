import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, Either, FastCheck as fc, ParseResult, Schema } from "effect"
import { CountBody } from "../../src/http/CountBody.js"
import { compilePlain, NOT_PLAIN } from "../../src/http/internal/plain.js"

const Value = Schema.Struct({ value: Schema.Number, nodeId: Schema.String })
const Rich = Schema.Struct({
  kind: Schema.Literal("a", "b"),
  n: Schema.optional(Schema.Int.pipe(Schema.between(0, 10))),
  name: Schema.String.pipe(Schema.minLength(1), Schema.brand("Name")),
  inner: Schema.Struct({ ok: Schema.Boolean, note: Schema.optional(Schema.String) })
})
const schemas = { CountBody, Value, Rich } as const
// what ApiServer's decoder passes (codec.ts)
const parseOptions = { errors: "all", onExcessProperty: "ignore" } as const

const keys = ["by", "By", "value", "nodeId", "kind", "n", "name", "inner", "ok", "note"]
const leaf = fc.oneof(
  fc.integer({ min: -3, max: 12 }),
  fc.double(),
  fc.string({ maxLength: 3 }),
  fc.constantFrom("a", "b", "", "x"),
  fc.boolean(),
  fc.constant(undefined),
  fc.constant(null)
)
/** objects close to the schemas (right and wrong keys and values), and anything at all */
const input = fc.oneof(
  fc.dictionary(fc.constantFrom(...keys), fc.oneof(leaf, fc.dictionary(fc.constantFrom("ok", "note", "x"), leaf)), {
    maxKeys: 5
  }),
  fc.anything()
)

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
