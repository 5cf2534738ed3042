import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { globMatch, literalPrefix } from "../../../src/node/resp/Glob.js"
import { parseInteger } from "../../../src/node/resp/RespCommands.js"
import * as R from "../../../src/node/resp/RespReply.js"

describe("RespReply.encode", () => {
  it("encodes every type for RESP2 and RESP3", () => {
    const both = (reply: R.Reply) => [R.encode(reply, 2), R.encode(reply, 3)]
    expect(both(R.ok)).toEqual(["+OK\r\n", "+OK\r\n"])
    expect(both(R.error("ERR x\r\ny"))).toEqual(["-ERR x y\r\n", "-ERR x y\r\n"])
    expect(both(R.integer(-42))).toEqual([":-42\r\n", ":-42\r\n"])
    expect(both(R.bulk("\u00ff\r\n"))).toEqual(["$3\r\n\u00ff\r\n\r\n", "$3\r\n\u00ff\r\n\r\n"])
    expect(both(R.nil)).toEqual(["$-1\r\n", "_\r\n"])
    expect(both(R.array([R.integer(1), R.nil]))).toEqual(["*2\r\n:1\r\n$-1\r\n", "*2\r\n:1\r\n_\r\n"])
    expect(both(R.record([["a", R.integer(1)]]))).toEqual(["*2\r\n$1\r\na\r\n:1\r\n", "%1\r\n$1\r\na\r\n:1\r\n"])
    expect(both(R.set([R.simple("x")]))).toEqual(["*1\r\n+x\r\n", "~1\r\n+x\r\n"])
    expect(both(R.verbatim("hi"))).toEqual(["$2\r\nhi\r\n", "=6\r\ntxt:hi\r\n"])
    expect(both(R.boolean(true))).toEqual([":1\r\n", "#t\r\n"])
  })

  it.prop("a bulk string's length is its byte length on the wire", [fc.uint8Array({ maxLength: 100 })], ([bytes]) => {
    const s = Buffer.from(bytes).toString("latin1")
    const wire = Buffer.from(R.encode(R.bulk(s), 2), "latin1")
    expect(wire.equals(Buffer.concat([Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from("\r\n")]))).toBe(true)
  })
})

describe("parseInteger (Redis's string2ll)", () => {
  it("accepts what Redis accepts", () => {
    expect(parseInteger("0")).toBe(0)
    expect(parseInteger("-5")).toBe(-5)
    expect(parseInteger("9007199254740991")).toBe(Number.MAX_SAFE_INTEGER)
    expect(parseInteger("9223372036854775807")).toBe("unsafe")
    expect(parseInteger("-9223372036854775808")).toBe("unsafe")
    for (const bad of ["", "-", "01", "-0", "+1", " 1", "1 ", "1.5", "1e3", "9223372036854775808", "0x10"]) {
      expect(parseInteger(bad)).toBeUndefined()
    }
  })

  it.prop("round-trips every safe integer", [fc.maxSafeInteger()], ([n]) => {
    expect(parseInteger(String(n))).toBe(n)
  })
})

/** A reference: the glob as a regular expression (only `*`, `?` and literals). */
const reference = (pattern: string, text: string): boolean =>
  new RegExp(
    "^" + [...pattern].map((c) => (c === "*" ? "[\\s\\S]*" : c === "?" ? "[\\s\\S]" : c.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))).join("") + "$"
  ).test(text)

describe("globMatch", () => {
  it.prop("agrees with a regular expression on * and ? patterns", [
    fc.stringMatching(/^[ab*?]{0,8}$/),
    fc.stringMatching(/^[ab]{0,10}$/)
  ], ([pattern, text]) => {
    expect(globMatch(pattern, text)).toBe(reference(pattern, text))
  }, { fastCheck: { numRuns: 2000 } })

  it("classes, negation, ranges, escapes", () => {
    expect(globMatch("likes:*", "likes:42")).toBe(true)
    expect(globMatch("likes:*", "views:42")).toBe(false)
    expect(globMatch("k[0-9]", "k7")).toBe(true)
    expect(globMatch("k[^0-9]", "k7")).toBe(false)
    expect(globMatch("k[ab]x", "kbx")).toBe(true)
    expect(globMatch("a\\*", "a*")).toBe(true)
    expect(globMatch("a\\*", "ab")).toBe(false)
    expect(literalPrefix("likes:*")).toBe("likes:")
    expect(literalPrefix("a?b")).toBe("a")
  })
})
