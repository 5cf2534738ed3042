/**
 * A sample API for the HTTP tests and the benchmark: the shapes the roles use (optional
 * JSON payload, path parameter, query parameters, typed errors with a status, a 204, a text
 * answer, a defect), handlers written once and served by ApiServer and by the stock
 * `HttpApiBuilder.serve()`.
 */
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup, HttpApiSchema } from "@effect/platform"
import type { HttpApiError } from "@effect/platform"
import { Context, Effect, Layer, Ref, Schema } from "effect"
import * as ApiServer from "../../src/http/ApiServer.js"

export const CounterName = Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9._:-]{1,128}$/))

export const By = Schema.Struct({ by: Schema.optional(Schema.Int.pipe(Schema.positive())) })

export const Value = Schema.Struct({ value: Schema.Number, nodeId: Schema.String })

export const Named = Schema.Struct({ name: Schema.String, value: Schema.Number })

export class CounterNotFound extends Schema.TaggedError<CounterNotFound>()(
  "CounterNotFound",
  { error: Schema.Literal("not_found"), message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

export class Conflict extends Schema.TaggedError<Conflict>()(
  "Conflict",
  { error: Schema.Literal("conflict"), message: Schema.String },
  HttpApiSchema.annotations({ status: 409 })
) {}

const nameParam = HttpApiSchema.param("name", CounterName)

export class CountersGroup extends HttpApiGroup.make("counters")
  .add(HttpApiEndpoint.get("counter", "/counter").addSuccess(Value))
  .add(HttpApiEndpoint.post("increment", "/increment").setPayload(By).addSuccess(Value))
  .add(HttpApiEndpoint.get("named")`/counters/${nameParam}`.addSuccess(Named).addError(CounterNotFound))
  .add(HttpApiEndpoint.post("namedIncrement")`/counters/${nameParam}/increment`.setPayload(By).addSuccess(Named))
  .add(HttpApiEndpoint.del("remove")`/counters/${nameParam}`.addError(CounterNotFound))
  .add(
    HttpApiEndpoint.get("search", "/search")
      .setUrlParams(Schema.Struct({ q: Schema.String, tag: Schema.optional(Schema.Array(Schema.String)) }))
      .addSuccess(Schema.Struct({ q: Schema.String, tags: Schema.Array(Schema.String) }))
  )
  .add(HttpApiEndpoint.post("conflict", "/conflict").addSuccess(Value).addError(Conflict))
  .add(HttpApiEndpoint.post("boom", "/boom").addSuccess(Value))
  .add(HttpApiEndpoint.get("text", "/text").addSuccess(HttpApiSchema.Text()))
  .add(HttpApiEndpoint.post("created", "/created").setPayload(Named).addSuccess(Named, { status: 201 }))
  .add(HttpApiEndpoint.post("slow", "/slow").addSuccess(Value))
  .add(
    HttpApiEndpoint.post("echo", "/echo").addSuccess(
      Schema.Struct({ header: Schema.String, method: Schema.String, url: Schema.String, body: Schema.Unknown })
    )
  )
{}

export class SampleApi extends HttpApi.make("sample").add(CountersGroup) {}

/** The state behind the sample handlers; provided to the group layer. */
export class SampleStore extends Context.Tag("test/http/SampleStore")<
  SampleStore,
  {
    readonly counters: Ref.Ref<ReadonlyMap<string, number>>
    /** every payload a handler received, to check that bad input never reaches one */
    readonly seen: Ref.Ref<number>
  }
>() {
  static readonly layer = Layer.effect(
    SampleStore,
    Effect.map(
      Effect.all([Ref.make<ReadonlyMap<string, number>>(new Map()), Ref.make(0)]),
      ([counters, seen]) => ({ counters, seen })
    )
  )
}

const add = (name: string, by: number) =>
  Effect.flatMap(SampleStore, ({ counters, seen }) =>
    Effect.zipRight(
      Ref.update(seen, (n) => n + 1),
      Ref.modify(counters, (m) => {
        const value = (m.get(name) ?? 0) + by
        return [value, new Map(m).set(name, value)] as const
      })
    ))

const read = (name: string) => Effect.flatMap(SampleStore, ({ counters }) => Effect.map(Ref.get(counters), (m) => m.get(name)))

type Handlers = HttpApiBuilder.Handlers.FromGroup<HttpApiError.HttpApiDecodeError, never, typeof CountersGroup>

/** The handlers, written once for both `ApiServer.group` and `HttpApiBuilder.group`. */
export const buildCounters = (handlers: Handlers) =>
  handlers
    .handle("counter", () => Effect.map(read("default"), (value) => ({ value: value ?? 0, nodeId: "n1" })))
    .handle("increment", ({ payload }) => Effect.map(add("default", payload.by ?? 1), (value) => ({ value, nodeId: "n1" })))
    .handle("named", ({ path }) =>
      Effect.flatMap(read(path.name), (value) =>
        value === undefined
          ? Effect.fail(new CounterNotFound({ error: "not_found", message: `no counter ${path.name}` }))
          : Effect.succeed({ name: path.name, value })))
    .handle("namedIncrement", ({ path, payload }) =>
      Effect.map(add(path.name, payload.by ?? 1), (value) => ({ name: path.name, value })))
    .handle("remove", ({ path }) =>
      Effect.flatMap(SampleStore, ({ counters }) =>
        Ref.modify(counters, (m) => [m.has(path.name), m.has(path.name) ? new Map([...m].filter(([k]) => k !== path.name)) : m])
      ).pipe(
        Effect.flatMap((had) =>
          had ? Effect.void : Effect.fail(new CounterNotFound({ error: "not_found", message: `no counter ${path.name}` }))
        )
      ))
    .handle("search", ({ urlParams }) => Effect.succeed({ q: urlParams.q, tags: urlParams.tag ?? [] }))
    .handle("conflict", () => Effect.fail(new Conflict({ error: "conflict", message: "always conflicts" })))
    .handle("boom", () => Effect.die(new Error("boom")))
    .handle("text", () => Effect.succeed("plain text"))
    .handle("created", ({ payload }) => Effect.succeed(payload))
    .handle("slow", () => Effect.as(Effect.sleep("300 millis"), { value: 0, nodeId: "slow" }))
    .handle("echo", ({ request }) =>
      Effect.map(Effect.orDie(request.json), (body) => ({
        header: String(request.headers["x-test"] ?? ""),
        method: request.method,
        url: request.url,
        body
      })))

/** The group for ApiServer's fast path (also works under `HttpApiBuilder.serve()`). */
export const CountersLive = ApiServer.group(SampleApi, "counters", buildCounters)

/** The same handlers as a stock group (ApiServer serves it through the platform route). */
export const CountersStockLive = HttpApiBuilder.group(SampleApi, "counters", buildCounters)
