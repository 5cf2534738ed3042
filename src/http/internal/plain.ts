/**
 * A fast accept for the plain JSON shapes most endpoints declare: a struct of strings,
 * numbers, booleans and literals, with refinements (filters), optional keys, nested
 * structs, arrays of these, and unions of structs that no value can match two of (see
 * `Union`), and no transformations. For such a schema, decoding and encoding a valid value
 * both give a copy of it with the declared keys in declaration order; `compilePlain`
 * builds a function that checks exactly that, cheaper than the general parser on every
 * request body (docs/performance.md), and answers `NOT_PLAIN` whenever it is not sure:
 * missing or extra keys, a failing check, an unusual object. The caller then runs the full
 * decoder or encoder, which also writes the error message, so the two never disagree on
 * what is accepted (tested as a property).
 *
 * @internal
 */
import { Option } from "effect"
import type * as AST from "effect/SchemaAST"

export const NOT_PLAIN: unique symbol = Symbol.for("dcounter/http/NotPlain")

/** Returns the decoded (= encoded) value, or `NOT_PLAIN` to ask for the full parser. */
export type Plain = (input: unknown) => unknown

const options: AST.ParseOptions = { errors: "all", onExcessProperty: "ignore" }

const isPlainObject = (u: unknown): u is Record<PropertyKey, unknown> => {
  if (typeof u !== "object" || u === null) return false
  const proto: unknown = Object.getPrototypeOf(u)
  return proto === Object.prototype || proto === null
}

/** A string, number, boolean, undefined or literal type, refined or not. */
const isScalar = (ast: AST.AST): boolean => {
  switch (ast._tag) {
    case "StringKeyword":
    case "NumberKeyword":
    case "BooleanKeyword":
    case "UndefinedKeyword":
    case "Literal":
      return true
    case "Refinement":
      return isScalar(ast.from)
    default:
      return false
  }
}

/** A check of one value: the value itself, or NOT_PLAIN. */
type Check = (u: unknown) => unknown

const compile = (ast: AST.AST): Check | undefined => {
  switch (ast._tag) {
    case "StringKeyword":
      return (u) => (typeof u === "string" ? u : NOT_PLAIN)
    case "NumberKeyword":
      return (u) => (typeof u === "number" ? u : NOT_PLAIN)
    case "BooleanKeyword":
      return (u) => (typeof u === "boolean" ? u : NOT_PLAIN)
    case "UndefinedKeyword":
      return (u) => (u === undefined ? u : NOT_PLAIN)
    case "Literal": {
      const literal = ast.literal
      return (u) => (u === literal ? u : NOT_PLAIN)
    }
    case "Refinement": {
      const from = compile(ast.from)
      if (from === undefined) return undefined
      return (u) => {
        const a = from(u)
        return a !== NOT_PLAIN && Option.isNone(ast.filter(a, options, ast)) ? a : NOT_PLAIN
      }
    }
    case "TupleType": {
      // an array (`Schema.Array`): no fixed elements, one rest type; the output is a copy
      if (ast.elements.length > 0 || ast.rest.length !== 1) return undefined
      const item = compile(ast.rest[0]!.type)
      if (item === undefined) return undefined
      return (u) => {
        if (!Array.isArray(u)) return NOT_PLAIN
        const out = new Array<unknown>(u.length)
        for (let i = 0; i < u.length; i++) {
          const v = item(u[i])
          if (v === NOT_PLAIN) return NOT_PLAIN
          out[i] = v
        }
        return out
      }
    }
    case "Union": {
      if (!ast.types.every(isScalar)) return compileStructUnion(ast.types)
      // scalar members only (their output is their input): the first that accepts gives
      // the same value as the parser's
      const members: Array<Check> = []
      for (const t of ast.types) {
        const c = compile(t)
        if (c === undefined) return undefined
        members.push(c)
      }
      return (u) => {
        for (const m of members) if (m(u) !== NOT_PLAIN) return u
        return NOT_PLAIN
      }
    }
    case "TypeLiteral": {
      if (ast.indexSignatures.length > 0 || ast.propertySignatures.length === 0) return undefined
      const props: Array<{ readonly name: string; readonly optional: boolean; readonly check: Check }> = []
      for (const ps of ast.propertySignatures) {
        if (typeof ps.name !== "string") return undefined
        const check = compile(ps.type)
        if (check === undefined) return undefined
        props.push({ name: ps.name, optional: ps.isOptional, check })
      }
      const declared = new Set(props.map((p) => p.name))
      return (u) => {
        if (!isPlainObject(u)) return NOT_PLAIN
        // own enumerable string keys (Object.keys, far cheaper than Reflect.ownKeys). Symbol
        // and non-enumerable keys are not looked at: values parsed from JSON, query strings,
        // paths and headers have none, and encoding drops them as the full encoder does.
        const keys = Object.keys(u)
        if (keys.length > props.length) return NOT_PLAIN
        for (const k of keys) if (!declared.has(k)) return NOT_PLAIN
        const out: Record<string, unknown> = {}
        for (const p of props) {
          if (!Object.prototype.hasOwnProperty.call(u, p.name)) {
            if (p.optional) continue
            return NOT_PLAIN
          }
          const v = p.check(u[p.name])
          if (v === NOT_PLAIN) return NOT_PLAIN
          out[p.name] = v
        }
        return out
      }
    }
    default:
      return undefined
  }
}

/**
 * A union of structs with required keys only, where no member's keys are all among
 * another member's (`{value}` | `{error, message}`). The fast accept of a struct takes an
 * object with exactly its keys, so at most one member takes a value, and the parser (which
 * ignores excess keys) can take it with that member only: the first member the parser
 * tries that accepts it is that one, and both give the same copy.
 */
const compileStructUnion = (types: ReadonlyArray<AST.AST>): Check | undefined => {
  const keySets: Array<ReadonlySet<PropertyKey>> = []
  const members: Array<Check> = []
  for (const t of types) {
    if (t._tag !== "TypeLiteral" || t.propertySignatures.some((ps) => ps.isOptional)) return undefined
    const check = compile(t)
    if (check === undefined) return undefined
    keySets.push(new Set(t.propertySignatures.map((ps) => ps.name)))
    members.push(check)
  }
  for (const a of keySets) {
    for (const b of keySets) {
      if (a !== b && [...a].every((k) => b.has(k))) return undefined
    }
  }
  return (u) => {
    for (const m of members) {
      const v = m(u)
      if (v !== NOT_PLAIN) return v
    }
    return NOT_PLAIN
  }
}

/**
 * The fast accept of a schema's AST, or undefined when the schema is not a plain struct
 * (it transforms, declares, recurses, has index signatures...): then only the full parser runs.
 */
export const compilePlain = (ast: AST.AST): Plain | undefined => (ast._tag === "TypeLiteral" ? compile(ast) : undefined)
