/**
 * The WAL's lazy flusher on its own, on the TestClock: lazily appended state is flushed
 * once, `flushInterval` after the first lazy append (not before, and not once per
 * append); a failing flush is retried every interval until it works, and not once the
 * WAL is closed.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Logger, TestClock } from "effect"
import type { CounterName } from "../../src/crdt/CounterName.js"
import type { Entry } from "../../src/crdt/Entry.js"
import type { ReplicaId } from "../../src/crdt/ReplicaId.js"
import { Coalescer } from "../../src/storage/internal/Coalescer.js"
import * as LazyFlusher from "../../src/storage/internal/LazyFlusher.js"
import { WalError } from "../../src/storage/Wal.js"

const silent = Logger.replace(Logger.defaultLogger, Logger.none)

const entry = (name: string, inc: number): Entry => [name as CounterName, "r1" as ReplicaId, inc, 0] as const

const interval = Duration.millis(50)

/** A flusher whose flush takes the pending state (as the committer does) unless `failing`. */
const setup = Effect.gen(function*() {
  const pending = new Coalescer()
  const state = { flushes: 0, failing: false, closed: false, flushed: [] as Array<Array<Entry>> }
  const flush = Effect.suspend(() => {
    state.flushes++
    if (state.failing) return Effect.fail(new WalError({ reason: "Io", message: "simulated" }))
    state.flushed.push(pending.take())
    return Effect.void
  })
  const flusher = yield* LazyFlusher.make({ pending, flushInterval: interval, flush, isClosed: () => state.closed })
  return { flusher, pending, state }
})

describe("LazyFlusher", () => {
  it.scoped("flushes once, flushInterval after the first lazy append", () =>
    Effect.gen(function*() {
      const { flusher, state } = yield* setup
      yield* flusher.add([entry("a", 1)])
      yield* TestClock.adjust(Duration.millis(20))
      yield* flusher.add([entry("a", 2), entry("b", 1)])
      yield* TestClock.adjust(Duration.millis(29))
      expect(state.flushes).toBe(0)
      yield* TestClock.adjust(Duration.millis(1))
      expect(state.flushed).toEqual([[entry("a", 2), entry("b", 1)]])
      // nothing pending: no further flush
      yield* TestClock.adjust(Duration.millis(500))
      expect(state.flushes).toBe(1)
    }).pipe(Effect.provide(silent)))

  it.scoped("a failing flush is retried every interval until it works, and stops once closed", () =>
    Effect.gen(function*() {
      const { flusher, state } = yield* setup
      state.failing = true
      yield* flusher.add([entry("a", 1)])
      yield* TestClock.adjust(interval)
      yield* TestClock.adjust(interval)
      yield* TestClock.adjust(interval)
      expect(state.flushes).toBe(3)
      state.failing = false
      yield* TestClock.adjust(interval)
      expect(state.flushed).toEqual([[entry("a", 1)]])
      yield* TestClock.adjust(Duration.millis(500))
      expect(state.flushes).toBe(4)

      state.failing = true
      yield* flusher.add([entry("b", 1)])
      yield* TestClock.adjust(interval)
      expect(state.flushes).toBe(5)
      state.closed = true
      yield* TestClock.adjust(Duration.millis(500))
      // the retry already due runs once more; once closed, its failure is not retried again
      expect(state.flushes).toBe(6)
    }).pipe(Effect.provide(silent)))
})
