import { describe, expect, it } from "../support/vitest.js"
import { Effect, Fiber, FiberId, FiberRef, FiberRefs, Runtime } from "effect"
import { makeHandlerScheduler } from "../../src/http/internal/scheduler.js"

describe("handler scheduler", () => {
  it.live("runs tasks in order, in a microtask", () =>
    Effect.promise(async () => {
      const scheduler = makeHandlerScheduler()
      const seen: Array<number> = []
      for (let i = 0; i < 5; i++) scheduler.scheduleTask(() => seen.push(i), 0)
      expect(seen).toEqual([])
      await Promise.resolve()
      expect(seen).toEqual([0, 1, 2, 3, 4])
    }))

  it.live("runs tasks scheduled by tasks, and lets the event loop in while it stays busy", () =>
    Effect.promise(async () => {
      const scheduler = makeHandlerScheduler()
      let runs = 0
      let immediateRanAt: number | undefined
      setImmediate(() => (immediateRanAt = runs))
      await new Promise<void>((resolve) => {
        const step = () => {
          runs++
          if (runs < 10_000) scheduler.scheduleTask(step, 0)
          else resolve()
        }
        scheduler.scheduleTask(step, 0)
      })
      expect(runs).toBe(10_000)
      // an endless chain of tasks would otherwise starve timers and I/O
      expect(immediateRanAt).toBeDefined()
      expect(immediateRanAt!).toBeLessThan(10_000)
    }))

  it.live("drives fibers that suspend and resume", () =>
    Effect.gen(function*() {
      const scheduler = makeHandlerScheduler()
      const base = yield* Effect.runtime<never>()
      const runtime = Runtime.make({
        context: base.context,
        runtimeFlags: base.runtimeFlags,
        fiberRefs: FiberRefs.updateAs(base.fiberRefs, {
          fiberId: FiberId.none,
          fiberRef: FiberRef.currentScheduler,
          value: scheduler
        })
      })
      const fibers = Array.from({ length: 100 }, (_, i) =>
        Runtime.runFork(runtime)(
          Effect.gen(function*() {
            yield* Effect.yieldNow()
            yield* Effect.sleep("1 millis")
            return i * 2
          })
        ))
      const results = yield* Effect.forEach(fibers, Fiber.join)
      expect(results).toEqual(Array.from({ length: 100 }, (_, i) => i * 2))
    }))
})
