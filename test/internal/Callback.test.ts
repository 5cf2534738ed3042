import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiSchema } from "@effect/platform"
import { describe, expect, it } from "../support/vitest.js"
import { Cause, Effect, Exit, Fiber, Layer, Schema } from "effect"
import * as ApiServer from "../../src/http/ApiServer.js"
import * as Callback from "../../src/internal/Callback.js"
import { request } from "../http/client.js"

class Refused extends Schema.TaggedError<Refused>()(
  "Refused",
  { error: Schema.Literal("refused"), message: Schema.String },
  HttpApiSchema.annotations({ status: 409 })
) {}

const By = Schema.Struct({ by: Schema.Int.pipe(Schema.positive()) })
const Value = Schema.Struct({ value: Schema.Int })

class CallbackGroup extends HttpApiGroup.make("cb")
  .add(HttpApiEndpoint.post("later", "/later").setPayload(By).addSuccess(Value).addError(Refused))
  .add(HttpApiEndpoint.post("now", "/now").setPayload(By).addSuccess(Value))
  .add(HttpApiEndpoint.post("throws", "/throws").addSuccess(Value))
  .add(HttpApiEndpoint.post("twice", "/twice").addSuccess(Value))
  .add(HttpApiEndpoint.post("badValue", "/bad-value").addSuccess(Value))
{}
class CallbackApi extends HttpApi.make("callback").add(CallbackGroup) {}

/** A counter whose writes complete later (like a group commit), refusing `by` over 100. */
const makeCounter = () => {
  let value = 0
  let calls = 0
  const add = (by: number, resume: (exit: Exit.Exit<{ value: number }, Refused>) => void) => {
    calls++
    setImmediate(() =>
      resume(
        by > 100
          ? Exit.fail(new Refused({ error: "refused", message: `${by} is too much` }))
          : Exit.succeed({ value: (value += by) })
      )
    )
  }
  return { add, calls: () => calls }
}

const counter = makeCounter()

const handlers = ApiServer.group(CallbackApi, "cb", (h) =>
  h
    .handle("later", ({ payload }) => Callback.make((resume) => counter.add(payload.by, resume)))
    .handle("now", ({ payload }) => Callback.make((resume) => resume(Exit.succeed({ value: payload.by }))))
    .handle("throws", () =>
      Callback.make<{ value: number }, never>(() => {
        throw new Error("register failed")
      }))
    .handle("twice", () =>
      Callback.make((resume) => {
        resume(Exit.succeed({ value: 1 }))
        resume(Exit.succeed({ value: 2 }))
      }))
    .handle("badValue", () => Callback.make((resume) => resume(Exit.succeed({ value: 1.5 })))))

const start = Effect.gen(function*() {
  const context = yield* Layer.build(ApiServer.layer(CallbackApi, { addr: "127.0.0.1:0" }).pipe(Layer.provide(handlers)))
  return (yield* Effect.provide(ApiServer.ApiServer, context)).url
})

const post = (url: string, body?: string) =>
  request(url, { method: "POST", ...(body === undefined ? {} : { body, headers: { "content-type": "application/json" } }) })

describe("Callback handlers on ApiServer", () => {
  it.scopedLive("answer with what the register function calls back, now or later", () =>
    Effect.gen(function*() {
      const url = yield* start
      const first = yield* post(`${url}/later`, `{"by":2}`)
      expect(first.status).toBe(200)
      expect(first.json).toEqual({ value: 2 })
      const many = yield* Effect.all(Array.from({ length: 20 }, () => post(`${url}/later`, `{"by":1}`)), {
        concurrency: "unbounded"
      })
      expect(many.map((r) => r.status)).toEqual(Array(20).fill(200))
      expect(many.map((r) => (r.json as { value: number }).value).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 20 }, (_, i) => i + 3)
      )
      const now = yield* post(`${url}/now`, `{"by":7}`)
      expect(now.status).toBe(200)
      expect(now.json).toEqual({ value: 7 })
    }))

  it.scopedLive("answer a typed failure with its status, and a bad body 400 without calling the handler", () =>
    Effect.gen(function*() {
      const url = yield* start
      const before = counter.calls()
      const refused = yield* post(`${url}/later`, `{"by":101}`)
      expect(refused.status).toBe(409)
      expect(refused.json).toEqual({ _tag: "Refused", error: "refused", message: "101 is too much" })
      const bad = yield* post(`${url}/later`, `{"by":-1}`)
      expect(bad.status).toBe(400)
      expect(counter.calls()).toBe(before + 1)
    }))

  it.scopedLive("answer 500 when the register function throws or calls back a value the schema refuses", () =>
    Effect.gen(function*() {
      const url = yield* start
      const thrown = yield* post(`${url}/throws`)
      expect(thrown.status).toBe(500)
      expect(thrown.json).toMatchObject({ error: "internal_error" })
      const badValue = yield* post(`${url}/bad-value`)
      expect(badValue.status).toBe(500)
      // the server is still fine
      const ok = yield* post(`${url}/now`, `{"by":1}`)
      expect(ok.status).toBe(200)
    }))

  it.scopedLive("use the first result when a register function calls back twice", () =>
    Effect.gen(function*() {
      const url = yield* start
      const twice = yield* post(`${url}/twice`)
      expect(twice.status).toBe(200)
      expect(twice.json).toEqual({ value: 1 })
    }))

  it.effect("are ordinary Effects elsewhere", () =>
    Effect.gen(function*() {
      const ok = Callback.make<number, string>((resume) => resume(Exit.succeed(41)))
      expect(Callback.isCallback(ok)).toBe(true)
      expect(yield* Effect.map(ok, (n) => n + 1)).toBe(42)
      const failed = yield* Effect.exit(Callback.make<number, string>((resume) => resume(Exit.fail("no"))))
      expect(failed).toStrictEqual(Exit.fail("no"))
      expect(Callback.isCallback(Effect.succeed(1))).toBe(false)
      expect(Callback.isCallback(Effect.async<number>((resume) => resume(Effect.succeed(1))))).toBe(false)
    }))
})

describe("Callback.sync", () => {
  it.effect("evaluates each time it runs, not when it is built", () =>
    Effect.gen(function*() {
      let n = 0
      const read = Callback.sync(() => ++n)
      expect(n).toBe(0)
      expect(yield* read).toBe(1)
      expect(yield* read).toBe(2)
      expect(Callback.isCallback(read)).toBe(true)
    }))
})

describe("Callback.mapExit", () => {
  it("keeps a Callback a Callback: Callback.run answers through the original's register function", () => {
    const resumes: Array<(exit: Exit.Exit<number, string>) => void> = []
    const later = Callback.make<number, string>((resume) => void resumes.push(resume))
    const mapped = Callback.mapExit(later, Exit.mapBoth({ onFailure: (e) => `refused: ${e}`, onSuccess: (n) => n * 2 }))
    expect(Callback.isCallback(mapped)).toBe(true)
    const exits: Array<Exit.Exit<number, string>> = []
    Callback.run(mapped, (exit) => void exits.push(exit))
    Callback.run(mapped, (exit) => void exits.push(exit))
    expect(resumes).toHaveLength(2)
    expect(exits).toEqual([])
    resumes[0]!(Exit.succeed(21))
    resumes[1]!(Exit.fail("no"))
    expect(exits).toEqual([Exit.succeed(42), Exit.fail("refused: no")])
  })

  it.effect("gives an ordinary Effect for an ordinary Effect, with the same result", () =>
    Effect.gen(function*() {
      const double = Exit.map((n: number) => n * 2)
      const plain = Callback.mapExit(Effect.succeed(21), double)
      expect(Callback.isCallback(plain)).toBe(false)
      expect(yield* plain).toBe(42)
      const fromCallback = Callback.mapExit(Callback.sync(() => 21), double)
      expect(Callback.isCallback(fromCallback)).toBe(true)
      expect(yield* fromCallback).toBe(42)
    }))

  it.effect("a throwing mapping is a defect on both paths", () =>
    Effect.gen(function*() {
      const boom = (): Exit.Exit<number> => {
        throw new Error("boom")
      }
      const exits: Array<Exit.Exit<number>> = []
      Callback.run(Callback.mapExit(Callback.sync(() => 1), boom), (exit) => void exits.push(exit))
      expect(exits).toHaveLength(1)
      expect(Exit.isFailure(exits[0]!) && Cause.isDie(exits[0].cause)).toBe(true)
      const yielded = yield* Effect.exit(Callback.mapExit(Effect.succeed(1), boom))
      expect(Exit.isFailure(yielded) && Cause.isDie(yielded.cause)).toBe(true)
    }))
})

describe("Callback.makeInterruptible", () => {
  it.effect("interrupting the fiber that yields it calls the canceler; Callback.run never does", () =>
    Effect.gen(function*() {
      let started = 0
      let cancelled = 0
      const pending = Callback.makeInterruptible<number, never>(() => {
        started++
        return () => void cancelled++
      })
      expect(Callback.isCallback(pending)).toBe(true)
      const fiber = yield* Effect.fork(pending)
      yield* Effect.yieldNow()
      expect(started).toBe(1)
      yield* Fiber.interrupt(fiber)
      expect(cancelled).toBe(1)
      Callback.run(pending, () => {})
      expect(started).toBe(2)
      expect(cancelled).toBe(1)
      // a completed one resolves as usual on both paths
      const done = Callback.makeInterruptible<number, never>((resume) => {
        resume(Exit.succeed(5))
        return () => void cancelled++
      })
      expect(yield* done).toBe(5)
      const exits: Array<Exit.Exit<number>> = []
      Callback.run(done, (exit) => void exits.push(exit))
      expect(exits).toEqual([Exit.succeed(5)])
      expect(cancelled).toBe(1)
    }))
})
