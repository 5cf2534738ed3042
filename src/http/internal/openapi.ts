/**
 * The OpenAPI document as served: `OpenApi.fromApi` output, corrected where the generator
 * describes the platform's stock server rather than ours.
 *
 * - 400: the platform documents its `HttpApiDecodeError` (`issues`, `_tag`), which this server
 *   never sends: every error is the contract's `{"error", "message"}`. It is taken out of
 *   every response, and the components only it used are dropped.
 * - A request body whose schema requires no property is optional (`required: false`):
 *   increment and decrement count a request without a body as `by: 1`.
 * - `info.version` is the package's; `servers` names this server (a relative URL, so the
 *   document is right behind any host, port or proxy).
 * - No `securitySchemes` when the API has none (documentation tools otherwise offer to
 *   "authorize" against nothing), and `security: []`: explicitly none.
 * - `info.license` from the package.
 * - Every component's `title` is its (unique) component name, never a refinement's
 *   (`lessThanOrEqualTo(...)`) or a shared one (`int`).
 * - Every operation has a summary and a description: those written in the API definition,
 *   else the description's first sentence as the summary and the summary as the description.
 *
 * @internal
 */

type Json = null | boolean | number | string | Array<Json> | { [key: string]: Json }
type JsonObject = { [key: string]: Json }

const isObject = (u: unknown): u is JsonObject => typeof u === "object" && u !== null && !Array.isArray(u)

const DECODE_ERROR_REF = "#/components/schemas/HttpApiDecodeError"

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const

/** Removes the decode error from a response schema; undefined when nothing is left. */
const withoutDecodeError = (schema: JsonObject): JsonObject | undefined => {
  if (schema["$ref"] === DECODE_ERROR_REF) return undefined
  const anyOf = schema["anyOf"]
  if (!Array.isArray(anyOf)) return schema
  const rest = anyOf.filter((s) => !(isObject(s) && s["$ref"] === DECODE_ERROR_REF))
  if (rest.length === 0) return undefined
  if (rest.length === 1 && isObject(rest[0])) return rest[0]
  return { ...schema, anyOf: rest }
}

/** Every `$ref` target reachable from `node`. */
const refsIn = (node: unknown, out: Set<string>): void => {
  if (Array.isArray(node)) for (const n of node) refsIn(n, out)
  else if (isObject(node)) {
    for (const [k, v] of Object.entries(node)) {
      if (k === "$ref" && typeof v === "string") out.add(v)
      else refsIn(v, out)
    }
  }
}

const firstSentence = (text: string): string => {
  const m = /^(.+?[.;:])(\s|$)/.exec(text)
  return (m === null ? text : m[1]!.replace(/[;:]$/, "")).trim()
}

/** `counters.list` -> `Counters list` */
const fromOperationId = (id: string): string => {
  const words = id.replace(/([a-z])([A-Z])/g, "$1 $2").replace(/[._-]+/g, " ").toLowerCase().trim()
  return words.charAt(0).toUpperCase() + words.slice(1)
}

export interface FinalizeOptions {
  readonly version: string
  /** an SPDX identifier */
  readonly license: string
}

/** The served document (a new object; `spec` is not changed). */
export const finalize = (spec: unknown, options: FinalizeOptions): JsonObject => {
  const doc = structuredClone(spec) as JsonObject
  const info = isObject(doc["info"]) ? doc["info"] : {}
  doc["info"] = { ...info, version: options.version, license: { name: options.license, identifier: options.license } }
  if (doc["servers"] === undefined) doc["servers"] = [{ url: "/", description: "the server this document is served by" }]

  const components = isObject(doc["components"]) ? doc["components"] : {}
  doc["components"] = components
  const schemes = components["securitySchemes"]
  const hasSecurity = isObject(schemes) && Object.keys(schemes).length > 0
  if (!hasSecurity) {
    delete components["securitySchemes"]
    // explicitly none, for every operation (linters ask; nothing offers to authorize)
    doc["security"] = []
  }

  const schemas = isObject(components["schemas"]) ? components["schemas"] : {}
  const paths = isObject(doc["paths"]) ? doc["paths"] : {}
  for (const item of Object.values(paths)) {
    if (!isObject(item)) continue
    for (const method of METHODS) {
      const op = item[method]
      if (!isObject(op)) continue
      // responses
      const responses = isObject(op["responses"]) ? op["responses"] : {}
      for (const [status, response] of Object.entries(responses)) {
        if (!isObject(response) || !isObject(response["content"])) continue
        for (const media of Object.values(response["content"])) {
          if (!isObject(media) || !isObject(media["schema"])) continue
          const schema = withoutDecodeError(media["schema"])
          if (schema === undefined) delete responses[status]
          else media["schema"] = schema
        }
        if (status === "400" && responses[status] !== undefined) {
          response["description"] = "Bad input: the message says what is wrong, in one sentence per problem; nothing changed"
        }
      }
      // optional body
      const body = op["requestBody"]
      if (isObject(body) && isObject(body["content"])) {
        const optional = Object.values(body["content"]).every((media) => {
          if (!isObject(media) || !isObject(media["schema"])) return false
          const ref = media["schema"]["$ref"]
          const target = typeof ref === "string" ? schemas[ref.replace("#/components/schemas/", "")] : media["schema"]
          return isObject(target) && target["type"] === "object" &&
            (!Array.isArray(target["required"]) || target["required"].length === 0)
        })
        if (optional) body["required"] = false
      }
      // summary and description
      const description = typeof op["description"] === "string" ? op["description"] : undefined
      if (typeof op["summary"] !== "string" || op["summary"] === "") {
        op["summary"] = description !== undefined
          ? firstSentence(description)
          : fromOperationId(typeof op["operationId"] === "string" ? op["operationId"] : `${method} route`)
      }
      if (description === undefined || description === "") op["description"] = op["summary"]
    }
  }

  // components nothing refers to any more (the decode error and its parts)
  for (;;) {
    const used = new Set<string>()
    refsIn({ ...doc, components: { ...components, schemas: {} } }, used)
    for (const [name, schema] of Object.entries(schemas)) if (used.has(`#/components/schemas/${name}`)) refsIn(schema, used)
    // schemas referred to only from other schemas: follow until nothing new appears
    let grown = true
    while (grown) {
      grown = false
      for (const [name, schema] of Object.entries(schemas)) {
        const ref = `#/components/schemas/${name}`
        if (!used.has(ref)) continue
        const before = used.size
        refsIn(schema, used)
        if (used.size > before) grown = true
      }
    }
    const unused = Object.keys(schemas).filter((name) => !used.has(`#/components/schemas/${name}`))
    if (unused.length === 0) break
    for (const name of unused) delete schemas[name]
  }
  for (const [name, schema] of Object.entries(schemas)) {
    if (isObject(schema) && schema["title"] !== undefined) schema["title"] = name
  }
  return doc
}
