/**
 * The file WAL's group commit: one committer fiber takes everything handed to the
 * `Batcher` so far, coalesces it by `(name, replica)` (entries are totals, so the maximum
 * is all that matters), adds whatever lazily appended state is pending, writes it as ONE
 * record and fdatasyncs it, then answers every caller of the batch.
 *
 * It is pipelined: the moment a batch is durable, everything queued meanwhile is written
 * and its fdatasync started, and only then are the durable batch's callers answered, so
 * the disk works while they are. Appends are durable in the order they were handed over.
 *
 * A failed write or fdatasync (ENOSPC, EIO, EROFS) fails every append of the batch and
 * every append queued behind it with `WalError` (a caller may have built its append on
 * entries of one still in flight), gives the batch's lazy state back, and cuts the
 * segment back at once; the WAL keeps working once the disk does.
 *
 * Written by hand, with callbacks inside (`pipeline`): this loop runs once per group
 * commit on the node's durable write path, and the same loop as Effect steps allocated
 * per request enough to keep the young generation of the collector busy. Everything
 * rarer (an empty flush, a cut-back, a rotation, several records, a snapshot) goes
 * through Effect steps, a batch at a time.
 */
import type { Scope } from "effect"
import { Effect, Exit, type Fiber } from "effect"
import type { CounterMap } from "../../crdt/CounterMap.js"
import type { Entry } from "../../crdt/Entry.js"
import { WalError } from "../Wal.js"
import * as WalMetrics from "../WalMetrics.js"
import { Batcher, type Waiter } from "./Batcher.js"
import { Coalescer } from "./Coalescer.js"
import type { SegmentWriter } from "./SegmentWriter.js"
import type { Snapshotter } from "./Snapshotter.js"
import type { WalTally } from "./WalTally.js"

/** The most appends one group commit takes. */
export const MAX_BATCH = 4096

/** What a caller hands to the committer. */
export interface Pending {
  readonly entries: ReadonlyArray<Entry>
  /** 1 for an `append`, 0 for a flush. */
  readonly appends: number
}

export type Caller = Waiter<Pending, void, WalError>

/** A batch taken from the batcher: its callers and the entries to write for them. */
interface Batch {
  readonly callers: ReadonlyArray<Caller>
  /** the callers' entries and the pending lazy state, coalesced */
  readonly entries: ReadonlyArray<Entry>
  /** the lazily appended entries it carries (given back to `lazy` if it fails) */
  readonly lazyEntries: ReadonlyArray<Entry>
  readonly appendCount: number
}

export interface CommitterConfig {
  /** appends waiting for the committer before `offer` parks them */
  readonly maxPendingAppends: number
  /** what callers still waiting get when the committer is interrupted (the WAL closes) */
  readonly closedError: () => WalError
}

export interface Committer {
  /** The hand-off: `batcher.offer(pending, resume)`; `resume` is called once with the outcome. */
  readonly batcher: Batcher<Pending, void, WalError>
  /** The committer fiber, in the layer's scope; interrupting it fails the callers it holds. */
  readonly fiber: Fiber.RuntimeFiber<never>
}

/**
 * Starts the committer over `writer`. `fold` is the durable state (batches are applied
 * once durable); `lazy` is the pending lazily appended state, taken into each batch.
 */
export const make = (
  config: CommitterConfig,
  deps: {
    readonly fold: CounterMap
    readonly writer: SegmentWriter
    readonly snapshotter: Snapshotter
    readonly lazy: Coalescer
    readonly tally: WalTally
  }
): Effect.Effect<Committer, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { fold, lazy, snapshotter, tally, writer } = deps
    const batcher = new Batcher<Pending, void, WalError>(Math.max(1, config.maxPendingAppends), MAX_BATCH)

    /** Callers taken from the batcher whose outcome is not settled yet (failed on interrupt). */
    let unsettled: Array<Caller> = []

    /** Takes everything queued, with the pending lazy state; undefined if nothing is queued. */
    const takeBatch = (callers: ReadonlyArray<Caller> = batcher.takeNow()): Batch | undefined => {
      if (callers.length === 0) return undefined
      unsettled = [...callers]
      const coalescer = new Coalescer()
      let appendCount = 0
      for (const p of callers) {
        coalescer.add(p.item.entries)
        appendCount += p.item.appends
      }
      const lazyEntries = lazy.take()
      coalescer.add(lazyEntries)
      return { callers, entries: coalescer.take(), lazyEntries, appendCount }
    }

    /** The batch is durable: into the fold and the counters (its callers are answered apart). */
    const committed = (batch: Batch): void => {
      fold.apply(batch.entries)
      tally.appends += batch.appendCount
      WalMetrics.appendsTotal.unsafeUpdate(batch.appendCount, [])
      if (batch.appendCount > 0) WalMetrics.groupCommitSize.unsafeUpdate(batch.appendCount, [])
    }

    /** Resumes every caller, even when one of them throws (rethrown after the others). */
    const answer = (callers: ReadonlyArray<Caller>): void => {
      let defect: { readonly cause: unknown } | undefined
      for (const p of callers) {
        try {
          p.resume(Exit.void)
        } catch (cause) {
          defect ??= { cause }
        }
      }
      if (defect !== undefined) throw defect.cause
    }

    /** Fails the batch and every append queued behind it (see `Wal.append`). */
    const failAll = (batch: Batch, error: WalError): void => {
      lazy.add(batch.lazyEntries)
      const failure = Exit.fail(error)
      const failed = [...unsettled, ...batcher.drain()]
      unsettled = []
      for (const p of failed) p.resume(failure)
    }

    /** The callback-level path takes it: one record, and no cut-back or rotation first. */
    const fitsFastPath = (batch: Batch): boolean => writer.fitsOneRecord(batch.entries.length)

    /**
     * The pipelined commit at the callback level, with no fiber step per batch: when a batch
     * is durable, everything queued meanwhile is coalesced and its write + fdatasync begun
     * BEFORE the durable batch's callers are answered, so the disk works while they are.
     * Once nothing is queued it waits at the callback level too: the next offer starts the
     * next batch (in a microtask, so it is not written from inside the offer). Resumes the
     * committer with the next batch when it needs the general path (a failure's cut-back, a
     * rotation, several records, a snapshot, an empty flush).
     */
    const pipeline = (first: Batch) =>
      Effect.async<Batch | undefined>((resume) => {
        let ended = false
        const end = (next: Effect.Effect<Batch | undefined>) => {
          ended = true
          resume(next)
        }
        /** unregisters the wait for the next offer */
        let unpark: (() => void) | undefined
        const park = (): void => {
          unpark = batcher.onNextOffer(() => {
            unpark = undefined
            queueMicrotask(restart)
          })
        }
        const restart = (): void => {
          if (ended) return
          try {
            start(takeBatch())
          } catch (defect) {
            end(Effect.die(defect))
          }
        }
        const start = (next: Batch | undefined): void => {
          if (next === undefined) return park()
          if (!fitsFastPath(next)) return end(Effect.succeed(next))
          run(next)
        }
        const run = (batch: Batch): void =>
          writer.writeFast(batch.entries, (error) => {
            if (ended) return
            try {
              settle(batch, error)
            } catch (defect) {
              end(Effect.die(defect))
            }
          })
        const settle = (batch: Batch, error: WalError | undefined): void => {
          if (error !== undefined) {
            failAll(batch, error)
            return end(Effect.as(writer.cutBackNow, undefined))
          }
          unsettled = []
          // the durable batch is answered whatever happens to the next one
          try {
            committed(batch)
            if (snapshotter.dueNow()) {
              // a snapshot starts a new segment: nothing may be in flight on this one
              return end(Effect.zipRight(snapshotter.maybeSnapshot, Effect.sync(() => takeBatch())))
            }
            start(takeBatch())
          } finally {
            answer(batch.callers)
          }
        }
        run(first)
        return Effect.sync(() => {
          ended = true
          unpark?.()
        })
      })

    /**
     * One run of the committer, from the first batch until nothing is queued: the callback
     * path (`pipeline`) while batches fit it, the general one a batch at a time otherwise.
     */
    const commitFrom = (first: ReadonlyArray<Caller>) =>
      Effect.gen(function*() {
        let batch = takeBatch(first)
        while (batch !== undefined) {
          if (fitsFastPath(batch)) {
            batch = yield* pipeline(batch)
            continue
          }
          const result = yield* Effect.either(batch.entries.length === 0 ? Effect.void : writer.writeDurably(batch.entries))
          if (result._tag === "Left") {
            failAll(batch, result.left)
            return yield* writer.cutBackNow
          }
          unsettled = []
          try {
            committed(batch)
          } finally {
            answer(batch.callers)
          }
          yield* snapshotter.maybeSnapshot
          batch = takeBatch()
        }
      })

    // one write+fdatasync at a time, everything queued meanwhile is the next batch
    const fiber = yield* batcher.next.pipe(
      Effect.flatMap((batch) =>
        commitFrom(batch).pipe(
          Effect.catchAllCause((cause) =>
            Effect.gen(function*() {
              yield* Effect.logError("WAL committer failed on a batch", cause)
              writer.abandonWrites()
              const error = Exit.fail(new WalError({ reason: "Io", message: "internal error in the WAL committer", cause }))
              const failed = [...unsettled, ...batcher.drain()]
              unsettled = []
              for (const p of failed) p.resume(error)
              yield* writer.cutBackNow
            })
          ),
          Effect.onInterrupt(() =>
            Effect.sync(() => {
              writer.abandonWrites()
              const error = Exit.fail(config.closedError())
              const failed = unsettled
              unsettled = []
              for (const p of failed) p.resume(error)
            })
          )
        )
      ),
      Effect.forever,
      // interruptible even when the layer is built inside an uninterruptible region
      Effect.interruptible,
      Effect.forkScoped
    )

    return { batcher, fiber }
  })
