import { describe, expect, it } from "@effect/vitest"
import { parseProcStat } from "../../bench/Processes.js"

describe("bench/Processes", () => {
  it("reads user + system CPU seconds from /proc/<pid>/stat, after the last parenthesis of the name", () => {
    const rest = "S 1 2 3 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 11 0 1234 1000000 5000 18446744073709551615"
    expect(parseProcStat(`4242 (node) ${rest}`)).toBe(3)
    // a command name with spaces and parentheses
    expect(parseProcStat(`4242 (we (ird) name) ${rest}`)).toBe(3)
    expect(parseProcStat("")).toBeUndefined()
    expect(parseProcStat("4242 (node) S 1 2")).toBeUndefined()
  })
})
