/**
 * The reply side of RESP: a small reply type and its encoding for RESP2 and RESP3.
 *
 * Strings hold one character per byte (latin1), like the parser's arguments, so a bulk
 * string's length is its `length` and the encoded reply is written with `latin1`. RESP3
 * types are lowered for a RESP2 connection the way Redis lowers them: null -> `$-1`,
 * map -> flat array, set -> array, verbatim string -> bulk string, boolean -> integer.
 */
export type Reply =
  | { readonly _tag: "Simple"; readonly value: string }
  | { readonly _tag: "Error"; readonly message: string }
  | { readonly _tag: "Integer"; readonly value: number }
  | { readonly _tag: "Bulk"; readonly value: string }
  | { readonly _tag: "Null" }
  | { readonly _tag: "Array"; readonly items: ReadonlyArray<Reply> }
  | { readonly _tag: "Map"; readonly entries: ReadonlyArray<readonly [Reply, Reply]> }
  | { readonly _tag: "Set"; readonly items: ReadonlyArray<Reply> }
  | { readonly _tag: "Verbatim"; readonly format: string; readonly value: string }
  | { readonly _tag: "Boolean"; readonly value: boolean }

export type Protocol = 2 | 3

export const simple = (value: string): Reply => ({ _tag: "Simple", value })
/** An error reply; `message` starts with its code (`ERR ...`, `WRONGPASS ...`). */
export const error = (message: string): Reply => ({ _tag: "Error", message })
export const integer = (value: number): Reply => ({ _tag: "Integer", value })
export const bulk = (value: string): Reply => ({ _tag: "Bulk", value })
export const nil: Reply = { _tag: "Null" }
export const array = (items: ReadonlyArray<Reply>): Reply => ({ _tag: "Array", items })
export const map = (entries: ReadonlyArray<readonly [Reply, Reply]>): Reply => ({ _tag: "Map", entries })
export const set = (items: ReadonlyArray<Reply>): Reply => ({ _tag: "Set", items })
export const verbatim = (value: string, format = "txt"): Reply => ({ _tag: "Verbatim", format, value })
export const boolean = (value: boolean): Reply => ({ _tag: "Boolean", value })
export const ok: Reply = simple("OK")

/** A map from string keys (bulk strings) to replies. */
export const record = (fields: ReadonlyArray<readonly [string, Reply]>): Reply =>
  map(fields.map(([k, v]) => [bulk(k), v] as const))

/** Simple strings and errors are one line: CR and LF would end them early. */
const oneLine = (s: string): string => (s.includes("\r") || s.includes("\n") ? s.replace(/[\r\n]+/g, " ") : s)

/** The encoded reply (latin1: one byte per character). */
export const encode = (reply: Reply, protocol: Protocol): string => {
  switch (reply._tag) {
    case "Simple":
      return `+${oneLine(reply.value)}\r\n`
    case "Error":
      return `-${oneLine(reply.message)}\r\n`
    case "Integer":
      return `:${reply.value}\r\n`
    case "Bulk":
      return `$${reply.value.length}\r\n${reply.value}\r\n`
    case "Null":
      return protocol === 3 ? "_\r\n" : "$-1\r\n"
    case "Array":
      return aggregate("*", reply.items, protocol)
    case "Set":
      return aggregate(protocol === 3 ? "~" : "*", reply.items, protocol)
    case "Map": {
      if (protocol === 2) return aggregate("*", reply.entries.flat(), protocol)
      let out = `%${reply.entries.length}\r\n`
      for (const [k, v] of reply.entries) out += encode(k, protocol) + encode(v, protocol)
      return out
    }
    case "Verbatim": {
      if (protocol === 2) return `$${reply.value.length}\r\n${reply.value}\r\n`
      const body = `${reply.format.padEnd(3, " ").slice(0, 3)}:${reply.value}`
      return `=${body.length}\r\n${body}\r\n`
    }
    case "Boolean":
      return protocol === 3 ? `#${reply.value ? "t" : "f"}\r\n` : `:${reply.value ? 1 : 0}\r\n`
  }
}

const aggregate = (prefix: string, items: ReadonlyArray<Reply>, protocol: Protocol): string => {
  let out = `${prefix}${items.length}\r\n`
  for (const item of items) out += encode(item, protocol)
  return out
}
