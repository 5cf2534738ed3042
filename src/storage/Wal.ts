/**
 * The write-ahead log port, made of Effects only. `append` is durable when it resolves
 * (written and fdatasynced, group-committed with concurrent appends);
 * `appendLazy` is for merged remote state, made durable within a short flush interval.
 * Recovery (snapshot + replay) happens when the layer is built; `recovered` is its result.
 * Implementations: `WalFile.layer` and `WalMemory.layer` (see those modules). Both return
 * `append` as a `Callback` (internal/Callback.ts): an ordinary Effect that the node's write
 * path can also run without a fiber (`Callback.run`).
 */
import type { Effect } from "effect"
import { Context, Data } from "effect"
import type { CounterMap } from "../crdt/CounterMap.js"
import type { Entry } from "../crdt/Entry.js"

/** A failure of the disk under the WAL: the append was not made durable. */
export class WalError extends Data.TaggedError("WalError")<{
  readonly reason: "NoSpace" | "ReadOnly" | "Io" | "Closed"
  readonly message: string
  readonly cause?: unknown
}> {}

/** Recovery found damage it must not repair silently. */
export class WalCorrupted extends Data.TaggedError("WalCorrupted")<{
  readonly file: string
  readonly offset: number
  readonly message: string
}> {}

export interface WalStats {
  readonly appends: number
  readonly records: number
  readonly syncs: number
  readonly bytesWritten: number
  readonly snapshots: number
  /** recent fdatasync durations in seconds (the last 1,024, a ring; the full
   * distribution is the `dcounter_wal_fsync_seconds` histogram in /metrics) */
  readonly syncSeconds: ReadonlyArray<number>
}

export class Wal extends Context.Tag("dcounter/Wal")<
  Wal,
  {
    /**
     * The state recovered at start: latest snapshot plus every later record. Read it once,
     * before the first append (the node's store does when it is built): an implementation
     * may compute it when read instead of keeping a copy of the whole state for the
     * node's life (`WalFile` does; read later, it is the durable state then).
     */
    readonly recovered: ReadonlyArray<Entry>
    /**
     * `recovered` as a map of the caller's own (a fresh copy it may keep and change): what
     * the node's store starts from, without a tuple per entry. Read it before the first
     * append, like `recovered`.
     */
    readonly recoveredMap: () => CounterMap
    /**
     * Durable append: resolves after the entries are written and fdatasynced. Appends are
     * durable in the order they were made, and a failed write fails every append waiting
     * behind it as well: a caller may build an append on entries of one still in flight
     * (totals that include it) without that append ever being durable on its own. The
     * append is handed over when the Effect runs, not when it is built; run through
     * `Callback.run`, it resumes once, possibly before `run` returns (a closed WAL).
     */
    readonly append: (entries: ReadonlyArray<Entry>) => Effect.Effect<void, WalError>
    /** Coalesced append for merged remote state: durable within the flush interval. */
    readonly appendLazy: (entries: ReadonlyArray<Entry>) => Effect.Effect<void, WalError>
    /** Makes everything appended so far durable. */
    readonly flush: Effect.Effect<void, WalError>
    readonly stats: Effect.Effect<WalStats>
  }
>() {}
