/**
 * The node's replicated state: a `CounterMap` of named PN-counters behind the WAL.
 *
 * A local write is prepared at once: the replica's new own totals for the counter, computed
 * on a staging copy of the counter that already holds the totals of this replica's writes
 * still in flight (an `Overflow` fails only this write). The entry goes to the WAL as one
 * append (`Wal.append`, group-committed with every other append waiting for the disk);
 * once it is durable it is applied to the map and the write resolves with the counter's
 * new value. No committer of its own: the WAL's committer batches, and it begins the next
 * write + fdatasync before it settles the last batch, so the disk is busy while the
 * answers go out.
 *
 * The port is made of Effects only. `increment` / `decrement` return a `Callback`
 * (internal/Callback.ts) and `value` a `Callback.sync`: ordinary Effects that a hot caller
 * (the HTTP engine, the RESP front end) runs with `Callback.run`, without a fiber per
 * write. The write itself runs the WAL's `append` the same way, so a write that reaches
 * the WAL through callbacks end to end costs no fiber, span or Effect run of its own.
 *
 * Invariant: an own entry is never visible (HTTP reads, gossip) before it is durable.
 * Otherwise a crash could make this replica hand out totals that peers already hold, and
 * the writes behind them would be lost. A write built on totals of writes in flight is
 * safe because the WAL makes appends durable in order and fails every append queued
 * behind a failed one: if an append fails, every write in flight fails with
 * `StoreUnavailable` (503 at HTTP), the staging copies are dropped and nothing is applied.
 *
 * Remote state (`merge`) is applied at once (it can always be learned again from its
 * owner) and persisted coalesced with `Wal.appendLazy`.
 *
 * Every change to the map is published on `changes` with the map versions before and
 * after it (see `Change`), for the gossip loop: a merge as one change, the local writes
 * settled together (one WAL batch) as one change.
 */
import { randomBytes } from "node:crypto"
import type { Scope } from "effect"
import { Cause, Context, Data, Duration, Effect, Either, Exit, Layer, Metric, Option, PubSub, Queue } from "effect"
import { CounterMap } from "../crdt/CounterMap.js"
import type { CounterPage, PageRequest } from "../crdt/CounterMap.js"
import type { CounterName } from "../crdt/CounterName.js"
import type { Entry } from "../crdt/Entry.js"
import { Overflow } from "../crdt/PNCounter.js"
import * as Callback from "../internal/Callback.js"
import type { ReplicaId } from "../crdt/ReplicaId.js"
import type { HostPort } from "../protocol/Message.js"
import { DataDir } from "../storage/DataDir.js"
import { Wal, WalError } from "../storage/Wal.js"
import * as Prometheus from "../observability/Prometheus.js"

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
  /** Capacity of the change notification hub (sliding: slow subscribers lose the oldest). */
  readonly changeCapacity?: number
  /** How long shutdown waits for the writes in flight to be durable. */
  readonly drainTimeout?: Duration.DurationInput
}

export class CounterStore extends Context.Tag("dcounter/CounterStore")<
  CounterStore,
  {
    readonly replicaId: ReplicaId
    /**
     * A random id of this map's history: map versions restart at every start, so a version
     * means something only together with the incarnation it belongs to.
     */
    readonly incarnation: string
    /**
     * Adds `by` to the counter; resolves with its new value once the write is durable, or
     * fails at once if the store is closed. The write is prepared when the Effect runs, and
     * each run is one write. (A `Callback`: a hot caller runs it without a fiber.)
     */
    readonly increment: (name: CounterName, by: number) => Effect.Effect<number, WriteError>
    readonly decrement: (name: CounterName, by: number) => Effect.Effect<number, WriteError>
    /** The counter's value (0 if never written). (A `Callback.sync`.) */
    readonly value: (name: CounterName) => Effect.Effect<number>
    /** This replica's own contribution to the counter: own increments - own decrements. */
    readonly localValue: (name: CounterName) => Effect.Effect<number>
    /** Every counter with its value, sorted by name. */
    readonly values: Effect.Effect<ReadonlyArray<{ readonly name: CounterName; readonly value: number }>>
    /**
     * One page of counters sorted by name: at most `limit` after `after` whose names start
     * with `prefix`, with `next` when more follow. Does not sort every name per call.
     */
    readonly page: (request: PageRequest) => Effect.Effect<CounterPage>
    /** The number of counters. */
    readonly count: Effect.Effect<number>
    /** One counter's per-replica totals and value. */
    readonly counterState: (name: CounterName) => Effect.Effect<CounterState>
    /** Every entry (the full state). */
    readonly entries: Effect.Effect<ReadonlyArray<Entry>>
    /** Number of entries in the state. */
    readonly size: Effect.Effect<number>
    readonly digest: Effect.Effect<string>
    readonly version: Effect.Effect<number>
    /**
     * Up to `max` entries in creation order from the `position`-th (see
     * `CounterMap.entriesAt`): the whole state in chunks, without a copy of all of it.
     */
    readonly entriesAt: (position: number, max: number) => Effect.Effect<ReadonlyArray<Entry>>
    /** The entries that changed after `version` (`0`: the full state). */
    readonly deltaSince: (version: number) => Effect.Effect<ReadonlyArray<Entry>>
    /** Merges remote state; returns the entries that grew. Persisted lazily (coalesced). */
    readonly merge: (entries: ReadonlyArray<Entry>, source?: MergeSource) => Effect.Effect<ReadonlyArray<Entry>>
    /** Change notifications, in order (see `Change`). */
    readonly changes: Effect.Effect<Queue.Dequeue<Change>, never, Scope.Scope>
  }
>() {}

/** `increment` or `decrement` by `kind`: for callers that carry a write's direction as data. */
export const write = (
  store: CounterStore["Type"],
  name: CounterName,
  kind: "inc" | "dec",
  by: number
): Effect.Effect<number, WriteError> => kind === "inc" ? store.increment(name, by) : store.decrement(name, by)

// ---------------------------------------------------------------------------- metrics

export const writesTotal = Metric.counter("dcounter_writes_total", {
  description: "Local increments and decrements acknowledged (durable)",
  incremental: true
})
export const writesFailedTotal = Metric.counter("dcounter_writes_failed_total", {
  description: "Local writes refused: WAL failure, overflow or shutdown",
  incremental: true
})
export const mergesTotal = Metric.counter("dcounter_merges_total", {
  description: "Remote states or deltas merged that changed the local state",
  incremental: true
})
export const mergedEntriesTotal = Metric.counter("dcounter_merged_entries_total", {
  description: "Entries raised by merging remote state",
  incremental: true
})
for (const m of [writesTotal, writesFailedTotal, mergesTotal, mergedEntriesTotal]) Prometheus.declared(m)

// ---------------------------------------------------------------------------- implementation

const closedError = () =>
  new StoreUnavailable({ reason: "Closed", message: "the node is shutting down; the write was not made" })

const LOCAL: ChangeOrigin = { _tag: "Local" }

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
    // a copy of the recovered state, with no tuple per entry (see `Wal.recoveredMap`)
    const map = wal.recoveredMap()
    yield* Effect.logInfo(
      `CounterStore: replica ${replicaId}${dataDir.fresh ? " (new)" : ""}, recovered ${map.entryCount} ` +
        `entries (${map.size} counters) from ${dataDir.path}`
    )

    yield* Prometheus.collector(() => [
      Prometheus.gaugeFamily("dcounter_counters", "Named counters this node holds (every counter ever written in the cluster that reached it).", map.size),
      Prometheus.gaugeFamily("dcounter_state_entries", "Per-replica entries in this node's state, over all counters.", map.entryCount)
    ])
    const hub = yield* PubSub.sliding<Change>(options.changeCapacity ?? 4096)
    yield* Effect.addFinalizer(() => PubSub.shutdown(hub))

    /**
     * The local writes settled since the last publication: a WAL batch settles its writes
     * one by one in one synchronous run, and they go out as ONE change when that run ends
     * (a microtask), each counter once with its last totals. Anything else published first
     * publishes these, so versions stay contiguous and in order.
     */
    let localNews: { readonly fromVersion: number; readonly entries: Map<CounterName, Entry> } | undefined
    const publishLocalNews = (): void => {
      const news = localNews
      if (news === undefined) return
      localNews = undefined
      hub.unsafeOffer({
        fromVersion: news.fromVersion,
        toVersion: map.version,
        entries: Array.from(news.entries.values()),
        origin: LOCAL
      })
    }
    /** Applies a durable local write; it is published with the rest of its run. */
    const applyLocal = (entry: Entry): void => {
      const fromVersion = map.version
      if (map.apply([entry]).length === 0) return
      if (localNews === undefined) {
        localNews = { fromVersion, entries: new Map() }
        queueMicrotask(publishLocalNews)
      }
      localNews.entries.set(entry[0], entry)
    }

    /** Applies remote entries to the map and publishes what grew; synchronous, so changes are ordered. */
    const applyAndPublish = (entries: ReadonlyArray<Entry>, origin: ChangeOrigin): Array<Entry> => {
      publishLocalNews()
      const fromVersion = map.version
      const changed = map.apply(entries)
      if (changed.length > 0) hub.unsafeOffer({ fromVersion, toVersion: map.version, entries: changed, origin })
      return changed
    }

    /** The counters with writes in flight: a staging copy holding their promised totals. */
    const staged = new Map<CounterName, { readonly copy: CounterMap; inFlight: number }>()
    /** Bumped when an append fails: settlements of older writes leave `staged` alone. */
    let generation = 0
    let inFlight = 0
    let closed = false
    /** opened once closed and no write is in flight */
    const drained = yield* Effect.makeLatch(false)
    /** WAL failures to log (from callbacks, which have no fiber): one line per failure. */
    const failures = yield* Queue.dropping<WalError>(16)
    yield* Queue.take(failures).pipe(
      Effect.flatMap((e) =>
        Effect.logError(
          `CounterStore: a WAL append failed (${e.reason}): ${e.message}; ` +
            "every write in flight with it failed (503), nothing was applied"
        )
      ),
      Effect.forever,
      Effect.forkScoped
    )

    const storeError = (cause: Cause.Cause<unknown>): StoreUnavailable => {
      const failure = Option.getOrUndefined(Cause.failureOption(cause))
      const walError = failure instanceof WalError ? failure : undefined
      return new StoreUnavailable({
        reason: walError?.reason === "Closed" ? "Closed" : "Disk",
        message: walError !== undefined
          ? `the write could not be made durable: ${walError.message}`
          : "the write failed unexpectedly",
        ...(walError !== undefined ? { cause: walError } : {})
      })
    }

    /** The WAL's answer for one write. */
    const settle = (
      name: CounterName,
      entry: Entry,
      writeGeneration: number,
      exit: Exit.Exit<void, WalError>,
      resume: (exit: Exit.Exit<number, WriteError>) => void
    ): void => {
      inFlight--
      if (writeGeneration === generation) {
        const s = staged.get(name)
        if (s !== undefined && --s.inFlight === 0) staged.delete(name)
      }
      if (Exit.isSuccess(exit)) {
        applyLocal(entry)
        writesTotal.unsafeUpdate(1, [])
        resume(Exit.succeed(map.value(name)))
      } else {
        const failure = Option.getOrUndefined(Cause.failureOption(exit.cause))
        if (failure !== undefined && writeGeneration === generation) {
          // a WalError fails every append queued behind it (see `Wal.append`): every later
          // write in flight, built on this one, fails with it; start again from the map
          generation++
          staged.clear()
          failures.unsafeOffer(failure)
        }
        writesFailedTotal.unsafeUpdate(1, [])
        resume(Exit.fail(storeError(exit.cause)))
      }
      if (closed && inFlight === 0) drained.unsafeOpen()
    }

    // Shutdown: refuse new writes, wait (for at most drainTimeout) for those in flight.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        closed = true
        if (inFlight === 0) return
        const done = yield* drained.await.pipe(Effect.timeout(options.drainTimeout ?? Duration.seconds(2)), Effect.option)
        if (done._tag === "None") yield* Effect.logWarning(`CounterStore: ${inFlight} writes not durable in time`)
      })
    )

    // Hot path: no fiber or span per write; the WAL's append runs at the callback level.
    const submit = (
      name: CounterName,
      kind: "inc" | "dec",
      by: number,
      resume: (exit: Exit.Exit<number, WriteError>) => void
    ): void => {
      if (closed) return resume(Exit.fail(closedError()))
      let s = staged.get(name)
      if (s === undefined) {
        s = { copy: stagingCopy(map, name), inFlight: 0 }
        staged.set(name, s)
      }
      const prepared = s.copy.prepare(name, replicaId, kind, by)
      if (Either.isLeft(prepared)) {
        if (s.inFlight === 0) staged.delete(name)
        writesFailedTotal.unsafeUpdate(1, [])
        return resume(Exit.fail(prepared.left))
      }
      const entry = prepared.right
      s.copy.apply([entry])
      s.inFlight++
      inFlight++
      const writeGeneration = generation
      Callback.run(wal.append([entry]), (exit) => settle(name, entry, writeGeneration, exit, resume))
    }
    const write = (kind: "inc" | "dec") => (name: CounterName, by: number): Effect.Effect<number, WriteError> =>
      Callback.make<number, WriteError>((resume) => submit(name, kind, by, resume))

    const merge = (entries: ReadonlyArray<Entry>, source: MergeSource = {}) =>
      Effect.suspend(() => {
        const from = source.from
        const changed = applyAndPublish(entries, { _tag: "Remote", from, repair: source.repair ?? false })
        if (changed.length === 0) return Effect.succeed(changed)
        // counters with writes in flight: their staging copies learn it too (sums for the
        // overflow check; own totals a peer holds higher, which the next write must pass)
        for (const e of changed) staged.get(e[0])?.copy.apply([e])
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
      incarnation: randomBytes(8).toString("hex"),
      increment: write("inc"),
      decrement: write("dec"),
      value: (name) => Callback.sync(() => map.value(name)),
      localValue: (name) =>
        Effect.sync(() => {
          const t = map.totals(name, replicaId)
          return t.inc - t.dec
        }),
      values: Effect.sync(() => map.values()),
      page: (request) => Effect.sync(() => map.page(request)),
      count: Effect.sync(() => map.size),
      counterState,
      entries: Effect.sync(() => map.entries()),
      size: Effect.sync(() => map.entryCount),
      digest: Effect.sync(() => map.digest()),
      version: Effect.sync(() => map.version),
      deltaSince: (version) => Effect.sync(() => map.deltaSince(version)),
      entriesAt: (position, max) => Effect.sync(() => map.entriesAt(position, max)),
      merge,
      changes: PubSub.subscribe(hub)
    })
  })

export const layer = (options: CounterStoreOptions = {}): Layer.Layer<CounterStore, never, Wal | DataDir> =>
  Layer.scoped(CounterStore, make(options))
