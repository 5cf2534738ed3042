/**
 * Joins the writes of one event-loop turn that go to the same counter in the same
 * direction into one store write, and answers each of them from that write's result.
 *
 * Many clients incrementing one hot counter (likes, views, a rate limit) is the common
 * case of a counter service. Each store write costs the same whatever its amount
 * (preparing the entry, its place in the WAL batch, settling it), so N INCRs of one
 * counter that arrive together cost one write instead of N. They become durable together,
 * in one WAL entry, and are answered only then, so an answered write is never lost.
 *
 * Each write still gets its own value: if the joined write of `S = by_1 + ... + by_n`
 * leaves the counter at `V`, write `i` answers `V - S + (by_1 + ... + by_i)` (decrements
 * mirrored): the values the counter takes if the writes are applied one after the other
 * in arrival order, so a connection's INCRs of one counter answer increasing values and
 * no two INCRs answer the same value. A joined write that overflows is retried write by
 * write, so each fails or succeeds on its own, as it would alone.
 *
 * Writes are collected until `schedule` runs the flush (by default `setImmediate`: after
 * every socket read of this turn of the event loop) or until `flush` is called.
 *
 * The store is reached through its Effects (`CounterStore.write`), run with `Callback.run`:
 * the store's writes are `Callback`s, so no fiber waits for one. The coalescer itself is
 * callback-level (`add` takes the function that receives the result): it is the RESP
 * front end's internal fast path, not a port.
 */
import type { Effect } from "effect"
import { Exit } from "effect"
import type { CounterName } from "../../crdt/CounterName.js"
import type { WriteError } from "../CounterStore.js"
import * as Callback from "../../internal/Callback.js"

/** One store write, as an Effect (`CounterStore.write` over the node's store). */
export type Write = (name: CounterName, kind: "inc" | "dec", by: number) => Effect.Effect<number, WriteError>
export type Resume = (exit: Exit.Exit<number, WriteError>) => void
/** A write at the callback level: `resume` is called once with the counter's new value or the error. */
export type Submit = (name: CounterName, kind: "inc" | "dec", by: number, resume: Resume) => void

interface Group {
  readonly name: CounterName
  readonly kind: "inc" | "dec"
  total: number
  readonly amounts: Array<number>
  readonly resumes: Array<Resume>
}

export class WriteCoalescer {
  private groups = new Map<string, Group>()
  private scheduled = false

  constructor(
    private readonly write: Write,
    private readonly schedule: (flush: () => void) => void = (f) => void setImmediate(f)
  ) {}

  /** One store write now, its result to `resume`. */
  private readonly submit: Submit = (name, kind, by, resume) => Callback.run(this.write(name, kind, by), resume)

  /** Writes waiting for the next flush. */
  get pending(): number {
    let n = 0
    for (const g of this.groups.values()) n += g.amounts.length
    return n
  }

  /** A store write, joined with the other writes of this turn to the same counter. */
  readonly add: Submit = (name, kind, by, resume) => {
    const key = kind === "inc" ? `+${name}` : `-${name}`
    let group = this.groups.get(key)
    if (group !== undefined && group.total + by > Number.MAX_SAFE_INTEGER) {
      // the joined amount would not be exact: this one goes alone
      this.submit(name, kind, by, resume)
      return
    }
    if (group === undefined) {
      group = { name, kind, total: 0, amounts: [], resumes: [] }
      this.groups.set(key, group)
    }
    group.total += by
    group.amounts.push(by)
    group.resumes.push(resume)
    if (!this.scheduled) {
      this.scheduled = true
      this.schedule(() => this.flush())
    }
  }

  /** Submits every waiting write now. */
  readonly flush = (): void => {
    this.scheduled = false
    if (this.groups.size === 0) return
    const groups = this.groups
    this.groups = new Map()
    for (const g of groups.values()) this.submitGroup(g)
  }

  private submitGroup(g: Group): void {
    if (g.amounts.length === 1) return this.submit(g.name, g.kind, g.amounts[0]!, g.resumes[0]!)
    this.submit(g.name, g.kind, g.total, (exit) => {
      if (Exit.isSuccess(exit)) {
        const sign = g.kind === "inc" ? 1 : -1
        // the value before the joined write, then each write's share in arrival order
        let value = exit.value - sign * g.total
        for (let i = 0; i < g.amounts.length; i++) {
          value += sign * g.amounts[i]!
          g.resumes[i]!(Exit.succeed(value))
        }
        return
      }
      const failure = exit.cause._tag === "Fail" ? exit.cause.error : undefined
      if (failure?._tag === "Overflow") {
        for (let i = 0; i < g.amounts.length; i++) this.submit(g.name, g.kind, g.amounts[i]!, g.resumes[i]!)
        return
      }
      for (const resume of g.resumes) resume(exit)
    })
  }
}
