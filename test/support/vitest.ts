/**
 * `@effect/vitest` with quiet live tests: `it.live` and `it.scopedLive` run their effect
 * under `TestLogger.quiet`, the way `it.effect` already runs without Effect's default
 * logger, so a passing test prints no product log line. Test files import `describe`,
 * `expect`, `it`, ... from here rather than from `@effect/vitest`; everything else is
 * re-exported unchanged.
 */
import { it as base, type TestOptions, type Vitest } from "@effect/vitest"
import { Effect, type Scope } from "effect"
import * as TestLogger from "./TestLogger.js"

export * from "@effect/vitest"

const quietly = <A, E, R, Args extends Array<unknown>>(
  self: Vitest.TestFunction<A, E, R, Args>
): Vitest.TestFunction<A, E, R, Args> =>
(...args) => Effect.provide(self(...args), TestLogger.quiet)

const quietTest = <R>(test: Vitest.Test<R>): Vitest.Test<R> => (name, self, timeout) =>
  test(name, quietly(self), timeout)

const quietTester = <R>(tester: Vitest.Tester<R>): Vitest.Tester<R> =>
  Object.assign(quietTest(tester), {
    skip: quietTest(tester.skip),
    skipIf: (condition: unknown) => quietTest(tester.skipIf(condition)),
    runIf: (condition: unknown) => quietTest(tester.runIf(condition)),
    only: quietTest(tester.only),
    fails: quietTest(tester.fails),
    each: <T>(cases: ReadonlyArray<T>) =>
    <A, E>(name: string, self: Vitest.TestFunction<A, E, R, Array<T>>, timeout?: number | TestOptions) =>
      tester.each(cases)(name, quietly(self), timeout),
    prop: ((name, arbitraries, self, timeout) =>
      tester.prop(name, arbitraries, quietly(self), timeout)) satisfies Vitest.Tester<R>["prop"]
  })

export const live: Vitest.Tester<never> = quietTester(base.live)
export const scopedLive: Vitest.Tester<Scope.Scope> = quietTester(base.scopedLive)

/** `@effect/vitest`'s `it`, its live testers replaced; every other member is its own. */
export const it: Vitest.Methods = new Proxy(base, {
  get: (target, key) => key === "live" ? live : key === "scopedLive" ? scopedLive : Reflect.get(target, key)
})
