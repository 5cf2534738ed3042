/**
 * Rewrites the benchmark section of docs/performance.md, between `<!-- bench:start -->` and
 * `<!-- bench:end -->`, from `bench/results/latest.json`. Nothing outside the markers
 * changes; without both markers the file is left alone and the exit code is 1.
 *
 *     npm run build && node dist/scripts/bench-table.js [path/to/latest.json] [path/to/performance.md]
 */
import { readFileSync, writeFileSync } from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import type { BenchReport } from "../bench/BenchResult.js"
import { isMain, markdownTable } from "../bench/BenchResult.js"

export const START = "<!-- bench:start -->"
export const END = "<!-- bench:end -->"

/** The text that goes between the markers. */
export const section = (report: BenchReport): string => {
  const m = report.machine
  const lines = [
    `Measured by \`npm run bench\` on ${report.date.slice(0, 10)}: ${m.cores} cores (${m.cpuModel}), ` +
      `Node ${m.node}` +
      (m.loadAverage === undefined ? "" : `, load average ${m.loadAverage[0]} at start`) +
      `. Ratios are against a baseline measured in the same run; goals are reported, not asserted. ` +
      "Full figures: `bench/results/latest.json`.",
    "",
    markdownTable(report.results)
  ]
  if (report.skipped.length > 0) {
    lines.push("", `Not measured in that run: ${report.skipped.map((s) => `${s.bench} (${s.reason})`).join("; ")}.`)
  }
  return lines.join("\n")
}

/** `readme` with the section between the markers replaced, or why it cannot be. */
export const replaceSection = (
  readme: string,
  body: string
): { readonly ok: true; readonly text: string } | { readonly ok: false; readonly reason: string } => {
  const start = readme.indexOf(START)
  const end = readme.indexOf(END)
  if (start < 0 || end < 0) return { ok: false, reason: `no ${START} ... ${END} markers` }
  if (end < start) return { ok: false, reason: `${END} comes before ${START}` }
  if (readme.indexOf(START, start + 1) >= 0 || readme.indexOf(END, end + 1) >= 0) {
    return { ok: false, reason: "the markers appear more than once" }
  }
  return { ok: true, text: readme.slice(0, start + START.length) + "\n" + body + "\n" + readme.slice(end) }
}

export const updateReadme = (
  readmePath: string,
  report: BenchReport
): { readonly ok: true } | { readonly ok: false; readonly reason: string } => {
  let readme: string
  try {
    readme = readFileSync(readmePath, "utf8")
  } catch (e) {
    return { ok: false, reason: `cannot read ${readmePath}: ${e instanceof Error ? e.message : String(e)}` }
  }
  const next = replaceSection(readme, section(report))
  if (!next.ok) return next
  if (next.text !== readme) writeFileSync(readmePath, next.text)
  return { ok: true }
}

if (isMain(import.meta.url)) {
  const here = path.dirname(fileURLToPath(import.meta.url))
  const root = path.basename(path.dirname(here)) === "dist" ? path.resolve(here, "../..") : path.resolve(here, "..")
  const jsonPath = process.argv[2] ?? path.join(root, "bench", "results", "latest.json")
  const readmePath = process.argv[3] ?? path.join(root, "docs", "performance.md")
  try {
    const report = JSON.parse(readFileSync(jsonPath, "utf8")) as BenchReport
    const r = updateReadme(readmePath, report)
    if (r.ok) process.stderr.write(`${readmePath}: benchmark table updated from ${jsonPath}\n`)
    else {
      process.stderr.write(`${readmePath} not updated: ${r.reason}\n`)
      process.exitCode = 1
    }
  } catch (e) {
    process.stderr.write(`cannot read ${jsonPath}: ${e instanceof Error ? e.message : String(e)}\n`)
    process.exitCode = 1
  }
}
