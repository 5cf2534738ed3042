import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, FastCheck as fc, Fiber, Option } from "effect"
import { Batcher } from "../../src/storage/internal/Batcher.js"

const items = <T>(batch: ReadonlyArray<{ readonly item: T }>): Array<T> => batch.map((w) => w.item)

/** Offers `xs` with callbacks that record what each one is resumed with. */
const offerAll = <T, A, E>(batcher: Batcher<T, A, E>, xs: ReadonlyArray<T>) => {
  const results = new Map<T, Array<Exit.Exit<A, E>>>()
  for (const x of xs) {
    results.set(x, [])
    batcher.offer(x, (exit) => results.get(x)!.push(exit))
  }
  return results
}

/** A committer (forked) that settles every item it takes with `settle(item)`. */
const committer = <A, E>(batcher: Batcher<number, A, E>, settle: (n: number) => Exit.Exit<A, E>) =>
  batcher.next.pipe(
    Effect.map((batch) => {
      for (const w of batch) w.resume(settle(w.item))
    }),
    Effect.forever,
    Effect.fork
  )

describe("Batcher", () => {
  it.effect("submit resolves with what the committer settles: success or failure", () =>
    Effect.gen(function*() {
      const batcher = new Batcher<number, number, string>(16, 16)
      yield* committer(batcher, (n) => (n % 2 === 0 ? Exit.succeed(n * 10) : Exit.fail(`odd ${n}`)))
      expect(yield* batcher.submit(4)).toBe(40)
      expect(yield* Effect.flip(batcher.submit(3))).toBe("odd 3")
      const all = yield* Effect.all([2, 5, 6].map((n) => Effect.either(batcher.submit(n))), { concurrency: "unbounded" })
      expect(all.map((e) => (e._tag === "Right" ? e.right : e.left))).toEqual([20, "odd 5", 60])
      expect(batcher.size).toBe(0)
    }))

  it.effect("offer resumes its callback once, with the committer's exit", () =>
    Effect.gen(function*() {
      const batcher = new Batcher<string, number, string>(16, 16)
      const results = offerAll(batcher, ["a", "bb", "ccc"])
      const batch = yield* batcher.next
      expect(items(batch)).toEqual(["a", "bb", "ccc"])
      // nothing is resumed until the committer settles
      expect([...results.values()].every((r) => r.length === 0)).toBe(true)
      for (const w of batch) w.resume(w.item === "bb" ? Exit.fail("refused") : Exit.succeed(w.item.length))
      expect(results.get("a")).toEqual([Exit.succeed(1)])
      expect(results.get("bb")).toEqual([Exit.fail("refused")])
      expect(results.get("ccc")).toEqual([Exit.succeed(3)])
    }))

  it.effect("next waits for a first item, then takes everything offered before it resumes", () =>
    Effect.gen(function*() {
      const batcher = new Batcher<number, void, never>(16, 16)
      const taker = yield* Effect.fork(batcher.next)
      yield* Effect.yieldNow()
      expect(Option.isNone(yield* Fiber.poll(taker))).toBe(true)
      // the committer resumes through the scheduler: all three offers get into its batch
      offerAll(batcher, [1, 2, 3])
      expect(items(yield* Fiber.join(taker))).toEqual([1, 2, 3])
      expect(batcher.size).toBe(0)
    }))

  it.effect("next takes at most maxBatch, oldest first", () =>
    Effect.gen(function*() {
      const batcher = new Batcher<number, void, never>(16, 2)
      offerAll(batcher, [1, 2, 3, 4, 5])
      expect(batcher.size).toBe(5)
      expect(items(yield* batcher.next)).toEqual([1, 2])
      expect(batcher.size).toBe(3)
      expect(items(yield* batcher.next)).toEqual([3, 4])
      expect(items(yield* batcher.next)).toEqual([5])
      expect(batcher.size).toBe(0)
    }))

  it.effect("capacity parks extra items; they move in, in order, as batches make room", () =>
    Effect.gen(function*() {
      const batcher = new Batcher<number, void, never>(2, 10)
      offerAll(batcher, [1, 2, 3, 4, 5])
      // parked items count in size, but a batch holds only what was pending
      expect(batcher.size).toBe(5)
      expect(items(yield* batcher.next)).toEqual([1, 2])
      expect(batcher.size).toBe(3)
      offerAll(batcher, [6])
      expect(items(yield* batcher.next)).toEqual([3, 4])
      expect(items(yield* batcher.next)).toEqual([5, 6])
      expect(batcher.size).toBe(0)
    }))

  it.effect("capacity and maxBatch together: a partial batch lets only as many parked items in as there is room", () =>
    Effect.gen(function*() {
      const batcher = new Batcher<number, void, never>(3, 2)
      offerAll(batcher, [1, 2, 3, 4, 5, 6, 7])
      expect(items(yield* batcher.next)).toEqual([1, 2])
      expect(items(yield* batcher.next)).toEqual([3, 4])
      expect(items(yield* batcher.next)).toEqual([5, 6])
      expect(items(yield* batcher.next)).toEqual([7])
    }))

  it.effect("drain returns everything not taken, pending then parked, and leaves the batcher empty", () =>
    Effect.gen(function*() {
      const batcher = new Batcher<number, void, string>(2, 1)
      const results = offerAll(batcher, [1, 2, 3, 4])
      expect(items(yield* batcher.next)).toEqual([1])
      const rest = batcher.drain()
      expect(items(rest)).toEqual([2, 3, 4])
      expect(batcher.size).toBe(0)
      expect(batcher.drain()).toEqual([])
      // the caller fails what it drained; each callback hears it once
      for (const w of rest) w.resume(Exit.fail("closed"))
      expect(results.get(3)).toEqual([Exit.fail("closed")])
      expect(results.get(1)).toEqual([])
      // a later next waits for new items again
      const taker = yield* Effect.fork(batcher.next)
      yield* Effect.yieldNow()
      expect(Option.isNone(yield* Fiber.poll(taker))).toBe(true)
      offerAll(batcher, [9])
      expect(items(yield* Fiber.join(taker))).toEqual([9])
    }))

  it.effect("an interrupted next forgets its wake-up: a later offer goes to the next taker", () =>
    Effect.gen(function*() {
      const batcher = new Batcher<number, void, never>(16, 16)
      const first = yield* Effect.fork(batcher.next)
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(first)
      offerAll(batcher, [1])
      expect(batcher.size).toBe(1)
      expect(items(yield* batcher.next)).toEqual([1])
    }))

  it.effect("onNextOffer wakes a callback-level committer once, inside the next offer; unregistered, it stays silent", () =>
    Effect.gen(function*() {
      const batcher = new Batcher<number, void, never>(16, 16)
      const woken: Array<number> = []
      batcher.onNextOffer(() => woken.push(batcher.size))
      expect(woken).toEqual([])
      offerAll(batcher, [1])
      // synchronously, with the item already pending
      expect(woken).toEqual([1])
      offerAll(batcher, [2])
      expect(woken).toEqual([1])
      expect(items(batcher.takeNow())).toEqual([1, 2])
      const unregister = batcher.onNextOffer(() => woken.push(-1))
      unregister()
      offerAll(batcher, [3])
      expect(woken).toEqual([1])
      // a later next still gets its wake-up
      const taker = yield* Effect.fork(batcher.next)
      expect(items(yield* Fiber.join(taker))).toEqual([3])
    }))

  type Command = { readonly _tag: "Offer"; readonly count: number } | { readonly _tag: "Take" }
  const command: fc.Arbitrary<Command> = fc.oneof(
    fc.integer({ min: 1, max: 8 }).map((count): Command => ({ _tag: "Offer", count })),
    fc.constant<Command>({ _tag: "Take" })
  )

  it.prop(
    "any offers and takes: every item is taken exactly once, in offer order, in batches bounded by capacity and maxBatch",
    [fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 6 }), fc.array(command, { maxLength: 40 })],
    ([capacity, maxBatch, commands]) => {
      const batcher = new Batcher<number, number, never>(capacity, maxBatch)
      const offered: Array<number> = []
      const taken: Array<number> = []
      const settled = new Map<number, Array<number>>()
      const offer = () => {
        const n = offered.length
        offered.push(n)
        settled.set(n, [])
        batcher.offer(n, (exit) => {
          if (Exit.isSuccess(exit)) settled.get(n)!.push(exit.value)
        })
      }
      for (const c of commands) {
        if (c._tag === "Offer") {
          for (let i = 0; i < c.count; i++) offer()
        } else if (batcher.size > 0) {
          const outstanding = offered.length - taken.length
          // with items pending, `next` resumes at once: no fiber or scheduler needed
          const batch = Effect.runSync(batcher.next)
          // what is pending is min(capacity, outstanding); a batch takes up to maxBatch of it
          expect(batch.length).toBe(Math.min(maxBatch, capacity, outstanding))
          for (const w of batch) {
            taken.push(w.item)
            w.resume(Exit.succeed(w.item + 1000))
          }
        }
        expect(batcher.size).toBe(offered.length - taken.length)
      }
      const rest = items(batcher.drain())
      expect([...taken, ...rest]).toEqual(offered)
      for (const n of taken) expect(settled.get(n)).toEqual([n + 1000])
      for (const n of rest) expect(settled.get(n)).toEqual([])
    },
    { fastCheck: { numRuns: 1000 } }
  )
})
