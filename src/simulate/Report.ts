/**
 * What `dcounter simulate` prints: a progress bar while it runs (stderr) and the closing
 * report (stdout): the run's settings, writes, faults, a table of expected vs final value
 * per node, convergence and propagation times.
 */
import { Duration, Option } from "effect"
import { formatDuration } from "../config/Values.js"
import type { Progress, SimulationResult } from "./Simulation.js"

/** Nearest-rank percentile of `values` (0 < p <= 100); undefined when empty. */
export const percentile = (values: ReadonlyArray<number>, p: number): number | undefined => {
  if (values.length === 0) return undefined
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]
}

const ms = (millis: number | undefined): string =>
  millis === undefined ? "-" : millis < 1000 ? `${Math.round(millis)} ms` : `${(millis / 1000).toFixed(2)} s`

const num = (n: number): string => n.toLocaleString("en-US")

/** A text table with right-aligned numeric columns. */
export const table = (head: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)))
  const numeric = head.map((_, c) => rows.every((r) => /^[-+]?[\d,.]+( ms| s)?$|^-$/.test(r[c]!)))
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((cell, c) => (numeric[c] ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join("  ").trimEnd()
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n")
}

export const render = (r: SimulationResult): string => {
  const o = r.options
  const settings = [
    `${o.nodeCount} nodes`,
    `${formatDuration(o.duration)} of writes at ${num(o.rate)}/s`,
    `${o.partitions} partition${o.partitions === 1 ? "" : "s"}`,
    `${o.crashes} crash${o.crashes === 1 ? "" : "es"}`,
    `drop ${o.drop}`,
    `delay ${formatDuration(o.delay)}`,
    `sync ${formatDuration(o.syncInterval)}`,
    `seed ${r.seed}`
  ].join(" · ")
  const achieved = r.writeMillis > 0 ? Math.round((r.acked * 1000) / r.writeMillis) : 0
  const rows = r.nodes.map((node) => [
    String(node.index),
    node.addr,
    num(node.writes),
    String(node.crashes),
    num(r.expected),
    num(node.value),
    node.value === r.expected ? "ok" : "WRONG"
  ])
  const p50 = percentile(r.probeMillis, 50)
  const p99 = percentile(r.probeMillis, 99)
  const max = percentile(r.probeMillis, 100)
  const converged = Option.match(r.convergedAfterMillis, {
    onNone: () => `NOT within ${formatDuration(o.convergeTimeout)}`,
    onSome: (t) => `${ms(t)} after the writes stopped and the faults healed`
  })
  const lines = [
    `dcounter simulate: ${settings}`,
    "",
    `writes       ${num(r.acked)} acknowledged (${num(r.increments)} increments, ${num(r.decrements)} decrements) ` +
    `in ${ms(r.writeMillis)}, ${num(achieved)}/s; ${num(r.failed)} failed, ${num(r.skipped)} skipped (node down)`,
    `faults       ${r.faults.partitions} partition(s), ${ms(r.faults.partitionMillis)} split in total; ` +
    `${r.faults.crashes} crash(es), ${ms(r.faults.downMillis)} down in total`,
    `network      ${num(r.network.sent)} messages sent, ${num(r.network.delivered)} delivered, ` +
    `${num(r.network.dropped)} dropped, ${num(r.network.unreachable)} unreachable, ${num(r.network.overflowed)} overflowed`,
    "",
    table(["node", "address", "writes acked", "crashes", "expected", "final", ""], rows),
    "",
    `converged    ${converged}`,
    `propagation  time for one write to reach every node (${num(r.probeMillis.length)} probes` +
    `${r.probesLost > 0 ? `, ${r.probesLost} never did` : ""}): p50 ${ms(p50)}, p99 ${ms(p99)}, max ${ms(max)}`,
    `result       ${
      r.ok
        ? "OK: every node holds every acknowledged write exactly once"
        : "FAILED: the nodes do not all hold the expected value"
    }`
  ]
  return lines.join("\n")
}

/**
 * A progress reporter writing to `out`: a bar redrawn in place on a terminal, otherwise a
 * line when the phase changes and every 25% of the writing phase.
 */
export const progressBar = (out: NodeJS.WriteStream, total: Duration.Duration) => {
  const tty = out.isTTY === true
  let lastPhase = ""
  let lastQuarter = -1
  return (p: Progress): void => {
    const faults = [
      p.partitioned ? "partitioned" : "",
      p.down.length > 0 ? `down: node ${p.down.join(", ")}` : ""
    ].filter((s) => s !== "").join(", ")
    if (tty) {
      const width = 30
      const filled = Math.round(p.fraction * width)
      const bar = "█".repeat(filled) + "░".repeat(width - filled)
      const text = p.phase === "writing"
        ? `${bar} ${String(Math.round(p.fraction * 100)).padStart(3)}%  ${(p.elapsedMillis / 1000).toFixed(1)}s/${
          formatDuration(total)
        }  ${num(p.acked)} writes${faults === "" ? "" : `  (${faults})`}`
        : p.phase === "converging"
        ? `${bar} converging... ${num(p.acked)} writes`
        : ""
      out.write(`\r\u001b[2K${text}${p.phase === "done" ? "" : ""}`)
      return
    }
    const quarter = Math.floor(p.fraction * 4)
    if (p.phase !== lastPhase || (p.phase === "writing" && quarter !== lastQuarter)) {
      if (p.phase !== "done") {
        out.write(
          p.phase === "writing"
            ? `simulate: ${quarter * 25}% of writes, ${num(p.acked)} acknowledged${faults === "" ? "" : ` (${faults})`}\n`
            : `simulate: writes done (${num(p.acked)}), waiting for convergence\n`
        )
      }
      lastPhase = p.phase
      lastQuarter = quarter
    }
  }
}
