/**
 * The file WAL's lazy appends: merged remote state is coalesced in `pending` (bounded by
 * the number of distinct entries, however often they are merged) and made durable within
 * `flushInterval` of the first lazy append, by an empty flush through the committer (which
 * takes `pending` into its batch, or into any batch that comes first). A failing flush is
 * logged once and retried every `flushInterval` until it works again.
 */
import type { Scope } from "effect"
import { Duration, Effect, Queue } from "effect"
import type { Entry } from "../../crdt/Entry.js"
import type { WalError } from "../Wal.js"
import type { Coalescer } from "./Coalescer.js"

export interface LazyFlusher {
  /** The lazily appended state not yet written; the committer takes it into each batch. */
  readonly pending: Coalescer
  /** Adds `entries` to `pending` and makes sure a flush comes within the interval. */
  readonly add: (entries: ReadonlyArray<Entry>) => Effect.Effect<void>
}

/**
 * Starts the flusher fiber in the layer's scope. `flush` makes everything appended so far
 * durable; `isClosed` stops the retries once the WAL is closing.
 */
export const make = (options: {
  readonly pending: Coalescer
  readonly flushInterval: Duration.Duration
  readonly flush: Effect.Effect<void, WalError>
  readonly isClosed: () => boolean
}): Effect.Effect<LazyFlusher, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { flush, flushInterval, isClosed, pending } = options
    const signal = yield* Queue.dropping<void>(1)
    let failing = false

    yield* Queue.take(signal).pipe(
      Effect.zipRight(Effect.sleep(flushInterval)),
      Effect.zipRight(Effect.suspend(() =>
        pending.size === 0 && !failing ? Effect.void : flush.pipe(
          Effect.zipRight(Effect.suspend(() => {
            if (!failing) return Effect.void
            failing = false
            return Effect.logInfo("WAL lazy flush works again")
          })),
          Effect.catchAll((e) =>
            Effect.gen(function*() {
              if (isClosed()) return
              if (!failing) yield* Effect.logWarning(`WAL lazy flush failed, retrying every ${Duration.format(flushInterval)}: ${e.message}`)
              failing = true
              yield* signal.offer(undefined)
            })
          )
        )
      )),
      Effect.forever,
      // interruptible even when the layer is built inside an uninterruptible region
      Effect.interruptible,
      Effect.forkScoped
    )

    return {
      pending,
      add: (entries) =>
        Effect.suspend(() => {
          pending.add(entries)
          return signal.offer(undefined).pipe(Effect.asVoid)
        })
    }
  })
