/**
 * After the faults stop: wait until every node reports the same value for every counter
 * (bounded), then check each counter's value against the bounds the ledger implies.
 */
import type { NodeService } from "./Cluster.js"
import { boundsOf, type Ledger } from "./Workload.js"
import { sleep } from "./Proc.js"

export type Values = ReadonlyMap<string, number>

/** The most pages `readCounters` follows: far more counters than any scenario writes. */
const MAX_PAGES = 100

/** Every counter a node reports (GET /counters, every page) plus `default` from GET /counter. */
export const readCounters = async (node: NodeService): Promise<Map<string, number>> => {
  const out = new Map<string, number>()
  let after: string | undefined = undefined
  for (let page = 0; ; page++) {
    if (page >= MAX_PAGES) throw new Error(`${node.name} /counters: more than ${MAX_PAGES} pages`)
    const body = (await node.getJson(`/counters?limit=1000${after === undefined ? "" : `&after=${after}`}`)) as {
      counters?: unknown
      next?: unknown
    }
    if (!Array.isArray(body.counters)) throw new Error(`${node.name} /counters: no counters array`)
    for (const c of body.counters as Array<{ name?: unknown; value?: unknown }>) {
      if (typeof c.name !== "string" || !Number.isSafeInteger(c.value)) {
        throw new Error(`${node.name} /counters: bad entry ${JSON.stringify(c)}`)
      }
      out.set(c.name, c.value as number)
    }
    if (typeof body.next !== "string") break
    after = body.next
  }
  const d = (await node.getJson("/counter")) as { value?: unknown }
  if (!Number.isSafeInteger(d.value)) throw new Error(`${node.name} /counter: no integer value`)
  if ((out.get("default") ?? 0) !== d.value) {
    throw new Error(`${node.name}: /counter says ${String(d.value)} but /counters says ${out.get("default") ?? 0}`)
  }
  out.set("default", d.value as number)
  return out
}

export interface Snapshot {
  readonly values: ReadonlyMap<string, Values>
  readonly agree: boolean
  readonly errors: ReadonlyArray<string>
}

const valueOf = (v: Values | undefined, counter: string): number => v?.get(counter) ?? 0

export const snapshot = async (nodes: ReadonlyArray<NodeService>, counters: ReadonlyArray<string>): Promise<Snapshot> => {
  const values = new Map<string, Values>()
  const errors: Array<string> = []
  await Promise.all(
    nodes.map(async (n) => {
      try {
        values.set(n.name, await readCounters(n))
      } catch (e) {
        errors.push(String(e))
      }
    })
  )
  const first = values.get(nodes[0]!.name)
  const names = new Set(counters)
  for (const v of values.values()) for (const k of v.keys()) names.add(k)
  const agree =
    errors.length === 0 &&
    values.size === nodes.length &&
    [...values.values()].every((v) => [...names].every((c) => valueOf(v, c) === valueOf(first, c)))
  return { values, agree, errors }
}

/**
 * Polls until all nodes agree on every counter in `stableRounds` polls in a row, or the
 * deadline passes (then `converged` is false and `last` says what they reported).
 */
export const waitConverged = async (
  nodes: ReadonlyArray<NodeService>,
  counters: ReadonlyArray<string>,
  timeoutMs: number,
  stableRounds = 3,
  intervalMs = 300
): Promise<{ converged: boolean; ms: number; last: Snapshot }> => {
  const started = Date.now()
  let stable = 0
  let previous: string | undefined
  for (;;) {
    const s = await snapshot(nodes, counters)
    const key = JSON.stringify([...s.values.entries()].map(([n, v]) => [n, [...v.entries()].sort()]).sort())
    if (s.agree) {
      stable = key === previous ? stable + 1 : 1
      previous = key
      if (stable >= stableRounds) return { converged: true, ms: Date.now() - started, last: s }
    } else {
      stable = 0
      previous = undefined
    }
    if (Date.now() - started > timeoutMs) return { converged: false, ms: Date.now() - started, last: s }
    await sleep(intervalMs)
  }
}

export interface CounterVerdict {
  readonly counter: string
  readonly lo: number
  readonly hi: number
  readonly values: ReadonlyArray<number>
  readonly ok: boolean
}

export const checkBounds = (
  ledger: Ledger,
  nodes: ReadonlyArray<NodeService>,
  s: Snapshot
): { verdicts: Array<CounterVerdict>; problems: Array<string> } => {
  const verdicts: Array<CounterVerdict> = []
  const problems: Array<string> = []
  const names = new Set(ledger.counters.keys())
  for (const v of s.values.values()) for (const k of v.keys()) names.add(k)
  for (const counter of [...names].sort()) {
    const c = ledger.counter(counter)
    const { lo, hi } = boundsOf(c)
    const values = nodes.map((n) => valueOf(s.values.get(n.name), counter))
    const ok = values.every((v) => v >= lo && v <= hi) && values.every((v) => v === values[0])
    verdicts.push({ counter, lo, hi, values, ok })
    if (!ok) {
      problems.push(
        `counter ${counter}: values ${values.join(",")} outside [${lo}, ${hi}] or unequal ` +
          `(acked +${c.ackedInc} -${c.ackedDec}, indeterminate +${c.indetInc} -${c.indetDec})`
      )
    }
  }
  return { verdicts, problems }
}

/** GET /state must be internally consistent: value = sum(increments) - sum(decrements). */
export const checkState = async (node: NodeService): Promise<string | undefined> => {
  const st = (await node.getJson("/state")) as {
    nodeId?: unknown
    increments?: Record<string, unknown>
    decrements?: Record<string, unknown>
    value?: unknown
  }
  if (typeof st.nodeId !== "string" || typeof st.increments !== "object" || typeof st.decrements !== "object") {
    return `${node.name} /state has the wrong shape: ${JSON.stringify(st).slice(0, 200)}`
  }
  const sum = (o: Record<string, unknown> | undefined) =>
    Object.values(o ?? {}).reduce<number>((a, b) => a + (typeof b === "number" ? b : Number.NaN), 0)
  const expected = sum(st.increments) - sum(st.decrements)
  if (st.value !== expected) return `${node.name} /state value ${String(st.value)} != sum(increments) - sum(decrements) = ${expected}`
  return undefined
}
