/**
 * The node's replicated state: a `CounterMap` of named PN-counters behind the WAL.
 *
 * Local writes go through ONE committer fiber (group commit). An increment or decrement
 * queues an intent; the committer takes every queued intent, computes the replica's new
 * own totals from the state that is already durable (`CounterMap.prepare` on a per-batch
 * staging copy of the touched counters; an `Overflow` fails only its own intent), appends
 * the whole batch with one `Wal.append`, and only then applies it to the in-memory map and
 * resolves each intent with its counter's new value. While a batch is being synced, new
 * intents queue up and form the next batch, so throughput grows with concurrency.
 *
 * Invariant: an own entry is never visible (HTTP reads, gossip) before it is durable.
 * Otherwise a crash could make this replica hand out totals that peers already hold, and
 * the writes behind them would be lost. If `Wal.append` fails, the whole batch fails with
 * `StoreUnavailable` (503 at HTTP) and nothing is applied.
 *
 * Remote state (`merge`) is applied at once (it can always be learned again from its
 * owner) and persisted coalesced with `Wal.appendLazy`.
 *
 * Every change to the map, local or merged, is published on `changes` with the map
 * versions before and after it (see `Change`), for the gossip loop.
 */
import type { Queue, Scope } from "effect"
import { Cause, Context, Data, Duration, Effect, Either, Exit, Layer, Metric, MetricBoundaries, Option, PubSub } from "effect"
import { CounterMap } from "../crdt/CounterMap.js"
import type { CounterName } from "../crdt/CounterName.js"
import type { Entry } from "../crdt/Entry.js"
import { Overflow } from "../crdt/PNCounter.js"
import type { ReplicaId } from "../crdt/ReplicaId.js"
import type { HostPort } from "../protocol/Message.js"
import { DataDir } from "../storage/DataDir.js"
import { Wal, type WalError } from "../storage/Wal.js"
import { Batcher, type Waiter } from "../util/Batcher.js"

/** A local write could not be made durable, or the store is shutting down. Nothing changed. */
export class StoreUnavailable extends Data.TaggedError("StoreUnavailable")<{
  readonly reason: "Disk" | "Closed"
  readonly message: string
  readonly cause?: WalError
}> {}

export type WriteError = Overflow | StoreUnavailable

/** Where a change to the state came from. */
export type ChangeOrigin =
  | { readonly _tag: "Local" }
  | {
    readonly _tag: "Remote"
    readonly from: HostPort | undefined
    /** learned by anti-entropy (news the eager pushes missed), not from an eager delta */
    readonly repair: boolean
  }

/** Where merged state came from. */
export interface MergeSource {
  readonly from?: HostPort | undefined
  /** true for state learned by anti-entropy (see `ChangeOrigin`) */
  readonly repair?: boolean | undefined
}

/**
 * One change to the map: the entries that grew, with their resulting totals. Versions are
 * contiguous: a subscriber that saw every change up to `fromVersion` is complete up to
 * `toVersion`; a gap (a dropped notification) can be filled with `deltaSince`.
 */
export interface Change {
  readonly fromVersion: number
  readonly toVersion: number
  readonly entries: ReadonlyArray<Entry>
  readonly origin: ChangeOrigin
}

/** One counter as `/state` shows it. */
export interface CounterState {
  readonly name: CounterName
  readonly increments: Readonly<Record<string, number>>
  readonly decrements: Readonly<Record<string, number>>
  readonly value: number
}

export interface CounterStoreOptions {
  /** Capacity of the write-intent queue; writers wait (backpressure) when it is full. */
  readonly queueCapacity?: number
  /** Most intents committed in one WAL append. */
  readonly maxBatch?: number
  /** Capacity of the change notification hub (sliding: slow subscribers lose the oldest). */
  readonly changeCapacity?: number
  /** How long shutdown waits for queued writes to be committed. */
  readonly drainTimeout?: Duration.DurationInput
}

export class CounterStore extends Context.Tag("dcounter/CounterStore")<
  CounterStore,
  {
    readonly replicaId: ReplicaId
    /** Adds `by` to the counter; resolves with its new value once the write is durable. */
    readonly increment: (name: CounterName, by: number) => Effect.Effect<number, WriteError>
    readonly decrement: (name: CounterName, by: number) => Effect.Effect<number, WriteError>
    /**
     * `increment` / `decrement` at the callback level, for callers that need no fiber to
     * wait (`ApiServer`'s `Callback` handlers): `resume` is called once, with the new value
     * once the write is durable, or with the error (at once if the store is closed).
     */
    readonly submit: (
      name: CounterName,
      kind: "inc" | "dec",
      by: number,
      resume: (exit: Exit.Exit<number, WriteError>) => void
    ) => void
    /** The counter's value (0 if never written). */
    readonly value: (name: CounterName) => Effect.Effect<number>
    /** `value`, read at once: for callers that need no fiber (`Callback.sync` handlers). */
    readonly unsafeValue: (name: CounterName) => number
    /** This replica's own contribution to the counter: own increments - own decrements. */
    readonly localValue: (name: CounterName) => Effect.Effect<number>
    /** Every counter with its value, sorted by name. */
    readonly values: Effect.Effect<ReadonlyArray<{ readonly name: CounterName; readonly value: number }>>
    /** One counter's per-replica totals and value. */
    readonly counterState: (name: CounterName) => Effect.Effect<CounterState>
    /** Every entry (the full state). */
    readonly entries: Effect.Effect<ReadonlyArray<Entry>>
    /** Number of entries in the state. */
    readonly size: Effect.Effect<number>
    readonly digest: Effect.Effect<string>
    readonly version: Effect.Effect<number>
    /** The entries that changed after `version` (`0`: the full state). */
    readonly deltaSince: (version: number) => Effect.Effect<ReadonlyArray<Entry>>
    /**
     * Given a peer's FULL state, the entries of ours it lacks (missing, or lower in either
     * total), with our totals: exactly what the peer must merge to hold everything we hold.
     */
    readonly missingFrom: (theirs: ReadonlyArray<Entry>) => Effect.Effect<ReadonlyArray<Entry>>
    /** Merges remote state; returns the entries that grew. Persisted lazily (coalesced). */
    readonly merge: (entries: ReadonlyArray<Entry>, source?: MergeSource) => Effect.Effect<ReadonlyArray<Entry>>
    /** Change notifications, in order (see `Change`). */
    readonly changes: Effect.Effect<Queue.Dequeue<Change>, never, Scope.Scope>
  }
>() {}

// ---------------------------------------------------------------------------- metrics

export const writesTotal = Metric.counter("dcounter_writes_total", {
  description: "Local increments and decrements acknowledged (durable)",
  incremental: true
})
export const writesFailedTotal = Metric.counter("dcounter_writes_failed_total", {
  description: "Local writes refused: WAL failure, overflow or shutdown",
  incremental: true
})
export const commitBatchSize = Metric.histogram(
  "dcounter_commit_batch_size",
  MetricBoundaries.fromIterable([1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]),
  "Local writes committed per WAL append (group commit)"
)
export const mergesTotal = Metric.counter("dcounter_merges_total", {
  description: "Remote states or deltas merged that changed the local state",
  incremental: true
})
export const mergedEntriesTotal = Metric.counter("dcounter_merged_entries_total", {
  description: "Entries raised by merging remote state",
  incremental: true
})

// ---------------------------------------------------------------------------- implementation

/** A local write waiting for the committer. */
interface WriteIntent {
  readonly name: CounterName
  readonly kind: "inc" | "dec"
  readonly by: number
}

type Pending = Waiter<WriteIntent, number, WriteError>

const closedError = () =>
  new StoreUnavailable({ reason: "Closed", message: "the node is shutting down; the write was not made" })

const keyOf = (name: string, replica: string) => `${name}\u0000${replica}`

/** The state of one counter as a fresh map: a staging copy for one commit batch. */
const stagingCopy = (map: CounterMap, name: CounterName): CounterMap => {
  const staging = new CounterMap()
  const entries: Array<Entry> = []
  for (const [replica, t] of map.counter(name).replicas) entries.push([name, replica, t.inc, t.dec])
  staging.apply(entries)
  return staging
}

export const make = (options: CounterStoreOptions = {}) =>
  Effect.gen(function*() {
    const wal = yield* Wal
    const dataDir = yield* DataDir
    const replicaId = dataDir.replicaId
    const maxBatch = options.maxBatch ?? 4096
    const map = new CounterMap()
    map.apply(wal.recovered)

    const own = map.entries().filter((e) => e[1] === replicaId)
    yield* Effect.logInfo(
      `CounterStore: replica ${replicaId}${dataDir.fresh ? " (new)" : ""}, recovered ${wal.recovered.length} ` +
        `entries (${map.size} counters, ${own.length} with own writes) from ${dataDir.path}`
    )

    const hub = yield* PubSub.sliding<Change>(options.changeCapacity ?? 4096)
    yield* Effect.addFinalizer(() => PubSub.shutdown(hub))

    /** Applies entries to the map and publishes what grew; synchronous, so changes are ordered. */
    const applyAndPublish = (entries: ReadonlyArray<Entry>, origin: ChangeOrigin): Array<Entry> => {
      const fromVersion = map.version
      const changed = map.apply(entries)
      if (changed.length > 0) hub.unsafeOffer({ fromVersion, toVersion: map.version, entries: changed, origin })
      return changed
    }

    const intake = new Batcher<WriteIntent, number, WriteError>(options.queueCapacity ?? 16_384, maxBatch)
    let closed = false
    /** a batch is being committed */
    let busy = false
    /** opened by the committer once closed and nothing is left to commit */
    const drained = yield* Effect.makeLatch(false)

    const fail = (intent: Pending, error: WriteError) => intent.resume(Exit.fail(error))

    const commit = (batch: ReadonlyArray<Pending>) =>
      Effect.gen(function*() {
        const staging = new Map<CounterName, CounterMap>()
        const accepted: Array<Pending> = []
        let refused = 0
        for (const intent of batch) {
          const { name, kind, by } = intent.item
          let s = staging.get(name)
          if (s === undefined) {
            s = stagingCopy(map, name)
            staging.set(name, s)
          }
          const prepared = s.prepare(name, replicaId, kind, by)
          if (Either.isLeft(prepared)) {
            fail(intent, prepared.left)
            refused++
            continue
          }
          s.apply([prepared.right])
          accepted.push(intent)
        }
        if (refused > 0) yield* Metric.incrementBy(writesFailedTotal, refused)
        if (accepted.length === 0) return
        const entries: Array<Entry> = []
        for (const [name, s] of staging) {
          const t = s.totals(name, replicaId)
          const before = map.totals(name, replicaId)
          if (t.inc !== before.inc || t.dec !== before.dec) entries.push([name, replicaId, t.inc, t.dec])
        }
        const appended = yield* Effect.exit(wal.append(entries))
        if (Exit.isFailure(appended)) {
          const walError = Option.getOrUndefined(Cause.failureOption(appended.cause))
          const error = new StoreUnavailable({
            reason: "Disk",
            message: `the write could not be made durable: ${walError?.message ?? "WAL append failed"}`,
            ...(walError !== undefined ? { cause: walError } : {})
          })
          for (const intent of accepted) fail(intent, error)
          yield* Metric.incrementBy(writesFailedTotal, accepted.length)
          yield* walError !== undefined
            ? Effect.logError(`CounterStore: WAL append of ${accepted.length} writes failed (${walError.reason}): ${walError.message}`)
            : Effect.logError(`CounterStore: WAL append of ${accepted.length} writes failed`, appended.cause)
          return
        }
        applyAndPublish(entries, { _tag: "Local" })
        for (const intent of accepted) intent.resume(Exit.succeed(map.value(intent.item.name)))
        yield* Metric.incrementBy(writesTotal, accepted.length)
        yield* Metric.update(commitBatchSize, accepted.length)
      }).pipe(
        // one span per batch; no stack capture (an Error per batch, on the hot path)
        Effect.withSpan("CounterStore.commit", { attributes: { writes: batch.length }, captureStackTrace: false })
      )

    const committer = Effect.gen(function*() {
      while (true) {
        const batch = yield* intake.next
        busy = true
        // A defect must not kill the committer: fail the batch's writes and go on.
        yield* commit(batch).pipe(
          Effect.catchAllCause((cause) =>
            Effect.sync(() => {
              const error = new StoreUnavailable({ reason: "Disk", message: "the write failed unexpectedly" })
              for (const intent of batch) fail(intent, error)
            }).pipe(Effect.zipRight(Effect.logError("CounterStore: commit failed", cause)))
          )
        )
        busy = false
        if (closed && intake.size === 0) yield* drained.open
      }
    })
    yield* Effect.forkScoped(committer)

    // Shutdown: refuse new writes, commit every queued one (for at most drainTimeout), then
    // stop the committer (its fiber is interrupted by the scope after this finalizer).
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        closed = true
        if (busy || intake.size > 0) {
          const done = yield* drained.await.pipe(
            Effect.timeout(options.drainTimeout ?? Duration.seconds(2)),
            Effect.option
          )
          if (done._tag === "None") yield* Effect.logWarning("CounterStore: queued writes not committed in time")
        }
        for (const intent of intake.drain()) fail(intent, closedError())
      })
    )

    // Hot path: no span per write (Effect.fn captures a stack per call); the commit has one.
    const submit = (
      name: CounterName,
      kind: "inc" | "dec",
      by: number,
      resume: (exit: Exit.Exit<number, WriteError>) => void
    ): void => {
      if (closed) resume(Exit.fail(closedError()))
      else intake.offer({ name, kind, by }, resume)
    }
    const write = (kind: "inc" | "dec") => (name: CounterName, by: number): Effect.Effect<number, WriteError> =>
      Effect.async<number, WriteError>((resume) => submit(name, kind, by, resume))

    const merge = (entries: ReadonlyArray<Entry>, source: MergeSource = {}) =>
      Effect.suspend(() => {
        const from = source.from
        const changed = applyAndPublish(entries, { _tag: "Remote", from, repair: source.repair ?? false })
        if (changed.length === 0) return Effect.succeed(changed)
        const ownRaised = changed.filter((e) => e[1] === replicaId)
        return Effect.all([
          Metric.increment(mergesTotal),
          Metric.incrementBy(mergedEntriesTotal, changed.length),
          ownRaised.length > 0
            ? Effect.logError(
              `CounterStore: a peer${from !== undefined ? ` (${from})` : ""} holds higher totals for this ` +
                `replica (${replicaId}) than its own durable state; was its data directory copied or lost?`
            )
            : Effect.void,
          wal.appendLazy(changed).pipe(
            Effect.catchAll((e) => Effect.logWarning("CounterStore: persisting merged state failed", e))
          )
        ], { discard: true }).pipe(Effect.as(changed))
      })

    const missingFrom = (theirs: ReadonlyArray<Entry>) =>
      Effect.sync(() => {
        const known = new Map<string, Entry>()
        for (const e of theirs) known.set(keyOf(e[0], e[1]), e)
        const out: Array<Entry> = []
        for (const e of map.entries()) {
          const t = known.get(keyOf(e[0], e[1]))
          if (t === undefined || t[2] < e[2] || t[3] < e[3]) out.push(e)
        }
        return out
      })

    const counterState = (name: CounterName) =>
      Effect.sync((): CounterState => {
        const increments: Record<string, number> = {}
        const decrements: Record<string, number> = {}
        for (const [replica, t] of map.counter(name).replicas) {
          increments[replica] = t.inc
          decrements[replica] = t.dec
        }
        return { name, increments, decrements, value: map.value(name) }
      })

    return CounterStore.of({
      replicaId,
      increment: write("inc"),
      decrement: write("dec"),
      submit,
      value: (name) => Effect.sync(() => map.value(name)),
      unsafeValue: (name) => map.value(name),
      localValue: (name) =>
        Effect.sync(() => {
          const t = map.totals(name, replicaId)
          return t.inc - t.dec
        }),
      values: Effect.sync(() => map.values()),
      counterState,
      entries: Effect.sync(() => map.entries()),
      size: Effect.sync(() => map.entryCount),
      digest: Effect.sync(() => map.digest()),
      version: Effect.sync(() => map.version),
      deltaSince: (version) => Effect.sync(() => map.deltaSince(version)),
      missingFrom,
      merge,
      changes: PubSub.subscribe(hub)
    })
  })

export const layer = (options: CounterStoreOptions = {}): Layer.Layer<CounterStore, never, Wal | DataDir> =>
  Layer.scoped(CounterStore, make(options))
