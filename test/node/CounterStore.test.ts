import { describe, expect, it } from "@effect/vitest"
import { Chunk, Context, Effect, Exit, Fiber, Layer, Queue, Scope, TestClock } from "effect"
import type { CounterName } from "../../src/crdt/CounterName.js"
import type { Entry } from "../../src/crdt/Entry.js"
import type { ReplicaId } from "../../src/crdt/ReplicaId.js"
import * as Callback from "../../src/internal/Callback.js"
import * as CounterStore from "../../src/node/CounterStore.js"
import * as DataDirMemory from "../../src/storage/DataDirMemory.js"
import * as MemoryDisk from "../../src/storage/MemoryDisk.js"
import { Wal, WalError } from "../../src/storage/Wal.js"
import * as WalMemory from "../../src/storage/WalMemory.js"

const c = (s: string) => s as CounterName
const r = (s: string) => s as ReplicaId

const storeLayer = (disk: MemoryDisk.MemoryDisk, wal: Layer.Layer<Wal> = WalMemory.layer(disk)) =>
  CounterStore.layer().pipe(Layer.provide(Layer.merge(wal, DataDirMemory.layer(disk))))

/** Builds a store on `disk` in its own scope, so a test can close it (a node stop) and reopen. */
const open = (disk: MemoryDisk.MemoryDisk, wal?: Layer.Layer<Wal>) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const ctx = yield* Layer.buildWithScope(storeLayer(disk, wal), scope)
    return { store: Context.get(ctx, CounterStore.CounterStore), scope }
  })

/** Builds the store in the test's scope. */
const build = (layer: Layer.Layer<CounterStore.CounterStore, unknown>) =>
  Effect.map(Layer.build(layer), (ctx) => Context.get(ctx, CounterStore.CounterStore))

/**
 * A Wal whose durable appends are held (an fdatasync in flight) until `release()`, which
 * makes them durable on the simulated disk in order; `release("NoSpace")` fails them all
 * instead, as a failed write fails every append queued behind it. `append` is a `Callback`,
 * like the real WALs' (the store runs it without a fiber); `releaseNow` is `release` as a
 * plain function, to see who is resumed before it returns.
 */
const heldWal = (disk: MemoryDisk.MemoryDisk) => {
  const held: Array<{ readonly entries: ReadonlyArray<Entry>; readonly resume: (exit: Exit.Exit<void, WalError>) => void }> = []
  const offered: Array<ReadonlyArray<Entry>> = []
  const layer = Layer.effect(
    Wal,
    Effect.map(Wal, (wal) =>
      Wal.of({
        ...wal,
        append: (entries) =>
          Callback.make((resume) => {
            offered.push(entries)
            held.push({ entries, resume })
          })
      }))
  ).pipe(Layer.provide(WalMemory.layer(disk)))
  const releaseNow = (fault?: WalError["reason"]): void => {
    for (const { entries, resume } of held.splice(0)) {
      if (fault !== undefined) resume(Exit.fail(new WalError({ reason: fault, message: "simulated" })))
      else {
        disk.state.apply(entries)
        disk.records++
        resume(Exit.void)
      }
    }
  }
  const release = (fault?: WalError["reason"]) =>
    Effect.gen(function*() {
      releaseNow(fault)
      // let the resumed writers run
      yield* Effect.yieldNow()
    })
  return { layer, release, releaseNow, held, offered }
}

describe("CounterStore", () => {
  it.scoped("increments and decrements resolve with the new value once durable", () =>
    Effect.gen(function*() {
      const disk = MemoryDisk.make()
      const store = yield* build(storeLayer(disk))
      expect(yield* store.value(c("a"))).toBe(0)
      expect(yield* store.increment(c("a"), 5)).toBe(5)
      expect(yield* store.decrement(c("a"), 2)).toBe(3)
      expect(yield* store.increment(c("b"), 1)).toBe(1)
      expect(yield* store.localValue(c("a"))).toBe(3)
      expect(yield* store.values).toEqual([{ name: "a", value: 3 }, { name: "b", value: 1 }])
      // durable: the simulated disk already holds the totals
      expect(disk.state.totals(c("a"), store.replicaId)).toEqual({ inc: 5, dec: 2 })
      const st = yield* store.counterState(c("a"))
      expect(st).toEqual({ name: "a", increments: { [store.replicaId]: 5 }, decrements: { [store.replicaId]: 2 }, value: 3 })
    }))

  it.scoped("a write is a Callback: Callback.run answers it without a fiber, as soon as it is durable", () =>
    Effect.gen(function*() {
      const disk = MemoryDisk.make()
      const wal = heldWal(disk)
      const store = yield* build(storeLayer(disk, wal.layer))
      const write = store.increment(c("cb"), 3)
      expect(Callback.isCallback(write)).toBe(true)
      expect(Callback.isCallback(store.value(c("cb")))).toBe(true)
      const exits: Array<Exit.Exit<number, CounterStore.WriteError>> = []
      Callback.run(write, (exit) => void exits.push(exit))
      // prepared and handed to the WAL at once; answered only once durable
      expect(wal.held.length).toBe(1)
      expect(exits).toEqual([])
      // no fiber waits for the WAL: the answer comes inside the WAL's own callback
      wal.releaseNow()
      expect(exits).toEqual([Exit.succeed(3)])
      // the same Effect, run again, is a second write (each run is one write)
      Callback.run(write, (exit) => void exits.push(exit))
      wal.releaseNow()
      expect(exits).toEqual([Exit.succeed(3), Exit.succeed(6)])
      const read: Array<Exit.Exit<number>> = []
      Callback.run(store.value(c("cb")), (exit) => void read.push(exit))
      expect(read).toEqual([Exit.succeed(6)])
    }))

  it.scoped("over the memory WAL, Callback.run resolves a write before it returns; yielded, the same write gives the same", () =>
    Effect.gen(function*() {
      const disk = MemoryDisk.make()
      const store = yield* build(storeLayer(disk))
      const exits: Array<Exit.Exit<number, CounterStore.WriteError>> = []
      Callback.run(store.increment(c("w"), 4), (exit) => void exits.push(exit))
      Callback.run(store.decrement(c("w"), 1), (exit) => void exits.push(exit))
      expect(exits).toEqual([Exit.succeed(4), Exit.succeed(3)])
      // the same writes yielded as Effects on the test's fiber
      expect(yield* store.increment(c("y"), 4)).toBe(4)
      expect(yield* store.decrement(c("y"), 1)).toBe(3)
      expect(disk.state.totals(c("w"), store.replicaId)).toEqual({ inc: 4, dec: 1 })
      expect(disk.state.totals(c("y"), store.replicaId)).toEqual({ inc: 4, dec: 1 })
      // a refused write fails the same way on both paths
      const big = Number.MAX_SAFE_INTEGER
      const refused: Array<Exit.Exit<number, CounterStore.WriteError>> = []
      Callback.run(store.increment(c("w"), big), (exit) => void refused.push(exit))
      const yielded = yield* Effect.exit(store.increment(c("w"), big))
      expect(refused.length).toBe(1)
      expect(Exit.isFailure(yielded)).toBe(true)
      expect(refused[0]).toEqual(yielded)
      expect(yield* store.value(c("w"))).toBe(3)
    }))

  it.scoped("an own write is invisible (reads, changes) until its WAL append has resolved", () =>
    Effect.gen(function*() {
      const disk = MemoryDisk.make()
      const wal = heldWal(disk)
      const store = yield* build(storeLayer(disk, wal.layer))
      const changes = yield* store.changes
      const fiber = yield* Effect.fork(store.increment(c("x"), 7))
      yield* Effect.yieldNow()
      expect(wal.held.length).toBe(1)
      expect(yield* store.value(c("x"))).toBe(0)
      expect(yield* store.entries).toEqual([])
      expect(yield* Queue.size(changes)).toBe(0)
      expect(disk.state.value(c("x"))).toBe(0)
      yield* wal.release()
      expect(yield* Fiber.join(fiber)).toBe(7)
      expect(yield* store.value(c("x"))).toBe(7)
      const change = yield* Queue.take(changes)
      expect(change.origin._tag).toBe("Local")
      expect(change.entries).toEqual([["x", store.replicaId, 7, 0]])
    }))

  it.scoped("the writes of one WAL batch are published as one change, each counter once with its last totals", () =>
    Effect.gen(function*() {
      const disk = MemoryDisk.make()
      const wal = heldWal(disk)
      const store = yield* build(storeLayer(disk, wal.layer))
      const changes = yield* store.changes
      const v0 = yield* store.version
      const fibers = yield* Effect.forEach(
        [store.increment(c("p"), 1), store.increment(c("q"), 4), store.increment(c("p"), 2), store.decrement(c("p"), 1)],
        (write) => Effect.fork(write)
      )
      yield* Effect.yieldNow()
      yield* wal.release()
      expect(yield* Effect.forEach(fibers, Fiber.join)).toEqual([1, 4, 3, 2])
      const batch = yield* Queue.take(changes)
      expect(batch.origin._tag).toBe("Local")
      expect(batch.fromVersion).toBe(v0)
      expect(batch.toVersion).toBe(yield* store.version)
      expect([...batch.entries].sort()).toEqual([[c("p"), store.replicaId, 3, 1], [c("q"), store.replicaId, 4, 0]])
      // a merge after it follows on from it
      yield* store.merge([[c("p"), r("peer"), 9, 0]])
      const merged = yield* Queue.take(changes)
      expect(merged.fromVersion).toBe(batch.toVersion)
      expect(yield* Queue.size(changes)).toBe(0)
    }))

  it.scoped("writes in flight build on each other: each append carries the totals so far, all are counted", () =>
    Effect.gen(function*() {
      const disk = MemoryDisk.make()
      const wal = heldWal(disk)
      const store = yield* build(storeLayer(disk, wal.layer))
      const fibers = yield* Effect.forEach(
        Array.from({ length: 200 }, (_, i) => i),
        (i) => Effect.fork(i % 4 === 0 ? store.decrement(c("n"), 1) : store.increment(c("n"), 2)),
        { concurrency: "unbounded" }
      )
      yield* Effect.yieldNow()
      // nothing durable yet, nothing visible; every write went to the WAL at once
      expect(wal.held.length).toBe(200)
      expect(yield* store.value(c("n"))).toBe(0)
      let inc = 0
      let dec = 0
      for (const [i, entries] of wal.offered.entries()) {
        if (i % 4 === 0) dec++
        else inc += 2
        expect(entries).toEqual([["n", store.replicaId, inc, dec]])
      }
      yield* wal.release()
      const values = yield* Effect.forEach(fibers, Fiber.join)
      expect(yield* store.value(c("n"))).toBe(inc - dec)
      expect(disk.state.totals(c("n"), store.replicaId)).toEqual({ inc, dec })
      expect(Math.max(...values)).toBe(inc - dec)
    }))

  it.scoped("a failed append fails every write in flight; the next write starts from the durable totals", () =>
    Effect.gen(function*() {
      const disk = MemoryDisk.make()
      const wal = heldWal(disk)
      const store = yield* build(storeLayer(disk, wal.layer))
      const first = yield* Effect.fork(store.increment(c("f"), 5))
      yield* Effect.yieldNow()
      yield* wal.release()
      expect(yield* Fiber.join(first)).toBe(5)
      const doomed = yield* Effect.forEach([1, 2, 3], (by) => Effect.fork(Effect.either(store.increment(c("f"), by))))
      yield* Effect.yieldNow()
      expect(wal.offered.at(-1)).toEqual([["f", store.replicaId, 11, 0]])
      yield* wal.release("Io")
      for (const f of doomed) {
        const res = yield* Fiber.join(f)
        expect(res._tag === "Left" && res.left._tag === "StoreUnavailable" && res.left.reason).toBe("Disk")
      }
      expect(yield* store.value(c("f"))).toBe(5)
      // built on the durable 5, not on the failed 11
      const next = yield* Effect.fork(store.increment(c("f"), 1))
      yield* Effect.yieldNow()
      expect(wal.offered.at(-1)).toEqual([["f", store.replicaId, 6, 0]])
      yield* wal.release()
      expect(yield* Fiber.join(next)).toBe(6)
      expect(disk.state.totals(c("f"), store.replicaId)).toEqual({ inc: 6, dec: 0 })
    }))

  it.scoped("state merged while writes are in flight reaches the writes prepared after it", () =>
    Effect.gen(function*() {
      const disk = MemoryDisk.make()
      const wal = heldWal(disk)
      const store = yield* build(storeLayer(disk, wal.layer))
      const first = yield* Effect.fork(store.increment(c("m"), 1))
      yield* Effect.yieldNow()
      // a peer holds higher totals for this replica (a copied data directory): the next
      // write must build on them, or the pointwise max would swallow it
      yield* store.merge([[c("m"), store.replicaId, 50, 0], [c("m"), r("peer"), 7, 0]])
      const second = yield* Effect.fork(store.increment(c("m"), 2))
      yield* Effect.yieldNow()
      expect(wal.offered).toEqual([[["m", store.replicaId, 1, 0]], [["m", store.replicaId, 52, 0]]])
      yield* wal.release()
      expect(yield* Fiber.join(first)).toBe(57)
      expect(yield* Fiber.join(second)).toBe(59)
    }))

  it.scoped("overflow fails only its own write", () =>
    Effect.gen(function*() {
      const disk = MemoryDisk.make()
      const store = yield* build(storeLayer(disk))
      yield* store.increment(c("big"), Number.MAX_SAFE_INTEGER - 1)
      const results = yield* Effect.all(
        [store.increment(c("big"), 5), store.increment(c("big"), 1), store.increment(c("other"), 3)],
        { concurrency: "unbounded", mode: "either" }
      )
      expect(results[0]._tag).toBe("Left")
      expect(results[1]._tag).toBe("Right")
      expect(results[2]._tag).toBe("Right")
      expect(yield* store.value(c("big"))).toBe(Number.MAX_SAFE_INTEGER)
      expect(yield* store.value(c("other"))).toBe(3)
    }))

  it.scoped("a failing disk fails the whole batch with StoreUnavailable and changes nothing", () =>
    Effect.gen(function*() {
      const disk = MemoryDisk.make()
      const store = yield* build(storeLayer(disk))
      const changes = yield* store.changes
      yield* store.increment(c("d"), 2)
      expect((yield* Queue.take(changes)).entries).toEqual([[c("d"), store.replicaId, 2, 0]])
      disk.failWith("NoSpace")
      const results = yield* Effect.all(
        [store.increment(c("d"), 1), store.decrement(c("d"), 1), store.increment(c("e"), 1)],
        { concurrency: "unbounded", mode: "either" }
      )
      for (const res of results) {
        expect(res._tag).toBe("Left")
        if (res._tag === "Left") {
          expect(res.left._tag).toBe("StoreUnavailable")
          expect(res.left._tag === "StoreUnavailable" && res.left.reason).toBe("Disk")
        }
      }
      expect(yield* store.value(c("d"))).toBe(2)
      expect(yield* store.value(c("e"))).toBe(0)
      expect(yield* Queue.size(changes)).toBe(0)
      disk.failWith(undefined)
      expect(yield* store.increment(c("d"), 1)).toBe(3)
      expect(disk.state.totals(c("d"), store.replicaId)).toEqual({ inc: 3, dec: 0 })
    }))

  it.effect("a store closed and reopened on the same disk resumes with the same replica and totals", () =>
    Effect.gen(function*() {
      const disk = MemoryDisk.make()
      const a = yield* open(disk)
      yield* a.store.increment(c("k"), 10)
      yield* a.store.decrement(c("k"), 3)
      yield* a.store.merge([[c("k"), r("peer"), 4, 1]])
      const id = a.store.replicaId
      yield* Scope.close(a.scope, Exit.void)
      const b = yield* open(disk)
      expect(b.store.replicaId).toBe(id)
      expect(yield* b.store.value(c("k"))).toBe(10)
      expect(yield* b.store.increment(c("k"), 1)).toBe(11)
      expect(yield* b.store.localValue(c("k"))).toBe(8)
      yield* Scope.close(b.scope, Exit.void)
    }))

  it.effect("after a crash every acknowledged write is recovered; a lost disk gets a new replica", () =>
    Effect.gen(function*() {
      const disk = MemoryDisk.make()
      const a = yield* open(disk)
      const acked = yield* Effect.forEach(Array.from({ length: 50 }, () => 1), (n) => a.store.increment(c("z"), n), {
        concurrency: 8
      })
      expect(acked.length).toBe(50)
      disk.crash()
      yield* Scope.close(a.scope, Exit.void)
      const b = yield* open(disk)
      expect(yield* b.store.value(c("z"))).toBe(50)
      expect(b.store.replicaId).toBe(a.store.replicaId)
      const fresh = yield* open(MemoryDisk.make())
      expect(fresh.store.replicaId).not.toBe(a.store.replicaId)
      yield* Scope.close(b.scope, Exit.void)
      yield* Scope.close(fresh.scope, Exit.void)
    }))

  it.effect("shutdown commits queued writes before the store closes, then refuses new ones", () =>
    Effect.gen(function*() {
      const disk = MemoryDisk.make()
      const a = yield* open(disk)
      const fibers = yield* Effect.forEach(Array.from({ length: 20 }, () => 0), () => Effect.fork(a.store.increment(c("s"), 1)))
      yield* Effect.yieldNow()
      yield* Scope.close(a.scope, Exit.void)
      const exits = yield* Effect.forEach(fibers, Fiber.await)
      const ok = exits.filter(Exit.isSuccess).length
      expect(ok).toBe(20)
      expect(disk.state.value(c("s"))).toBe(20)
      const after = yield* Effect.either(a.store.increment(c("s"), 1))
      expect(after._tag).toBe("Left")
      expect(disk.state.value(c("s"))).toBe(20)
    }))

  it.scoped("merge applies the pointwise max, reports what grew, publishes and persists it lazily", () =>
    Effect.gen(function*() {
      const disk = MemoryDisk.make()
      const store = yield* build(storeLayer(disk))
      const changes = yield* store.changes
      const v0 = yield* store.version
      const grew = yield* store.merge([[c("m"), r("p1"), 5, 2], [c("m"), r("p2"), 1, 0]], { from: "127.0.0.1:9001" as never })
      expect(grew).toEqual([["m", "p1", 5, 2], ["m", "p2", 1, 0]])
      expect(yield* store.merge([[c("m"), r("p1"), 3, 2]])).toEqual([])
      expect(yield* store.merge([[c("m"), r("p1"), 4, 6]])).toEqual([["m", "p1", 5, 6]])
      expect(yield* store.value(c("m"))).toBe(0)
      const all = Chunk.toReadonlyArray(yield* Queue.takeAll(changes))
      expect(all.length).toBe(2)
      expect(all[0]!.fromVersion).toBe(v0)
      expect(all[1]!.fromVersion).toBe(all[0]!.toVersion)
      expect(all[0]!.origin).toEqual({ _tag: "Remote", from: "127.0.0.1:9001", repair: false })
      // persisted coalesced, within the WAL's flush interval
      expect(disk.state.totals(c("m"), r("p1"))).toEqual({ inc: 0, dec: 0 })
      yield* TestClock.adjust("100 millis")
      expect(disk.state.totals(c("m"), r("p1"))).toEqual({ inc: 5, dec: 6 })
      expect(disk.state.totals(c("m"), r("p2"))).toEqual({ inc: 1, dec: 0 })
    }))
})
