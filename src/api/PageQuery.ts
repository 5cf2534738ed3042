/**
 * The query of a paged listing, `GET /counters?limit=N&after=NAME&prefix=P`, shared by the
 * node and gateway APIs (the gateway validates exactly as a node does, so a bad query is
 * answered 400 without reaching any node):
 *
 * - `limit`: 1 to 1000 counters per page (default 100), written in plain decimal digits;
 * - `after`: a counter name; the page starts after it (it need not exist);
 * - `prefix`: 0 to 128 characters of the name alphabet; only names starting with it;
 * - `order` (added 2026-12): `name` (the default) or `recent`, most recently written first;
 *   with `recent`, `after` is the previous page's `next` (a cursor of the node that answered)
 *   and a page may hold fewer than `limit` counters while `next` is present.
 *
 * Each bad value gets one message naming the parameter and what it takes. A key given twice
 * is refused like a bad value (it would be ambiguous).
 */
import { Schema } from "effect"

export const DEFAULT_PAGE_LIMIT = 100
export const MAX_PAGE_LIMIT = 1000

const shown = (actual: unknown): string => (typeof actual === "string" ? JSON.stringify(actual) : "a repeated parameter")

/** `limit`: "1" to "1000" (no sign, exponent, spaces or leading zeros), decoded to a number. */
export const PageLimit = Schema.transform(
  Schema.String.pipe(Schema.pattern(/^(?:[1-9][0-9]{0,2}|1000)$/)),
  Schema.Int.pipe(Schema.between(1, MAX_PAGE_LIMIT)),
  { strict: true, decode: (s) => Number(s), encode: (n) => String(n) }
).annotations({
  description: `At most this many counters (1 to ${MAX_PAGE_LIMIT}; default ${DEFAULT_PAGE_LIMIT})`,
  message: (issue) => ({
    message: `limit must be a whole number from 1 to ${MAX_PAGE_LIMIT}, not ${shown(issue.actual)}`,
    override: true
  })
})

/** `after`: a counter name (by name), or a cursor made of the same characters (by recency). */
export const PageAfter = Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9._:-]{1,128}$/)).annotations({
  description: "The previous page's `next`. By name: the page starts after this counter name (it need not exist); " +
    "with `order=recent`: a cursor only the node that issued it resolves",
  message: (issue) => ({
    message: `after must be a counter name (1 to 128 characters of [A-Za-z0-9._:-]), not ${shown(issue.actual)}`,
    override: true
  })
})

/** `prefix`: 0 to 128 characters of the name alphabet. */
export const PagePrefix = Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9._:-]{0,128}$/)).annotations({
  description: "Only counters whose names start with this (0 to 128 characters of [A-Za-z0-9._:-])",
  message: (issue) => ({
    message: `prefix must be at most 128 characters of [A-Za-z0-9._:-], not ${shown(issue.actual)}`,
    override: true
  })
})

/** `order`: `name` (the default) or `recent`. */
export const PageOrder = Schema.Literal("name", "recent").annotations({
  description: "`name` (the default): sorted by name. `recent`: most recently written first, by the order in which " +
    "the answering node saw the writes",
  message: (issue) => ({ message: `order must be name or recent, not ${shown(issue.actual)}`, override: true })
})

export const PageQuery = Schema.Struct({
  limit: Schema.optionalWith(PageLimit, { exact: true }),
  after: Schema.optionalWith(PageAfter, { exact: true }),
  prefix: Schema.optionalWith(PagePrefix, { exact: true }),
  order: Schema.optionalWith(PageOrder, { exact: true })
})
export type PageQuery = typeof PageQuery.Type

/** What a store's `page` takes, with the default limit filled in. */
export const pageRequestOf = (
  query: PageQuery
): { limit: number; after?: string; prefix?: string; order?: "name" | "recent" } => ({
  limit: query.limit ?? DEFAULT_PAGE_LIMIT,
  ...(query.after === undefined ? {} : { after: query.after }),
  ...(query.prefix === undefined ? {} : { prefix: query.prefix }),
  ...(query.order === undefined ? {} : { order: query.order })
})

/** The query string (`?limit=...`, or "" when empty) that asks a node for the same page. */
export const searchOf = (query: PageQuery): string => {
  const params = new URLSearchParams()
  if (query.limit !== undefined) params.set("limit", String(query.limit))
  if (query.after !== undefined) params.set("after", query.after)
  if (query.prefix !== undefined) params.set("prefix", query.prefix)
  if (query.order !== undefined) params.set("order", query.order)
  const s = params.toString()
  return s === "" ? "" : `?${s}`
}
