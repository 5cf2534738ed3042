import { describe, expect, it } from "@effect/vitest"
import type { BenchReport, BenchResult } from "../../bench/BenchResult.js"
import { isBenchResult, markdownTable, median } from "../../bench/BenchResult.js"
import { boundOf, MODULES, normalize, parseArgs, reportMarkdown } from "../../bench/run.js"
import { readFileSync } from "node:fs"
import { END, replaceSection, section, START } from "../../scripts/bench-table.js"

const result: BenchResult = {
  bench: "codec",
  name: "Push | 10k",
  figures: [{ name: "encode+decode", value: 142.4, unit: "frames/s" }],
  baseline: "JSON",
  ratio: 3,
  goal: ">= 1x",
  met: true
}

const report: BenchReport = {
  date: "2025-01-02T03:04:05.000Z",
  command: "node dist/bench/run.js",
  machine: { cores: 2, cpuModel: "AMD EPYC", memoryGiB: 8, node: "v20.20.2", platform: "linux", arch: "x64" },
  durationSeconds: 12,
  results: [result],
  skipped: [{ bench: "wal", reason: "bench/wal.ts does not exist" }]
}

describe("bench runner", () => {
  it("keeps BenchResults and adapts plain figures", () => {
    expect(normalize("codec", [result])).toEqual([result])
    expect(normalize("codec", result)).toEqual([result])
    const plain = normalize("wal", { name: "64 writers", appendsPerSec: 1000, p99Ms: 2.5, nested: { replaySeconds: 0.8 }, label: 1 })
    expect(plain).toHaveLength(1)
    expect(isBenchResult(plain[0])).toBe(true)
    expect(plain[0]!.name).toBe("64 writers")
    expect(plain[0]!.figures).toEqual([
      { name: "appendsPerSec", value: 1000, unit: "/s" },
      { name: "p99Ms", value: 2.5, unit: "ms" },
      { name: "nested.replaySeconds", value: 0.8, unit: "s" },
      { name: "label", value: 1, unit: "" }
    ])
    expect(normalize("x", "nonsense")).toEqual([])
    expect(normalize("x", [{ a: "no numbers" }])).toEqual([])
  })

  it("parses its flags", () => {
    expect(parseArgs([])).toEqual({
      quick: false,
      only: undefined,
      timeoutSeconds: 120,
      suiteTimeoutSeconds: 1500,
      readme: false
    })
    expect(
      parseArgs(["--quick", "--only", "codec, wal", "--timeout", "60", "--suite-timeout", "300", "--readme"])
    ).toEqual({
      quick: true,
      only: ["codec", "wal"],
      timeoutSeconds: 60,
      suiteTimeoutSeconds: 300,
      readme: true
    })
    expect(parseArgs(["--timeout", "soon"]).timeoutSeconds).toBe(120)
    expect(parseArgs(["--suite-timeout", "-5"]).suiteTimeoutSeconds).toBe(1500)
  })

  it("reports each bench's wall time against its bound", () => {
    const md = reportMarkdown({ ...report, benchSeconds: { codec: 30.5, http: 121.2 }, benchBoundSeconds: 120 })
    expect(md).toContain("Wall time per bench (bound 120 s each): codec 30.5 s, http 121 s (over).")
    expect(reportMarkdown(report)).not.toContain("Wall time")
  })

  it("gives the cluster bench 1.5 times the per-bench bound, runs it after http, and says so under the table", () => {
    expect(boundOf("cluster", 120)).toBe(180)
    expect(boundOf("cluster", 60)).toBe(90)
    expect(boundOf("http", 120)).toBe(120)
    expect(MODULES.indexOf("cluster")).toBe(MODULES.indexOf("http") + 1)
    const md = reportMarkdown({ ...report, benchSeconds: { http: 90, cluster: 150 }, benchBoundSeconds: 120 })
    expect(md).toContain("http 90 s, cluster 150 s. Bounds other than 120 s: cluster 180 s.")
    expect(reportMarkdown({ ...report, benchSeconds: { cluster: 181 }, benchBoundSeconds: 120 })).toContain("cluster 181 s (over)")
  })

  it("median: the middle value, the mean of the two middle ones, NaN for none", () => {
    expect(median([3, 1, 2])).toBe(2)
    expect(median([4, 1, 3, 2])).toBe(2.5)
    expect(median([])).toBeNaN()
  })

  it("runs the scale bench last, under a bound of its own", () => {
    expect(MODULES[MODULES.length - 1]).toBe("scale")
    expect(boundOf("scale", 120)).toBe(300)
    expect(boundOf("codec", 120)).toBe(120)
  })

  it("escapes pipes in table cells", () => {
    const table = markdownTable([result])
    expect(table).toContain("Push \\| 10k")
    expect(table).toContain("| 3.00x |")
    expect(table).toContain("| yes |")
  })
})

describe("bench-table", () => {
  const readme = `# dcounter\n\nintro\n\n## Benchmarks\n${START}\nold table\n${END}\n\nafter\n`

  it("replaces only what is between the markers", () => {
    const out = replaceSection(readme, section(report))
    expect(out.ok).toBe(true)
    if (!out.ok) return
    expect(out.text.startsWith("# dcounter\n\nintro\n\n## Benchmarks\n" + START + "\n")).toBe(true)
    expect(out.text.endsWith(END + "\n\nafter\n")).toBe(true)
    expect(out.text).not.toContain("old table")
    expect(out.text).toContain("| codec | Push \\| 10k |")
    expect(out.text).toContain("wal (bench/wal.ts does not exist)")
    // idempotent
    const again = replaceSection(out.text, section(report))
    expect(again.ok && again.text).toBe(out.text)
  })

  it("refuses a README without markers, with reversed or repeated markers", () => {
    expect(replaceSection("# x\n", "t").ok).toBe(false)
    expect(replaceSection(`${END}\n${START}\n`, "t").ok).toBe(false)
    expect(replaceSection(`${START}\n${END}\n${START}\n${END}`, "t").ok).toBe(false)
  })

  it("the table lives in docs/performance.md, between one pair of markers", () => {
    const text = readFileSync(new URL("../../docs/performance.md", import.meta.url), "utf8")
    const out = replaceSection(text, "| new | table |\n")
    expect(out.ok).toBe(true)
    expect(out.ok && out.text).toContain("| new | table |")
  })
})
