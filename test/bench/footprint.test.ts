import { describe, expect, it } from "@effect/vitest"
import { FastCheck } from "effect"
import { median, packageImportsOf, parseProcStatus, settle } from "../../bench/footprint.js"
import type { MemorySample } from "../../bench/footprint.js"

const status = `Name:\tnode
Umask:\t0022
State:\tS (sleeping)
Pid:\t14811
VmPeak:\t 1234567 kB
VmSize:\t 1200000 kB
VmHWM:\t  159100 kB
VmRSS:\t  159016 kB
RssAnon:\t  114700 kB
RssFile:\t   44300 kB
RssShmem:\t      16 kB
Threads:\t11
`

describe("footprint helpers", () => {
  it("reads VmRSS, VmHWM, RssAnon and RssFile from /proc/<pid>/status", () => {
    expect(parseProcStatus(status)).toEqual({ rssKiB: 159016, peakKiB: 159100, anonKiB: 114700, fileKiB: 44300 })
  })

  it("has no memory for a status without VmRSS (a zombie) and leaves absent fields undefined", () => {
    expect(parseProcStatus("Name:\tnode\nState:\tZ (zombie)\n")).toBeUndefined()
    expect(parseProcStatus("VmRSS:\t 2048 kB\n")).toEqual({ rssKiB: 2048, peakKiB: undefined, anonKiB: undefined, fileKiB: undefined })
    // VmRSSx is not VmRSS
    expect(parseProcStatus("VmRSSx:\t 2048 kB\n")).toBeUndefined()
  })

  it("median: middle value, mean of the two middle ones, NaN for none; order does not matter", () => {
    expect(median([3, 1, 2])).toBe(2)
    expect(median([4, 1, 3, 2])).toBe(2.5)
    expect(median([7])).toBe(7)
    expect(median([])).toBeNaN()
    FastCheck.assert(
      FastCheck.property(FastCheck.array(FastCheck.double({ noNaN: true, min: -1e9, max: 1e9 }), { minLength: 1 }), (xs) => {
        const m = median(xs)
        const sorted = [...xs].sort((a, b) => a - b)
        expect(median([...xs].reverse())).toBe(m)
        expect(m).toBeGreaterThanOrEqual(sorted[0]!)
        expect(m).toBeLessThanOrEqual(sorted[sorted.length - 1]!)
        // as many values strictly below as strictly above, at most
        const below = xs.filter((x) => x < m).length
        const above = xs.filter((x) => x > m).length
        expect(below).toBeLessThanOrEqual(Math.floor(xs.length / 2))
        expect(above).toBeLessThanOrEqual(Math.floor(xs.length / 2))
      }),
      { numRuns: 1000 }
    )
  })

  it("lists the package imports of a module in order, without relative ones or repeats", () => {
    const main = [
      `/** doc */`,
      `import * as NodeContext from "@effect/platform-node/NodeContext";`,
      `import * as NodeRuntime from "@effect/platform-node/NodeRuntime";`,
      `import { Effect } from "effect";`,
      `import { Layer,`,
      `  Option } from "effect";`,
      `import "./side-effect.js";`,
      `import * as Cli from "./cli/Cli.js";`,
      `import 'node:fs';`,
      `const s = "import x from 'nope'";`,
      `Cli.program(process.argv.slice(2));`
    ].join("\n")
    expect(packageImportsOf(main)).toEqual([
      "@effect/platform-node/NodeContext",
      "@effect/platform-node/NodeRuntime",
      "effect",
      "node:fs"
    ])
  })

  const sample = (atS: number, rssKiB: number, peakKiB = 90_000): MemorySample => ({
    atS,
    memory: { rssKiB, peakKiB, anonKiB: rssKiB - 40_000, fileKiB: 40_000 }
  })

  it("settles on the median of the window's samples and says from when on they stayed within 1 %", () => {
    // grown young generation (82 MB) given back between 12 s and 14 s, then ~73 MB
    const rss = [82, 82, 82, 82, 82, 82, 82, 82, 82, 82, 82, 80, 75, 73, 73.2, 73, 73, 73.1, 73, 73, 73, 73.3, 73, 73, 73]
    const samples = rss.map((mbs, i) => sample(i + 1, mbs * 1024))
    const s = settle(samples, 20, 25)!
    expect(s.samples).toBe(6)
    expect(s.memory.rssKiB).toBe(73 * 1024)
    expect(s.memory.fileKiB).toBe(40_000)
    expect(s.memory.peakKiB).toBe(90_000)
    expect(s.settledFromS).toBe(14)
    // the early read is not in the window
    expect(settle(samples, 3, 3)!.memory.rssKiB).toBe(82 * 1024)
  })

  it("has no settled value without samples in the window, and none 'from' when the last one still moves", () => {
    expect(settle([sample(1, 1000), sample(2, 1000)], 20, 25)).toBeUndefined()
    const moving = settle([sample(20, 1000), sample(21, 1000), sample(22, 1000), sample(23, 900)], 20, 25)!
    expect(moving.memory.rssKiB).toBe(1000)
    expect(moving.settledFromS).toBeUndefined()
  })
})
