import { describe, expect, it } from "@effect/vitest"
import { Effect, FiberRef, HashSet, Logger, Redacted, TestClock } from "effect"
import * as Logging from "../../src/observability/Logging.js"

/** Runs `program` under Logging.layer and returns the lines it logged. */
const capture = <A, E>(options: Omit<Logging.Options, "sink">, program: Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const lines: Array<string> = []
    yield* program.pipe(Effect.provide(Logging.layer({ ...options, sink: (l) => lines.push(l) })))
    return lines
  })

describe("Logging json", () => {
  it.effect("writes one JSON object per line with timestamp, level, message, annotations and spans", () =>
    Effect.gen(function* () {
      const lines = yield* capture(
        { level: "info", format: "json" },
        Effect.gen(function* () {
          yield* TestClock.adjust("25 millis")
          yield* Effect.logInfo("gossip started", "twice")
        }).pipe(Effect.annotateLogs({ addr: "127.0.0.1:9000", peers: 3 }), Effect.withLogSpan("startup"))
      )
      expect(lines).toHaveLength(1)
      const o = JSON.parse(lines[0]!)
      expect(o).toMatchObject({
        timestamp: "1970-01-01T00:00:00.025Z",
        level: "info",
        message: "gossip started twice",
        annotations: { addr: "127.0.0.1:9000", peers: 3 },
        spans: { startup: 25 }
      })
      expect(typeof o.fiber).toBe("string")
      expect(o.cause).toBeUndefined()
    }))

  it.effect("keeps a multi-line message on one line and carries the cause", () =>
    Effect.gen(function* () {
      const lines = yield* capture(
        { level: "info", format: "json" },
        Effect.logError("frame rejected\nsecond line", new Error("bad tag")).pipe(
          Effect.zipRight(Effect.fail("boom").pipe(Effect.tapErrorCause((c) => Effect.logWarning("failed", c)), Effect.ignore))
        )
      )
      expect(lines).toHaveLength(2)
      for (const l of lines) expect(l).not.toContain("\n")
      const first = JSON.parse(lines[0]!)
      expect(first.level).toBe("error")
      expect(first.message).toContain("frame rejected\nsecond line")
      expect(first.message).toContain("bad tag")
      const second = JSON.parse(lines[1]!)
      expect(second.level).toBe("warn")
      expect(second.cause).toContain("boom")
    }))

  it.effect("never throws on bigint, cycles or redacted values", () =>
    Effect.gen(function* () {
      const cyclic: Record<string, unknown> = { name: "a" }
      cyclic["self"] = cyclic
      const lines = yield* capture(
        { level: "info", format: "json" },
        Effect.log("odd values", { n: 10n }, cyclic).pipe(
          Effect.annotateLogs({ big: 2n ** 64n, key: Redacted.make("s3cret"), cyclic })
        )
      )
      expect(lines).toHaveLength(1)
      const o = JSON.parse(lines[0]!)
      expect(o.annotations.big).toBe("18446744073709551616")
      expect(lines[0]).not.toContain("s3cret")
      expect(o.message).toContain("[Circular]")
      expect(o.message).toContain('"n":"10"')
    }))
})

describe("Logging levels", () => {
  const all = Effect.all([
    Effect.logDebug("d"),
    Effect.logInfo("i"),
    Effect.logWarning("w"),
    Effect.logError("e")
  ])
  const levelsAt = (level: Logging.Level) =>
    capture({ level, format: "json" }, all).pipe(Effect.map((ls) => ls.map((l) => JSON.parse(l).level)))

  it.effect("filters below the minimum level", () =>
    Effect.gen(function* () {
      expect(yield* levelsAt("debug")).toEqual(["debug", "info", "warn", "error"])
      expect(yield* levelsAt("info")).toEqual(["info", "warn", "error"])
      expect(yield* levelsAt("warn")).toEqual(["warn", "error"])
      expect(yield* levelsAt("error")).toEqual(["error"])
    }))

  it.effect("replaces the default logger instead of adding to it", () =>
    Effect.gen(function* () {
      const loggers = yield* FiberRef.get(FiberRef.currentLoggers).pipe(
        Effect.provide(Logging.layer({ level: "info", format: "pretty", sink: () => {} }))
      )
      expect(HashSet.has(loggers, Logger.defaultLogger)).toBe(false)
      expect(HashSet.size(loggers)).toBeGreaterThanOrEqual(1)
    }))
})

describe("Logging pretty", () => {
  it.effect("writes a readable line with level, message, annotations and spans", () =>
    Effect.gen(function* () {
      const lines = yield* capture(
        { level: "info", format: "pretty", colors: false },
        Effect.gen(function* () {
          yield* TestClock.adjust("7 millis")
          yield* Effect.logWarning("peer suspect")
        }).pipe(Effect.annotateLogs({ peer: "127.0.0.1:9002", note: "two words" }), Effect.withLogSpan("probe"))
      )
      expect(lines).toEqual([
        '1970-01-01T00:00:00.007Z WARN  peer suspect peer=127.0.0.1:9002 note="two words" probe=7ms'
      ])
    }))

  it.effect("indents the cause under the line and colours only when asked", () =>
    Effect.gen(function* () {
      const plain = yield* capture(
        { level: "info", format: "pretty", colors: false },
        Effect.fail(new Error("disk full")).pipe(Effect.tapErrorCause((c) => Effect.logError("append failed", c)), Effect.ignore)
      )
      expect(plain).toHaveLength(1)
      const [head, ...rest] = plain[0]!.split("\n")
      expect(head).toBe("1970-01-01T00:00:00.000Z ERROR append failed")
      expect(rest.length).toBeGreaterThan(0)
      expect(rest.every((l) => l.startsWith("    "))).toBe(true)
      expect(rest.join("\n")).toContain("disk full")
      expect(plain[0]).not.toContain("\x1b[")
      const colored = yield* capture({ level: "info", format: "pretty", colors: true }, Effect.logInfo("hi"))
      expect(colored[0]).toContain("\x1b[32mINFO")
    }))
})

describe("safeStringify", () => {
  it("renders what JSON.stringify throws on", () => {
    const throwing = {
      get bad(): never {
        throw new Error("getter")
      }
    }
    expect(Logging.safeStringify({ a: 1n })).toBe('{"a":"1"}')
    expect(Logging.safeStringify(throwing)).toContain("unserializable: getter")
    const shared = { x: 1 }
    expect(Logging.safeStringify({ a: shared, b: shared })).toBe('{"a":{"x":1},"b":{"x":1}}')
    expect(JSON.parse(Logging.safeStringify(new Error("e")))).toMatchObject({ name: "Error", message: "e" })
  })
})
