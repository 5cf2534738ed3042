/** Reading Prometheus text (GET /metrics) in black-box tests. */
import type { Service } from "./Cluster.js"
import { request } from "./Http.js"

export interface Sample {
  readonly name: string
  readonly labels: string
  readonly value: number
}

export const parsePrometheus = (text: string): Array<Sample> => {
  const out: Array<Sample> = []
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line)
    if (m === null) continue
    const value = Number(m[3])
    if (!Number.isNaN(value)) out.push({ name: m[1]!, labels: m[2] ?? "", value })
  }
  return out
}

export const fetchMetrics = async (s: Service): Promise<{ status: number; samples: Array<Sample>; text: string }> => {
  const r = await request({ host: s.host, port: s.httpPort, path: "/metrics", timeoutMs: 5000 })
  if (r.kind === "failure") throw new Error(`${s.name} /metrics: ${r.code}`)
  return { status: r.status, samples: parsePrometheus(r.text), text: r.text }
}

/** Sum of every sample whose name matches (e.g. /frames.*rejected/), with its names. */
export const sumMatching = (samples: ReadonlyArray<Sample>, pattern: RegExp): { sum: number; names: Array<string> } => {
  const hits = samples.filter((s) => pattern.test(s.name) && !s.name.endsWith("_created"))
  return { sum: hits.reduce((a, s) => a + s.value, 0), names: [...new Set(hits.map((s) => s.name))] }
}

export const REJECTED_FRAMES = /frames?_rejected|rejected_frames?/
export const FRAMES_IN = /^dcounter_frames_in(_total)?$/
