/**
 * Reading a role's `GET /metrics` (Prometheus text format) in the benches: the samples, and
 * sums of a metric over its series (every label combination), to take differences of
 * counters before and after a load run.
 */

export interface Sample {
  readonly name: string
  /** `k="v"` pairs, in the order written (values unescaped) */
  readonly labels: ReadonlyArray<readonly [string, string]>
  readonly value: number
}

const unescape = (v: string): string => v.replace(/\\(["\\n])/g, (_, c: string) => (c === "n" ? "\n" : c))

const parseLabels = (text: string): ReadonlyArray<readonly [string, string]> | undefined => {
  const out: Array<readonly [string, string]> = []
  const re = /\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?/y
  let at = 0
  while (at < text.length) {
    re.lastIndex = at
    const m = re.exec(text)
    if (m === null) return undefined
    out.push([m[1]!, unescape(m[2]!)])
    at = re.lastIndex
  }
  return out
}

/**
 * The samples of a text exposition; comments, blank lines and lines that are not samples
 * are skipped. Values `+Inf`, `-Inf` and `NaN` are read as such; a timestamp after the value
 * is ignored.
 */
export const parseMetrics = (text: string): ReadonlyArray<Sample> => {
  const out: Array<Sample> = []
  for (const raw of text.split("\n")) {
    const line = raw.trim()
    if (line === "" || line.startsWith("#")) continue
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/.exec(line)
    if (m === null) continue
    const labels = m[2] === undefined ? [] : parseLabels(m[2])
    if (labels === undefined) continue
    const v = m[3]!
    const value = v === "+Inf" ? Infinity : v === "-Inf" ? -Infinity : Number(v)
    if (Number.isNaN(value) && v !== "NaN") continue
    out.push({ name: m[1]!, labels, value })
  }
  return out
}

/**
 * The sum of every series of metric `name` (whatever its labels), restricted to those with
 * the given label values when `where` is given; 0 when there is none (a counter never
 * incremented is not exported).
 */
export const sumOf = (
  samples: ReadonlyArray<Sample>,
  name: string,
  where: Readonly<Record<string, string>> = {}
): number => {
  const wanted = Object.entries(where)
  let sum = 0
  for (const s of samples) {
    if (s.name !== name) continue
    if (wanted.every(([k, v]) => s.labels.some(([lk, lv]) => lk === k && lv === v))) sum += s.value
  }
  return sum
}
