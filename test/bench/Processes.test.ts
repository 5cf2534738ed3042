import { describe, expect, it } from "../support/vitest.js"
import { Effect } from "effect"
import * as Net from "node:net"
import { ephemeralLow, freePorts, parseProcStat } from "../../bench/Processes.js"

describe("bench/Processes", () => {
  it("reads user + system CPU seconds from /proc/<pid>/stat, after the last parenthesis of the name", () => {
    const rest = "S 1 2 3 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 11 0 1234 1000000 5000 18446744073709551615"
    expect(parseProcStat(`4242 (node) ${rest}`)).toBe(3)
    // a command name with spaces and parentheses
    expect(parseProcStat(`4242 (we (ird) name) ${rest}`)).toBe(3)
    expect(parseProcStat("")).toBeUndefined()
    expect(parseProcStat("4242 (node) S 1 2")).toBeUndefined()
  })

  it("reads the start of the kernel's ephemeral port range, 32768 when it cannot", () => {
    expect(ephemeralLow("32768\t60999\n")).toBe(32768)
    expect(ephemeralLow("40000 50000")).toBe(40000)
    expect(ephemeralLow(undefined)).toBe(32768)
    expect(ephemeralLow("garbage")).toBe(32768)
    expect(ephemeralLow("80 90")).toBe(32768)
  })

  it.live("hands out distinct ports that can be listened on", () =>
    Effect.gen(function*() {
      const ports = yield* Effect.promise(() => freePorts(6)).pipe(Effect.timeout("10 seconds"))
      expect(new Set(ports).size).toBe(6)
      for (const p of ports) {
        expect(p).toBeGreaterThanOrEqual(1024)
        const server = Net.createServer()
        yield* Effect.async<void, Error>((resume) => {
          server.once("error", (e) => resume(Effect.fail(e)))
          server.listen(p, "127.0.0.1", () => server.close(() => resume(Effect.void)))
        })
      }
    }))
})
