import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import type { Command, RespProtocolError } from "../../../src/node/resp/RespParser.js"
import { encodeCommand, parseLength, RespParser, splitInline } from "../../../src/node/resp/RespParser.js"
import { split } from "../../support/chunks.js"

const RUNS = { numRuns: 500 }

/** Cuts `bytes` at the given positions (any order, duplicates allowed). */
const feed = (parser: RespParser, pieces: ReadonlyArray<Uint8Array>) => {
  const commands: Array<Command> = []
  let error: RespProtocolError | undefined
  for (const piece of pieces) {
    const r = parser.push(piece)
    commands.push(...r.commands)
    error ??= r.error
  }
  return { commands, error }
}

/** Any byte string, as the parser returns it (one latin1 character per byte). */
const binaryArg = fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString("latin1"))
const command = fc.array(binaryArg, { minLength: 1, maxLength: 8 })

describe("RespParser", () => {
  it.prop("encode -> parse round-trips any commands, split at any boundaries", [
    fc.array(command, { minLength: 1, maxLength: 20 }),
    fc.array(fc.nat(), { maxLength: 30 })
  ], ([commands, cuts]) => {
    const bytes = Buffer.concat(commands.map(encodeCommand))
    const r = feed(new RespParser(), split(bytes, cuts))
    expect(r.error).toBeUndefined()
    expect(r.commands).toEqual(commands)
  }, { fastCheck: RUNS })

  it.prop("byte by byte gives the same commands as all at once", [fc.array(command, { minLength: 1, maxLength: 5 })], ([commands]) => {
    const bytes = Buffer.concat(commands.map(encodeCommand))
    const pieces = [...bytes].map((b) => Uint8Array.of(b))
    expect(feed(new RespParser(), pieces).commands).toEqual(commands)
  }, { fastCheck: { numRuns: 100 } })

  it.prop("never throws on random bytes, and holds no more than its limits", [
    fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 20 })
  ], ([pieces]) => {
    const parser = new RespParser({ maxBulkBytes: 100, maxArgs: 10, maxLineBytes: 50 })
    for (const p of pieces) {
      parser.push(p)
      expect(parser.buffered).toBeLessThanOrEqual(200 + 100 + 2)
    }
  }, { fastCheck: RUNS })

  it.prop("a mutated frame is parsed or refused, never thrown; commands before it survive", [
    fc.array(command, { minLength: 2, maxLength: 6 }),
    fc.nat(),
    fc.integer({ min: 0, max: 255 })
  ], ([commands, at, byte]) => {
    const good = encodeCommand(commands[0]!)
    const rest = Buffer.concat(commands.slice(1).map(encodeCommand))
    const mutated = Buffer.from(rest)
    mutated[at % mutated.length] = byte
    const r = feed(new RespParser(), [good, mutated])
    expect(r.commands[0]).toEqual(commands[0])
    if (r.error !== undefined) expect(r.error.message).toMatch(/^Protocol error: /)
  }, { fastCheck: RUNS })

  it("refuses a 1 GB bulk length at once, without buffering", () => {
    const parser = new RespParser()
    const r = parser.push(Buffer.from("*2\r\n$4\r\nECHO\r\n$1073741824\r\n"))
    expect(r.commands).toEqual([])
    expect(r.error?.reason).toBe("InvalidBulkLength")
    expect(parser.buffered).toBe(0)
    // and nothing after it is parsed
    expect(parser.push(Buffer.from("*1\r\n$4\r\nPING\r\n")).commands).toEqual([])
  })

  it("refuses too many elements, negative or malformed lengths, missing CRLF", () => {
    const errorOf = (s: string, limits = {}) => new RespParser(limits).push(Buffer.from(s, "latin1")).error?.reason
    expect(errorOf("*100\r\n", { maxArgs: 10 })).toBe("InvalidMultibulkLength")
    expect(errorOf("*2147483648\r\n")).toBe("InvalidMultibulkLength")
    expect(errorOf("*x\r\n")).toBe("InvalidMultibulkLength")
    expect(errorOf("*1\r\n$-1\r\n")).toBe("InvalidBulkLength")
    expect(errorOf("*1\r\n$1x\r\n")).toBe("InvalidBulkLength")
    expect(errorOf("*1\r\n:1\r\n")).toBe("ExpectedBulk")
    expect(errorOf("*1\r\n$1\r\nab\r\n")).toBe("MissingCrlf")
    expect(errorOf("*1\n")).toBe("MissingCrlf")
    expect(errorOf(`*1\r\n$${"9".repeat(100)}`, { maxLineBytes: 50 })).toBe("LineTooLong")
    expect(errorOf("x".repeat(100), { maxLineBytes: 50 })).toBe("LineTooLong")
    expect(errorOf("SET \"a\n")).toBe("UnbalancedQuotes")
  })

  it("skips empty arrays and blank inline lines; parses inline commands", () => {
    const r = new RespParser().push(Buffer.from("*0\r\n\r\nINCRBY  k 5\r\nPING\n*-1\r\necho \"a b\\x41\" 'c\\'d'\r\n"))
    expect(r.error).toBeUndefined()
    expect(r.commands).toEqual([["INCRBY", "k", "5"], ["PING"], ["echo", "a bA", "c'd"]])
  })

  it("keeps only the unfinished frame between chunks", () => {
    const parser = new RespParser()
    const frame = encodeCommand(["ECHO", "x".repeat(10_000)])
    expect(parser.push(frame.subarray(0, 5000)).commands).toEqual([])
    expect(parser.buffered).toBeLessThan(5000)
    expect(parser.push(frame.subarray(5000)).commands).toEqual([["ECHO", "x".repeat(10_000)]])
    expect(parser.buffered).toBe(0)
  })

  it("parseLength and splitInline", () => {
    const b = (s: string) => Buffer.from(s)
    expect(parseLength(b("123"), 0, 3)).toBe(123)
    expect(parseLength(b("-1"), 0, 2)).toBe(-1)
    expect(parseLength(b(""), 0, 0)).toBeNaN()
    expect(parseLength(b("1 2"), 0, 3)).toBeNaN()
    expect(parseLength(b("9".repeat(16)), 0, 16)).toBeNaN()
    expect(splitInline("  a\tb  ")).toEqual(["a", "b"])
    expect(splitInline("\"a\"b")).toBeUndefined()
    expect(splitInline("'open")).toBeUndefined()
  })
})
