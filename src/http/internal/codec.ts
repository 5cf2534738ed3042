/**
 * Decoders and response encoders precompiled from an `HttpApi` definition. A plain struct
 * is checked by its fast accept first (`plain.ts`); otherwise decoding and encoding run
 * synchronously (`Either`) and fall back to the Effect versions only for schemas that need
 * services or asynchronous work.
 *
 * @internal
 */
import { HttpApiSchema, UrlParams } from "@effect/platform"
import type { HttpApi } from "@effect/platform"
import { Effect, Either, ParseResult, Schema } from "effect"
import type * as AST from "effect/SchemaAST"
import { compilePlain, NOT_PLAIN } from "./plain.js"
import type { Plain } from "./plain.js"

/** The result of a synchronous step that may have to finish as an Effect. */
export type Step<A> =
  | { readonly _tag: "Ok"; readonly value: A }
  | { readonly _tag: "Bad"; readonly message: string }
  | { readonly _tag: "Async"; readonly effect: Effect.Effect<A, ParseResult.ParseIssue, unknown> }

const MAX_MESSAGE = 500

const truncate = (s: string): string => (s.length > MAX_MESSAGE ? `${s.slice(0, MAX_MESSAGE)}...` : s)

/** One decode problem: where in the part (`["by"]`), and the schema's message. */
export interface IssueLine {
  readonly path: ReadonlyArray<PropertyKey>
  readonly message: string
}

const partName: Readonly<Record<string, string>> = {
  body: "the body",
  path: "the path",
  query: "the query",
  headers: "the headers",
  response: "the response"
}

/** The expected type of a default Schema message, as a user would say it. */
const plainType = (type: string): string => {
  if (type.startsWith("{")) return "a JSON object"
  if (type.startsWith("ReadonlyArray<") || type.endsWith("[]")) return "a JSON array"
  if (type === "number") return "a number"
  if (type === "string") return "a string"
  if (type === "boolean") return "true or false"
  return type
}

/**
 * One plain sentence for one problem: the schema's own message when it has one (`by must
 * be a positive integer`), else Schema's default (`Expected number, actual "x"`, `is
 * missing`, `is unexpected`) said in words, naming the field.
 */
const sentence = (where: string, issue: IssueLine): string | undefined => {
  const field = issue.path.length === 0
    ? (partName[where] ?? where)
    : `${where === "query" ? "query parameter " : ""}${issue.path.map(String).join(".")}`
  const m = issue.message
  if (m === "is missing") return `${field} is missing`
  const unexpected = /^is unexpected, expected: (.*)$/s.exec(m)
  if (unexpected !== null) {
    const name = String(issue.path[issue.path.length - 1] ?? field)
    return `unknown field "${name}"${where === "body" ? " in the body" : ""} (expected ${unexpected[1]!.replaceAll(" | ", " or ")})`
  }
  const expected = /^Expected (.+), actual (.+)$/s.exec(m)
  if (expected !== null) {
    // the `undefined` member of an optional field's union: the other member says what is wrong
    if (expected[1] === "undefined") return undefined
    // a whole body is an object here; Schema names it by its identifier (`CountBody`)
    const type = issue.path.length === 0 && where === "body" ? "a JSON object" : plainType(expected[1]!)
    return `${field} must be ${type}, not ${expected[2]!.slice(0, 60)}`
  }
  const last = issue.path.length === 0 ? undefined : String(issue.path[issue.path.length - 1])
  return last === undefined || m.includes(last) ? m : `${field}: ${m}`
}

/** Plain sentences for `issues`, without repeats, joined with `; ` (at most five). */
export const describeIssues = (where: string, issues: ReadonlyArray<IssueLine>): string => {
  const lines: Array<string> = []
  for (const issue of issues) {
    const line = sentence(where, issue)
    if (line !== undefined && !lines.includes(line)) lines.push(line)
  }
  if (lines.length === 0) return `${partName[where] ?? where} is not valid`
  const shown = lines.slice(0, 5)
  if (lines.length > 5) shown.push(`and ${lines.length - 5} more`)
  return truncate(shown.join("; "))
}

/** `by must be a positive integer`; `addr is missing; nodeId is missing` */
export const formatIssue = (where: string, issue: ParseResult.ParseIssue): string =>
  describeIssues(where, ParseResult.ArrayFormatter.formatIssueSync(issue))

/** Whether an issue (anywhere in its tree) says the schema could not run synchronously. */
const needsEffect = (issue: ParseResult.ParseIssue): boolean => {
  switch (issue._tag) {
    case "Forbidden":
      return true
    case "Pointer":
    case "Refinement":
    case "Transformation":
      return needsEffect(issue.issue)
    case "Composite":
      return Array.isArray(issue.issues)
        ? issue.issues.some(needsEffect)
        : needsEffect(issue.issues as ParseResult.ParseIssue)
    default:
      return false
  }
}

const parseOptions = { errors: "all", onExcessProperty: "ignore" } as const

export type Decoder = (input: unknown) => Step<unknown>

/** A decoder of one request part; `where` prefixes messages (`body`, `path`, `query`). */
export const makeDecoder = (schema: Schema.Schema<unknown, unknown, unknown>, where: string): Decoder => {
  const plain = compilePlain(schema.ast)
  const sync = ParseResult.decodeUnknownEither(schema as Schema.Schema<unknown, unknown, never>, parseOptions)
  const effect = ParseResult.decodeUnknown(schema, parseOptions)
  return (input) => {
    if (plain !== undefined) {
      const value = plain(input)
      if (value !== NOT_PLAIN) return { _tag: "Ok", value }
    }
    const result = sync(input)
    if (Either.isRight(result)) return { _tag: "Ok", value: result.right }
    if (needsEffect(result.left)) {
      return { _tag: "Async", effect: effect(input) }
    }
    return { _tag: "Bad", message: formatIssue(where, result.left) }
  }
}

// ---------------------------------------------------------------------------------------
// url parameters (mirrors HttpApiBuilder's normalisation: a key whose schema expects an
// array gets an array even when it appears once)

const isSingleStringType = (ast: AST.AST, key?: PropertyKey): boolean => {
  switch (ast._tag) {
    case "StringKeyword":
    case "Literal":
    case "TemplateLiteral":
    case "Enums":
      return true
    case "TypeLiteral": {
      if (key !== undefined) {
        const ps = ast.propertySignatures.find((p) => p.name === key)
        return ps !== undefined
          ? isSingleStringType(ps.type, key)
          : ast.indexSignatures.some(
            (is) => Schema.is(Schema.make(is.parameter))(key) && isSingleStringType(is.type)
          )
      }
      return false
    }
    case "Union":
      return ast.types.some((t) => isSingleStringType(t, key))
    case "Suspend":
      return isSingleStringType(ast.f(), key)
    case "Refinement":
    case "Transformation":
      return isSingleStringType(ast.from, key)
    default:
      return false
  }
}

export type QueryRecord = Record<string, string | Array<string>>

/** Parses a query string like `UrlParams.toRecord`: repeated keys become arrays. */
export const parseQuery = (query: string): QueryRecord => {
  if (query === "") return {}
  // no prototype while building: keys like "constructor" or "__proto__" are plain keys
  const out: QueryRecord = Object.create(null) as QueryRecord
  for (const [k, v] of new URLSearchParams(query)) {
    const current = out[k]
    if (current === undefined) out[k] = v
    else if (typeof current === "string") out[k] = [current, v]
    else current.push(v)
  }
  return { ...out }
}

export const makeUrlParamsNormalizer = (ast: AST.AST) => (params: QueryRecord): QueryRecord => {
  const out: QueryRecord = Object.create(null) as QueryRecord
  for (const key of Object.keys(params)) {
    const value = params[key]!
    out[key] = Array.isArray(value) || isSingleStringType(ast, key) ? value : [value]
  }
  return { ...out }
}

// ---------------------------------------------------------------------------------------
// responses

/** A response ready to be written. */
export interface Encoded {
  readonly status: number
  readonly contentType: string | undefined
  readonly body: string | Uint8Array | undefined
}

interface Member {
  readonly schema: Schema.Schema<unknown, unknown, unknown>
  /** the fast accept of a plain struct (see `plain.ts`) */
  readonly plain: Plain | undefined
  readonly is: (u: unknown) => boolean
  readonly encode: (u: unknown) => Either.Either<unknown, ParseResult.ParseIssue>
  readonly encodeEffect: (u: unknown) => Effect.Effect<unknown, ParseResult.ParseIssue, unknown>
  readonly status: number
  readonly encoding: HttpApiSchema.Encoding
  readonly empty: boolean
}

const makeMember = (schema: Schema.Schema<unknown, unknown, unknown>, status: number): Member => ({
  schema,
  plain: compilePlain(schema.ast),
  is: Schema.is(schema as Schema.Schema<unknown>),
  encode: ParseResult.encodeUnknownEither(schema as Schema.Schema<unknown, unknown, never>),
  encodeEffect: ParseResult.encodeUnknown(schema),
  status,
  encoding: HttpApiSchema.getEncoding(schema.ast),
  empty: HttpApiSchema.isVoid(schema.ast)
})

const toBody = (member: Member, encoded: unknown): Encoded => {
  if (member.empty) return { status: member.status, contentType: undefined, body: undefined }
  const contentType = member.encoding.contentType
  switch (member.encoding.kind) {
    case "Json":
      return { status: member.status, contentType, body: JSON.stringify(encoded) ?? "null" }
    case "Text":
      return { status: member.status, contentType, body: String(encoded) }
    case "Uint8Array":
      return { status: member.status, contentType, body: encoded as Uint8Array }
    case "UrlParams":
      return {
        status: member.status,
        contentType,
        body: UrlParams.toString(UrlParams.fromInput(encoded as UrlParams.Input))
      }
  }
}

export type EncodeResult =
  | Step<Encoded>
  /** no member of the schema accepts the value */
  | { readonly _tag: "NoMember" }

/** Encodes a value with the first member of a (de-unionised) response schema that accepts it. */
export interface ResponseEncoder {
  readonly encode: (value: unknown) => EncodeResult
}

export const makeResponseEncoder = (
  schemas: ReadonlyArray<Schema.Schema<unknown, unknown, unknown>>,
  getStatus: (ast: AST.AST) => number
): ResponseEncoder => {
  const members = schemas.filter((s) => s.ast._tag !== "NeverKeyword").map((s) => makeMember(s, getStatus(s.ast)))
  const single = members.length === 1 ? members[0] : undefined
  const run = (member: Member, value: unknown): EncodeResult => {
    if (member.plain !== undefined) {
      const encoded = member.plain(value)
      if (encoded !== NOT_PLAIN) return { _tag: "Ok", value: toBody(member, encoded) }
    }
    const result = member.encode(value)
    if (Either.isRight(result)) return { _tag: "Ok", value: toBody(member, result.right) }
    if (needsEffect(result.left)) {
      return { _tag: "Async", effect: Effect.map(member.encodeEffect(value), (encoded) => toBody(member, encoded)) }
    }
    return { _tag: "Bad", message: formatIssue("response", result.left) }
  }
  return {
    encode: (value) => {
      if (single !== undefined) return run(single, value)
      for (const member of members) {
        if (member.is(value)) return run(member, value)
      }
      return { _tag: "NoMember" }
    }
  }
}

/** The members of a response schema, split like `HttpApiBuilder` does (one per union member). */
export const deunionize = (...schemas: ReadonlyArray<Schema.Schema.All>): Array<Schema.Schema<unknown, unknown, unknown>> => {
  const set = new Set<Schema.Schema.Any>()
  for (const s of schemas) HttpApiSchema.deunionize(set, s as Schema.Schema.Any)
  return [...set] as Array<Schema.Schema<unknown, unknown, unknown>>
}

/** Every error schema of an API: its own, each group's and each endpoint's, in that order. */
export const apiErrorSchemas = (api: HttpApi.HttpApi.AnyWithProps): Array<Schema.Schema<unknown, unknown, unknown>> => {
  const all: Array<Schema.Schema.All> = [api.errorSchema]
  for (const group of Object.values(api.groups)) {
    for (const endpoint of Object.values(group.endpoints)) all.push(endpoint.errorSchema)
    all.push(group.errorSchema)
  }
  return deunionize(...all)
}
