/**
 * `Wal` on a `MemoryDisk`, for tests and in-process simulations: the same contract as
 * `WalFile` (durable `append`, coalesced `appendLazy` flushed within `flushInterval`,
 * `flush` on close) without files. A `MemoryDisk.crash()` loses the lazy buffer and makes
 * this incarnation fail every call with `WalError` reason `Closed`; `disk.failWith(r)`
 * makes appends fail with reason `r`.
 */
import { Duration, Effect, Exit, Layer, Queue } from "effect"
import { fromEntries } from "../crdt/CounterMap.js"
import type { Entry } from "../crdt/Entry.js"
import * as Callback from "../internal/Callback.js"
import { Coalescer, coalesce } from "./internal/Coalescer.js"
import type { MemoryDisk } from "./MemoryDisk.js"
import { Wal, WalError, type WalStats } from "./Wal.js"
import * as WalMetrics from "./WalMetrics.js"

export interface WalMemoryOptions {
  /** How long lazily appended entries may wait before they are made durable (default 50 ms). */
  readonly flushInterval?: Duration.DurationInput
}

const faultMessages: Record<WalError["reason"], string> = {
  NoSpace: "no space left on the (simulated) device",
  ReadOnly: "the (simulated) file system is read-only",
  Io: "I/O error on the (simulated) disk",
  Closed: "the WAL is closed"
}

export const make = (disk: MemoryDisk, options: WalMemoryOptions = {}) =>
  Effect.gen(function*() {
    const generation = disk.generation
    const flushInterval = Duration.decode(options.flushInterval ?? Duration.millis(50))
    const recovered = disk.entries()
    const lazy = new Coalescer()
    let closed = false
    let appends = 0
    let records = 0
    let syncs = 0

    const alive = () => !closed && disk.generation === generation
    const failure = (): WalError | undefined => {
      if (!alive()) return new WalError({ reason: "Closed", message: `${faultMessages.Closed} (${disk.path})` })
      if (disk.fault !== undefined) {
        return new WalError({ reason: disk.fault, message: `${faultMessages[disk.fault]} (${disk.path})` })
      }
      return undefined
    }

    /** One "write + fdatasync" of a batch, at once: all or nothing; the error if it failed. */
    const writeNow = (entries: ReadonlyArray<Entry>, appendCount: number): WalError | undefined => {
      const error = failure()
      if (error !== undefined) return error
      if (entries.length > 0) {
        disk.state.apply(entries)
        disk.records++
        records++
      }
      syncs++
      appends += appendCount
      WalMetrics.appendsTotal.unsafeUpdate(appendCount, [])
      if (appendCount > 0) WalMetrics.groupCommitSize.unsafeUpdate(appendCount, [])
      return undefined
    }
    const write = (entries: ReadonlyArray<Entry>, appendCount: number) =>
      Effect.suspend(() => {
        const error = writeNow(entries, appendCount)
        return error === undefined ? Effect.void : Effect.fail(error)
      })

    const signal = yield* Queue.dropping<void>(1)

    const flushLazy = Effect.suspend(() => {
      const entries = lazy.take()
      return write(entries, 0).pipe(Effect.tapError(() => Effect.sync(() => lazy.add(entries))))
    })

    yield* Queue.take(signal).pipe(
      Effect.zipRight(Effect.sleep(flushInterval)),
      Effect.zipRight(
        flushLazy.pipe(
          Effect.catchAll((e) =>
            alive()
              ? Effect.logWarning("WAL lazy flush failed; retrying at the next flush", e).pipe(
                Effect.zipRight(signal.offer(undefined))
              )
              : Effect.void
          )
        )
      ),
      Effect.forever,
      // interruptible even when the layer is built inside an uninterruptible region
      Effect.interruptible,
      Effect.forkScoped
    )

    yield* Effect.addFinalizer(() =>
      (alive() && lazy.size > 0
        ? flushLazy.pipe(Effect.catchAll((e) => Effect.logError("WAL flush on close failed", e)))
        : Effect.void).pipe(Effect.ensuring(Effect.sync(() => (closed = true))))
    )

    const stats: Effect.Effect<WalStats> = Effect.sync(() => ({
      appends,
      records,
      syncs,
      bytesWritten: 0,
      snapshots: 0,
      syncSeconds: []
    }))

    return Wal.of({
      recovered,
      recoveredMap: () => fromEntries(recovered),
      append: (entries) =>
        Callback.make((resume) => {
          const error = writeNow(coalesce(entries), 1)
          resume(error === undefined ? Exit.void : Exit.fail(error))
        }),
      appendLazy: (entries) =>
        Effect.suspend(() => {
          if (!alive()) return Effect.fail(new WalError({ reason: "Closed", message: faultMessages.Closed }))
          lazy.add(entries)
          return signal.offer(undefined).pipe(Effect.asVoid)
        }),
      flush: flushLazy,
      stats
    })
  })

/** The `Wal` on a simulated disk that survives this layer being closed and built again. */
export const layer = (disk: MemoryDisk, options: WalMemoryOptions = {}): Layer.Layer<Wal> =>
  Layer.scoped(Wal, make(disk, options))
