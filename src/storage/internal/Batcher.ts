/**
 * The group-commit hand-off between many appenders and one committer, lighter than an
 * Effect `Queue` plus a `Deferred` per append (measured: the per-append CPU cost is what
 * limits batch formation when dozens of writers wait on each fdatasync).
 *
 * `submit(item)` parks the caller until the committer resolves it; `next` gives the
 * committer everything submitted so far (at least one item, at most `maxBatch`). At most
 * `capacity` items are pending for the committer; callers beyond that wait, parked, for
 * room (a bounded queue whose offerers wait, like `Queue.bounded`).
 */
import { Effect } from "effect"

export interface Waiter<T, E> {
  readonly item: T
  readonly resume: (result: Effect.Effect<void, E>) => void
}

export class Batcher<T, E> {
  private pending: Array<Waiter<T, E>> = []
  private parked: Array<Waiter<T, E>> = []
  private wake: (() => void) | undefined = undefined

  constructor(private readonly capacity: number, private readonly maxBatch: number) {}

  /** Hands `item` to the committer and waits until the committer resolves it. */
  submit(item: T): Effect.Effect<void, E> {
    return Effect.async<void, E>((resume) => {
      const waiter = { item, resume }
      if (this.pending.length < this.capacity) this.pending.push(waiter)
      else this.parked.push(waiter)
      // the committer resumes through the scheduler, after the fibers already scheduled:
      // appenders woken by the previous batch all get to submit before it takes this one
      this.wake?.()
    })
  }

  /** For the committer: waits for at least one item; takes what is pending, up to `maxBatch`. */
  readonly next: Effect.Effect<Array<Waiter<T, E>>> = Effect.async<Array<Waiter<T, E>>>((resume) => {
    if (this.pending.length > 0) {
      resume(Effect.sync(() => this.take()))
      return
    }
    this.wake = () => {
      this.wake = undefined
      resume(Effect.sync(() => this.take()))
    }
    return Effect.sync(() => {
      this.wake = undefined
    })
  })

  /** Everything not yet taken (on close: the caller fails them). */
  drain(): Array<Waiter<T, E>> {
    const all = [...this.pending, ...this.parked]
    this.pending = []
    this.parked = []
    return all
  }

  private take(): Array<Waiter<T, E>> {
    let batch: Array<Waiter<T, E>>
    if (this.pending.length <= this.maxBatch) {
      batch = this.pending
      this.pending = []
    } else {
      batch = this.pending.slice(0, this.maxBatch)
      this.pending = this.pending.slice(this.maxBatch)
    }
    if (this.parked.length > 0) {
      const room = this.capacity - this.pending.length
      this.pending.push(...this.parked.splice(0, room))
    }
    return batch
  }
}
