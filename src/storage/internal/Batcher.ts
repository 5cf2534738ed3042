/**
 * The WAL committer's hand-off (`Committer.ts`) between many appends and one committer,
 * lighter than an Effect `Queue` plus a `Deferred` per item: on the node's durable write
 * path a Queue + Deferred + traced function per write cost several times the CPU of the
 * WAL append it waited for (figures: docs/performance.md), so it is written by hand.
 *
 * `offer(item, resume)` hands an item over with the callback that receives its result (no
 * fiber needed: `ApiServer` answers a request straight from it); `submit(item)` is the
 * same as an Effect that waits. `next` gives the committer everything offered so far (at
 * least one item, at most `maxBatch`); `takeNow()` what is there without waiting (a
 * pipelined committer starts the next batch before it settles the last). At most
 * `capacity` items are pending for the committer; items beyond that wait, parked, for
 * room (a bounded queue whose offerers wait, like `Queue.bounded`).
 *
 * The committer settles every item it takes exactly once, with `Waiter.resume`.
 */
import { Effect } from "effect"
import type { Exit } from "effect"

export interface Waiter<T, A, E> {
  readonly item: T
  readonly resume: (exit: Exit.Exit<A, E>) => void
}

export class Batcher<T, A, E> {
  private pending: Array<Waiter<T, A, E>> = []
  private parked: Array<Waiter<T, A, E>> = []
  private wake: (() => void) | undefined = undefined

  constructor(private readonly capacity: number, private readonly maxBatch: number) {}

  /** Items offered and not yet taken by the committer. */
  get size(): number {
    return this.pending.length + this.parked.length
  }

  /** Hands `item` to the committer; `resume` is called once with its result. */
  offer(item: T, resume: (exit: Exit.Exit<A, E>) => void): void {
    const waiter = { item, resume }
    if (this.pending.length < this.capacity) this.pending.push(waiter)
    else this.parked.push(waiter)
    // the committer resumes through the scheduler, after the fibers already scheduled:
    // submitters woken by the previous batch all get to submit before it takes this one
    this.wake?.()
  }

  /** Hands `item` to the committer and waits until the committer resolves it. */
  submit(item: T): Effect.Effect<A, E> {
    return Effect.async<A, E>((resume) => this.offer(item, resume))
  }

  /** For the committer: waits for at least one item; takes what is pending, up to `maxBatch`. */
  readonly next: Effect.Effect<Array<Waiter<T, A, E>>> = Effect.async<Array<Waiter<T, A, E>>>((resume) => {
    if (this.pending.length > 0) {
      resume(Effect.sync(() => this.take()))
      return
    }
    return Effect.sync(this.onNextOffer(() => resume(Effect.sync(() => this.take()))))
  })

  /**
   * For a committer waiting at the callback level, with nothing pending: `wake` runs once,
   * inside the next `offer`. Returns the function that unregisters it. (`next` and
   * `onNextOffer` share one slot: the last registered wins.)
   */
  onNextOffer(wake: () => void): () => void {
    const once = () => {
      this.wake = undefined
      wake()
    }
    this.wake = once
    return () => {
      if (this.wake === once) this.wake = undefined
    }
  }

  /** For the committer: takes what is pending now, up to `maxBatch`, without waiting (may be empty). */
  takeNow(): Array<Waiter<T, A, E>> {
    return this.pending.length === 0 ? [] : this.take()
  }

  /** Everything not yet taken (on close: the caller fails them). */
  drain(): Array<Waiter<T, A, E>> {
    const all = [...this.pending, ...this.parked]
    this.pending = []
    this.parked = []
    return all
  }

  private take(): Array<Waiter<T, A, E>> {
    let batch: Array<Waiter<T, A, E>>
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
