import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Fiber, Layer, Scope, TestClock } from "effect"
import type { CounterName } from "../../src/crdt/CounterName.js"
import { fromEntries } from "../../src/crdt/CounterMap.js"
import type { Entry } from "../../src/crdt/Entry.js"
import type { ReplicaId } from "../../src/crdt/ReplicaId.js"
import { DataDir } from "../../src/storage/DataDir.js"
import * as DataDirMemory from "../../src/storage/DataDirMemory.js"
import * as MemoryDisk from "../../src/storage/MemoryDisk.js"
import { Wal } from "../../src/storage/Wal.js"
import * as WalMemory from "../../src/storage/WalMemory.js"

const e = (name: string, replica: string, inc: number, dec = 0): Entry =>
  [name as CounterName, replica as ReplicaId, inc, dec]

/** Opens a node's storage on `disk` in a new scope; returns the services and the scope. */
const open = (disk: MemoryDisk.MemoryDisk) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const ctx = yield* Layer.buildWithScope(Layer.merge(WalMemory.layer(disk), DataDirMemory.layer(disk)), scope)
    return { wal: Context.get(ctx, Wal), dataDir: Context.get(ctx, DataDir), scope }
  })

const close = (scope: Scope.CloseableScope) => Scope.close(scope, Exit.void)

const state = (entries: ReadonlyArray<Entry>) => fromEntries(entries).digest()

describe("WalMemory", () => {
  it.effect("a durable append survives a crash and a restart", () =>
    Effect.gen(function*() {
      const disk = MemoryDisk.make()
      const a = yield* open(disk)
      expect(a.wal.recovered).toEqual([])
      yield* a.wal.append([e("x", "r1", 1)])
      yield* a.wal.append([e("x", "r1", 2), e("y", "r1", 0, 5)])
      disk.crash()
      yield* close(a.scope)
      const b = yield* open(disk)
      expect(state(b.wal.recovered)).toBe(state([e("x", "r1", 2), e("y", "r1", 0, 5)]))
      yield* close(b.scope)
    }))

  it.effect("lazily appended state is lost by a crash before the flush interval", () =>
    Effect.gen(function*() {
      const disk = MemoryDisk.make()
      const a = yield* open(disk)
      yield* a.wal.appendLazy([e("x", "peer", 7)])
      disk.crash()
      yield* close(a.scope)
      const b = yield* open(disk)
      expect(b.wal.recovered).toEqual([])
      const err = yield* a.wal.append([e("x", "r", 1)]).pipe(Effect.flip)
      expect(err.reason).toBe("Closed")
      yield* close(b.scope)
    }))

  it.effect("lazily appended state is durable after the flush interval", () =>
    Effect.gen(function*() {
      const disk = MemoryDisk.make()
      const a = yield* open(disk)
      yield* a.wal.appendLazy([e("x", "peer", 7)])
      yield* a.wal.appendLazy([e("x", "peer", 3), e("x", "peer2", 1)])
      yield* TestClock.adjust("49 millis")
      expect(disk.entries()).toEqual([])
      yield* TestClock.adjust("1 millis")
      expect(state(disk.entries())).toBe(state([e("x", "peer", 7), e("x", "peer2", 1)]))
      expect(disk.records).toBe(1)
      disk.crash()
      yield* close(a.scope)
      const b = yield* open(disk)
      expect(state(b.wal.recovered)).toBe(state([e("x", "peer", 7), e("x", "peer2", 1)]))
      yield* close(b.scope)
    }))

  it.effect("flush and a clean close make lazy state durable", () =>
    Effect.gen(function*() {
      const disk = MemoryDisk.make()
      const a = yield* open(disk)
      yield* a.wal.appendLazy([e("x", "p", 1)])
      yield* a.wal.flush
      expect(disk.entries()).toEqual([e("x", "p", 1)])
      yield* a.wal.appendLazy([e("y", "p", 2)])
      yield* close(a.scope)
      const b = yield* open(disk)
      expect(state(b.wal.recovered)).toBe(state([e("x", "p", 1), e("y", "p", 2)]))
      yield* close(b.scope)
    }))

  it.effect("a failing disk fails appends with its reason and recovers when healed", () =>
    Effect.gen(function*() {
      const disk = MemoryDisk.make()
      const a = yield* open(disk)
      disk.failWith("NoSpace")
      const err = yield* a.wal.append([e("x", "r", 1)]).pipe(Effect.flip)
      expect(err._tag).toBe("WalError")
      expect(err.reason).toBe("NoSpace")
      yield* a.wal.appendLazy([e("x", "p", 4)])
      const fiber = yield* a.wal.flush.pipe(Effect.flip, Effect.fork)
      expect((yield* Fiber.join(fiber)).reason).toBe("NoSpace")
      expect(disk.entries()).toEqual([])
      disk.failWith(undefined)
      yield* a.wal.append([e("x", "r", 2)])
      yield* a.wal.flush
      expect(state(disk.entries())).toBe(state([e("x", "r", 2), e("x", "p", 4)]))
      const stats = yield* a.wal.stats
      expect(stats.appends).toBe(1)
      yield* close(a.scope)
    }))
})

describe("DataDirMemory", () => {
  it.effect("makes a replica id on an empty disk and keeps it", () =>
    Effect.gen(function*() {
      const disk = MemoryDisk.make()
      const a = yield* open(disk)
      expect(a.dataDir.fresh).toBe(true)
      const id = a.dataDir.replicaId
      yield* close(a.scope)
      const b = yield* open(disk)
      expect(b.dataDir.fresh).toBe(false)
      expect(b.dataDir.replicaId).toBe(id)
      disk.crash()
      yield* close(b.scope)
      const c = yield* open(disk)
      expect(c.dataDir.replicaId).toBe(id)
      yield* close(c.scope)
      const lost = yield* open(MemoryDisk.make())
      expect(lost.dataDir.fresh).toBe(true)
      expect(lost.dataDir.replicaId).not.toBe(id)
      yield* close(lost.scope)
    }))

  it.effect("refuses a second holder of the same disk until the first closes or crashes", () =>
    Effect.gen(function*() {
      const disk = MemoryDisk.make()
      const a = yield* open(disk)
      const err = yield* Layer.build(DataDirMemory.layer(disk)).pipe(Effect.scoped, Effect.flip)
      expect(err.reason).toBe("Locked")
      yield* close(a.scope)
      const b = yield* open(disk)
      disk.crash()
      const c = yield* open(disk)
      expect(c.dataDir.replicaId).toBe(b.dataDir.replicaId)
      yield* close(b.scope)
      // the crashed incarnation's finalizer must not release the new holder's lock
      const again = yield* Layer.build(DataDirMemory.layer(disk)).pipe(Effect.scoped, Effect.flip)
      expect(again.reason).toBe("Locked")
      yield* close(c.scope)
    }))
})
