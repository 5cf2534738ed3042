/**
 * The two halves of quiet tests: live testers from `test/support/vitest.ts` drop Effect's
 * log lines, and the console guard (the unit project's setup file) sees whatever is still
 * printed, so it can fail the test that printed it.
 */
import { it as plain } from "@effect/vitest"
import { Effect } from "effect"
import { drain } from "./consoleGuard.js"
import * as TestLogger from "./TestLogger.js"
import { describe, expect, it } from "./vitest.js"

describe("quiet tests", () => {
  it.live("it.live runs without Effect's default logger", () =>
    Effect.gen(function*() {
      yield* Effect.logWarning("not printed")
      yield* Effect.logError("not printed either")
      expect(drain()).toEqual([])
    }))

  it.scopedLive("it.scopedLive too", () =>
    Effect.gen(function*() {
      yield* Effect.logInfo("not printed")
      expect(drain()).toEqual([])
    }))

  it.live("a test that asserts on log lines still captures them, WARN and ERROR included", () =>
    Effect.gen(function*() {
      const logs = TestLogger.capture()
      yield* Effect.gen(function*() {
        yield* Effect.logInfo("started")
        yield* Effect.logWarning("peer", "unreachable")
        yield* Effect.logError("gave up")
      }).pipe(Effect.provide(logs.layer))
      expect(logs.lines.map((l) => `${l.level} ${l.message}`)).toEqual(["INFO started", "WARN peer unreachable", "ERROR gave up"])
      expect(drain()).toEqual([])
    }))

  plain.live("the guard sees what Effect's default logger prints", () =>
    Effect.gen(function*() {
      yield* Effect.logInfo("printed on purpose")
      const lines = drain()
      expect(lines).toHaveLength(1)
      expect(lines[0]).toMatch(/^console\.log: timestamp=.* level=INFO .*message="printed on purpose"/)
    }))

  it("the guard sees direct writes to stdout and stderr, and calls a write's callback", async () => {
    await new Promise<void>((resolve) => process.stderr.write("to stderr\n", () => resolve()))
    process.stdout.write(new TextEncoder().encode("to stdout\n"))
    console.warn("a %s warning", "formatted")
    expect(drain()).toEqual(["stderr: to stderr\n", "stdout: to stdout\n", "console.warn: a formatted warning"])
  })
})
