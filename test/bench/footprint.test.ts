import { describe, expect, it } from "@effect/vitest"
import { FastCheck } from "effect"
import { median, packageImportsOf, parseProcStatus } from "../../bench/footprint.js"

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
})
