/**
 * The chaos workload: a few clients send increments and decrements with random `by` on
 * several named counters to random nodes and to the gateway, at a bounded rate, and the
 * ledger records each operation as acknowledged (2xx), failed (the contract says nothing
 * happened: a 4xx, a 503 whose code is not `indeterminate`, a refused connection) or
 * indeterminate (timeout, reset, 503 `indeterminate`, any other 5xx).
 */
import * as http from "node:http"
import type { Prng } from "./Prng.js"
import { type HttpResult, request } from "./Http.js"
import { sleep } from "./Proc.js"

export type Op = "inc" | "dec"
export type Outcome = "acked" | "failed" | "indeterminate"

export interface CounterLedger {
  ackedInc: number
  ackedDec: number
  indetInc: number
  indetDec: number
  failedInc: number
  failedDec: number
  ops: number
}

export const emptyCounterLedger = (): CounterLedger => ({
  ackedInc: 0,
  ackedDec: 0,
  indetInc: 0,
  indetDec: 0,
  failedInc: 0,
  failedDec: 0,
  ops: 0
})

/** Bounds on a counter's converged value that the contract implies. */
export const boundsOf = (c: CounterLedger): { lo: number; hi: number } => ({
  // every acked op counted once; an indeterminate decrement may have happened
  lo: c.ackedInc - c.ackedDec - c.indetDec,
  // ... and an indeterminate increment may have happened
  hi: c.ackedInc + c.indetInc - c.ackedDec
})

/** Increments and decrements attributed to one replica (the node that took them). */
export interface ReplicaLedger {
  ackedInc: number
  ackedDec: number
  indetInc: number
  indetDec: number
}

export class Ledger {
  readonly counters = new Map<string, CounterLedger>()
  /**
   * For the `default` counter, whose per-replica totals GET /state shows: what each replica
   * acknowledged, and what may have reached it without an answer. Indeterminate ops whose
   * replica cannot be known (the gateway failed itself) are in `unknown`.
   */
  readonly replicas = new Map<string, ReplicaLedger>()
  readonly unknown: { indetInc: number; indetDec: number } = { indetInc: 0, indetDec: 0 }
  readonly outcomes: Record<Outcome, number> = { acked: 0, failed: 0, indeterminate: 0 }
  /** why ops failed or were indeterminate: "ECONNREFUSED", "503 indeterminate", ... */
  readonly reasons = new Map<string, number>()
  /** answers that break the contract's shapes (a 2xx without a value, a 4xx for a good request) */
  readonly violations: Array<string> = []

  counter(name: string): CounterLedger {
    let c = this.counters.get(name)
    if (c === undefined) {
      c = emptyCounterLedger()
      this.counters.set(name, c)
    }
    return c
  }

  record(counter: string, op: Op, by: number, outcome: Outcome, reason: string): void {
    const c = this.counter(counter)
    c.ops++
    this.outcomes[outcome]++
    if (outcome !== "acked") this.reasons.set(reason, (this.reasons.get(reason) ?? 0) + 1)
    if (outcome === "acked") {
      if (op === "inc") c.ackedInc += by
      else c.ackedDec += by
    } else if (outcome === "indeterminate") {
      if (op === "inc") c.indetInc += by
      else c.indetDec += by
    } else if (op === "inc") c.failedInc += by
    else c.failedDec += by
  }

  attribute(replica: string | undefined, op: Op, by: number, outcome: Outcome): void {
    if (outcome === "failed") return
    if (replica === undefined) {
      if (outcome === "acked") this.violation(`an acknowledged op on default without a replica id`)
      else if (op === "inc") this.unknown.indetInc += by
      else this.unknown.indetDec += by
      return
    }
    let r = this.replicas.get(replica)
    if (r === undefined) {
      r = { ackedInc: 0, ackedDec: 0, indetInc: 0, indetDec: 0 }
      this.replicas.set(replica, r)
    }
    if (outcome === "acked") {
      if (op === "inc") r.ackedInc += by
      else r.ackedDec += by
    } else if (op === "inc") r.indetInc += by
    else r.indetDec += by
  }

  violation(text: string): void {
    if (this.violations.length < 200) this.violations.push(text)
  }
}

export interface Target {
  readonly name: string
  readonly kind: "node" | "gateway"
  readonly host: string
  readonly port: number
}

export interface WorkloadOptions {
  readonly clients: number
  /** pause between one client's operations, ms */
  readonly pauseMs: number
  /** stop after this many operations in total */
  readonly maxOps: number
  readonly timeoutMs: number
  readonly counters: ReadonlyArray<string>
  /** share of operations sent to the gateway */
  readonly gatewayShare: number
}

/** Classifies one answer (or transport failure) of an increment/decrement. */
export const classify = (
  r: HttpResult,
  target: Target,
  counter: string,
  ledger: Ledger
): { outcome: Outcome; reason: string } => {
  if (r.kind === "failure") {
    if (r.code === "ECONNREFUSED") return { outcome: "failed", reason: "ECONNREFUSED" }
    return { outcome: "indeterminate", reason: r.code }
  }
  const body = r.json as { value?: unknown; error?: unknown; name?: unknown } | undefined
  if (r.status >= 200 && r.status < 300) {
    if (body === undefined || !Number.isSafeInteger(body.value)) {
      ledger.violation(`${target.name}: ${r.status} without an integer value: ${r.text.slice(0, 200)}`)
    } else if (counter !== "default" && body.name !== counter) {
      ledger.violation(`${target.name}: answer for counter ${counter} names ${String(body.name)}`)
    }
    return { outcome: "acked", reason: "" }
  }
  const code = typeof body?.error === "string" ? body.error : "?"
  if (r.status >= 400 && r.status < 500) {
    ledger.violation(`${target.name}: ${r.status} ${code} for a valid request: ${r.text.slice(0, 200)}`)
    return { outcome: "failed", reason: `${r.status} ${code}` }
  }
  if (r.status === 503 && code !== "indeterminate" && code !== "?") {
    return { outcome: "failed", reason: `503 ${code}` }
  }
  return { outcome: "indeterminate", reason: `${r.status} ${code}` }
}

export class Workload {
  readonly ledger = new Ledger()
  private running = false
  private loops: Array<Promise<void>> = []
  private readonly paused = new Set<string>()
  private readonly inflight = new Map<string, number>()
  private readonly agents = new Map<string, http.Agent>()
  private issued = 0
  opsPerTarget = new Map<string, number>()
  /** acknowledged operations by the kind of target that acknowledged them */
  readonly ackedByKind: Record<Target["kind"], number> = { node: 0, gateway: 0 }

  constructor(
    private readonly prng: Prng,
    private readonly targets: () => ReadonlyArray<Target>,
    readonly options: WorkloadOptions,
    /** the replica id a node (by target name or by HTTP address) has now */
    private readonly replicaOf: (nodeNameOrHttpAddr: string) => string | undefined = () => undefined
  ) {}

  /** Which replica an op on `default` went to: from the answer, else from the target. */
  private replicaFor(r: HttpResult, target: Target, outcome: Outcome): string | undefined {
    const body = r.kind === "answer" ? (r.json as { nodeId?: unknown; node?: unknown } | undefined) : undefined
    if (outcome === "acked" && typeof body?.nodeId === "string") return body.nodeId
    if (typeof body?.node === "string") return this.replicaOf(body.node)
    return target.kind === "node" ? this.replicaOf(target.name) : undefined
  }

  start(): void {
    this.running = true
    for (let i = 0; i < this.options.clients; i++) this.loops.push(this.client(this.prng.fork(`client${i}`)))
  }

  /** Stops issuing and waits for every operation in flight to be classified. */
  async stop(): Promise<void> {
    this.running = false
    await Promise.all(this.loops)
    this.loops = []
    for (const a of this.agents.values()) a.destroy()
    this.agents.clear()
  }

  get issuedOps(): number {
    return this.issued
  }

  /** Stops sending to these targets and waits until nothing is in flight to them. */
  async quiesce(names: ReadonlyArray<string>, timeoutMs = 15_000): Promise<void> {
    for (const n of names) this.paused.add(n)
    const deadline = Date.now() + timeoutMs
    while (names.some((n) => (this.inflight.get(n) ?? 0) > 0)) {
      if (Date.now() > deadline) throw new Error(`requests to ${names.join(",")} still in flight after ${timeoutMs}ms`)
      await sleep(20)
    }
  }

  resume(names: ReadonlyArray<string>): void {
    for (const n of names) this.paused.delete(n)
  }

  private agent(t: Target): http.Agent {
    let a = this.agents.get(t.name)
    if (a === undefined) {
      a = new http.Agent({ keepAlive: true, maxSockets: this.options.clients })
      this.agents.set(t.name, a)
    }
    return a
  }

  private async client(rng: Prng): Promise<void> {
    const o = this.options
    while (this.running && this.issued < o.maxOps) {
      const all = this.targets().filter((t) => !this.paused.has(t.name))
      if (all.length === 0) {
        await sleep(20)
        continue
      }
      const gateways = all.filter((t) => t.kind === "gateway")
      const nodes = all.filter((t) => t.kind === "node")
      const target =
        gateways.length > 0 && (nodes.length === 0 || rng.bool(o.gatewayShare)) ? rng.pick(gateways) : rng.pick(nodes)
      const counter = rng.pick(o.counters)
      const op: Op = rng.bool(0.6) ? "inc" : "dec"
      const style = rng.float()
      let by: number
      let body: string | undefined
      if (style < 0.15) {
        by = 1
        body = undefined
      } else if (style < 0.25) {
        by = rng.int(1_000, 1_000_000)
        body = JSON.stringify({ by })
      } else {
        by = rng.int(1, 100)
        body = JSON.stringify({ by })
      }
      const verb = op === "inc" ? "increment" : "decrement"
      const path = counter === "default" && rng.bool(0.5) ? `/${verb}` : `/counters/${counter}/${verb}`
      this.issued++
      this.inflight.set(target.name, (this.inflight.get(target.name) ?? 0) + 1)
      this.opsPerTarget.set(target.name, (this.opsPerTarget.get(target.name) ?? 0) + 1)
      let r: HttpResult
      try {
        r = await request({
          host: target.host,
          port: target.port,
          method: "POST",
          path,
          ...(body === undefined ? { headers: { "content-length": 0 } } : { body }),
          timeoutMs: o.timeoutMs,
          agent: this.agent(target)
        })
      } finally {
        this.inflight.set(target.name, (this.inflight.get(target.name) ?? 1) - 1)
      }
      const { outcome, reason } = classify(r, target, counter, this.ledger)
      if (outcome === "acked") this.ackedByKind[target.kind]++
      this.ledger.record(counter, op, by, outcome, `${target.kind} ${reason}`)
      if (counter === "default") this.ledger.attribute(this.replicaFor(r, target, outcome), op, by, outcome)
      if (o.pauseMs > 0) await sleep(rng.int(0, 2 * o.pauseMs))
    }
  }
}
