/**
 * What a chaos run did and found, printed as markdown tables at the end: faults injected
 * by kind, operations by outcome, per-counter bounds and final values, fuzz frames, checks
 * that passed or failed, crashes.
 */
import type { CounterVerdict } from "./Checker.js"
import type { Ledger } from "./Workload.js"
import type { Crash } from "./Proc.js"

export interface Check {
  readonly area: string
  readonly name: string
  readonly ok: boolean
  readonly detail: string
}

export class Summary {
  readonly faults = new Map<string, number>()
  readonly checks: Array<Check> = []
  readonly figures = new Map<string, string>()
  readonly skipped: Array<string> = []
  ledger: Ledger | undefined
  verdicts: Array<CounterVerdict> = []
  nodeNames: Array<string> = []
  readonly startedAt = Date.now()

  constructor(readonly seed: number) {}

  fault(kind: string, n = 1): void {
    this.faults.set(kind, (this.faults.get(kind) ?? 0) + n)
  }

  check(area: string, name: string, ok: boolean, detail = ""): boolean {
    this.checks.push({ area, name, ok, detail })
    return ok
  }

  figure(name: string, value: string | number): void {
    this.figures.set(name, String(value))
  }

  skip(what: string): void {
    this.skipped.push(what)
  }

  get failedChecks(): Array<Check> {
    return this.checks.filter((c) => !c.ok)
  }

  /** Every check, passed or not, with its detail (written next to the summary). */
  renderChecks(): string {
    const lines = ["| area | check | ok | detail |", "| --- | --- | --- | --- |"]
    const cell = (t: string) => t.replaceAll("|", "\\|").replaceAll("\n", " ").slice(0, 400)
    for (const c of this.checks) lines.push(`| ${c.area} | ${cell(c.name)} | ${c.ok ? "yes" : "**NO**"} | ${cell(c.detail)} |`)
    return lines.join("\n")
  }

  render(crashes: ReadonlyArray<Crash>): string {
    const lines: Array<string> = []
    const secs = ((Date.now() - this.startedAt) / 1000).toFixed(1)
    lines.push("", `## dcounter chaos summary (seed ${this.seed}, CHAOS_SEED=${this.seed} to replay, ${secs}s)`, "")
    lines.push("| fault | count |", "| --- | ---: |")
    for (const [k, v] of [...this.faults.entries()].sort()) lines.push(`| ${k} | ${v} |`)
    if (this.faults.size === 0) lines.push("| (none) | 0 |")
    if (this.ledger !== undefined) {
      const o = this.ledger.outcomes
      lines.push("", "| ops | count |", "| --- | ---: |")
      lines.push(`| acknowledged | ${o.acked} |`, `| failed (definite) | ${o.failed} |`, `| indeterminate | ${o.indeterminate} |`)
      const reasons = [...this.ledger.reasons.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8)
      for (const [r, n] of reasons) lines.push(`| &nbsp; ${r} | ${n} |`)
    }
    if (this.verdicts.length > 0) {
      lines.push("", `| counter | lower bound | upper bound | final value (${this.nodeNames.join(", ")}) | ok |`)
      lines.push("| --- | ---: | ---: | --- | --- |")
      for (const v of this.verdicts) {
        const same = v.values.every((x) => x === v.values[0])
        lines.push(`| ${v.counter} | ${v.lo} | ${v.hi} | ${same ? `${v.values[0]} on all` : v.values.join(", ")} | ${v.ok ? "yes" : "**NO**"} |`)
      }
    }
    lines.push("", "| figure | value |", "| --- | ---: |")
    for (const [k, v] of this.figures) lines.push(`| ${k} | ${v} |`)
    lines.push(`| crashes | ${crashes.length} |`)
    const byArea = new Map<string, { ok: number; failed: number }>()
    for (const c of this.checks) {
      const a = byArea.get(c.area) ?? { ok: 0, failed: 0 }
      if (c.ok) a.ok++
      else a.failed++
      byArea.set(c.area, a)
    }
    lines.push("", "| area | checks passed | checks failed |", "| --- | ---: | ---: |")
    for (const [k, v] of byArea) lines.push(`| ${k} | ${v.ok} | ${v.failed} |`)
    const failed = this.failedChecks
    if (failed.length > 0) {
      lines.push("", "### failed checks")
      for (const c of failed) lines.push(`- [${c.area}] ${c.name}: ${c.detail}`)
    }
    if (this.skipped.length > 0) {
      lines.push("", "### skipped")
      for (const s of this.skipped) lines.push(`- ${s}`)
    }
    if (crashes.length > 0) {
      lines.push("", "### crashes")
      for (const c of crashes) lines.push(`- ${c.name} exited with code ${c.code} signal ${c.signal} at ${c.at}`)
    }
    return lines.join("\n")
  }
}
