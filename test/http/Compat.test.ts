/**
 * The same handlers on three paths: ApiServer's direct path (`ApiServer.group`), ApiServer
 * serving a stock `HttpApiBuilder.group` through the platform route, and the stock
 * `HttpApiBuilder.serve()` on `NodeHttpServer`. Successes and typed errors must be
 * identical everywhere; the contract's own errors (400/404/405/413) identical on both
 * ApiServer paths.
 */
import { HttpApiBuilder, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "../support/vitest.js"
import { Effect, FastCheck, Layer, Ref } from "effect"
import type { Context } from "effect"
import * as Http from "node:http"
import * as ApiServer from "../../src/http/ApiServer.js"
import type { Answer, RequestOptions } from "./client.js"
import { request } from "./client.js"
import { CountersLive, CountersStockLive, SampleApi, SampleStore } from "./SampleApi.js"

const json = { "content-type": "application/json" }

const startApiServer = (groups: Layer.Layer<never, never, SampleStore> | typeof CountersLive) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(
      ApiServer.layer(SampleApi, { addr: "127.0.0.1:0" }).pipe(
        Layer.provide(groups as typeof CountersLive),
        Layer.provideMerge(SampleStore.layer)
      )
    )
    return {
      url: (yield* Effect.provide(ApiServer.ApiServer, context)).url,
      store: yield* Effect.provide(SampleStore, context)
    }
  })

const startStock = Effect.gen(function*() {
  const context: Context.Context<HttpServer.HttpServer> = yield* Layer.build(
    HttpApiBuilder.serve().pipe(
      Layer.provide(HttpApiBuilder.api(SampleApi)),
      Layer.provide(CountersLive),
      Layer.provide(SampleStore.layer),
      Layer.provideMerge(NodeHttpServer.layer(() => Http.createServer(), { port: 0, host: "127.0.0.1" }))
    )
  )
  const server = yield* Effect.provide(HttpServer.HttpServer, context)
  const address = server.address
  if (address._tag !== "TcpAddress") return yield* Effect.die("expected a TCP address")
  return { url: `http://127.0.0.1:${address.port}` }
})

type Call = readonly [path: string, options?: RequestOptions]

/** Successes and typed errors, with state carried from call to call. */
const script: ReadonlyArray<Call> = [
  ["/counter"],
  ["/increment", { method: "POST", body: `{"by":2}`, headers: json }],
  ["/increment", { method: "POST", body: `{"by":3}` }],
  ["/counter"],
  ["/counters/x/increment", { method: "POST", body: `{"by":4}`, headers: json }],
  ["/counters/x"],
  ["/counters/missing"],
  ["/conflict", { method: "POST" }],
  ["/search?q=a&tag=b"],
  ["/search?q=a&tag=b&tag=c"],
  ["/text"],
  ["/created", { method: "POST", body: `{"name":"a","value":3}`, headers: json }],
  ["/counters/x", { method: "DELETE" }],
  ["/counters/x", { method: "DELETE" }],
  ["/echo?x=1", { method: "POST", body: `{"a":1}`, headers: { ...json, "x-test": "t" } }]
]

/** The contract's answers to bad requests, which only ApiServer gives. */
const contractScript: ReadonlyArray<Call> = [
  ["/increment", { method: "POST" }],
  ["/increment", { method: "POST", body: "", headers: json }],
  ["/increment", { method: "POST", body: `{"by":`, headers: json }],
  ["/increment", { method: "POST", body: `{"by":-1}`, headers: json }],
  ["/increment", { method: "POST", body: `by=2`, headers: { "content-type": "application/x-www-form-urlencoded" } }],
  ["/increment", { method: "POST", body: `{"by":5}`, headers: { "content-type": "application/x-www-form-urlencoded" } }],
  ["/increment", { method: "POST", body: `{"by":2}`, headers: { "content-type": "text/plain" } }],
  ["/created", { method: "POST" }],
  ["/counters/bad!/increment", { method: "POST" }],
  ["/search"],
  ["/nope"],
  ["/counter", { method: "POST" }],
  ["/increment", { method: "POST", body: "x".repeat(70_000), headers: json }]
]

const summary = (a: Answer) => ({
  status: a.status,
  contentType: a.headers["content-type"],
  body: a.json ?? a.text,
  allow: a.headers["allow"]
})

const run = (url: string, calls: ReadonlyArray<Call>) =>
  Effect.forEach(calls, ([path, options]) => Effect.map(request(`${url}${path}`, options), summary))

describe("ApiServer compatibility", () => {
  it.scopedLive("the stock HttpApiBuilder.serve() answers exactly like ApiServer for the same handlers", () =>
    Effect.gen(function*() {
      const fast = yield* startApiServer(CountersLive)
      const stock = yield* startStock
      const expected = yield* run(fast.url, script)
      const actual = yield* run(stock.url, script)
      // the stock server adds no allow header; compare status, type and body
      expect(actual.map(({ allow: _, ...rest }) => rest)).toEqual(expected.map(({ allow: _, ...rest }) => rest))
      expect(expected.map((a) => a.status)).toEqual([200, 200, 200, 200, 200, 200, 404, 409, 200, 200, 200, 201, 204, 404, 200])
    }))

  it.scopedLive("a stock HttpApiBuilder.group served by ApiServer answers like ApiServer.group", () =>
    Effect.gen(function*() {
      const fast = yield* startApiServer(CountersLive)
      const compat = yield* startApiServer(CountersStockLive)
      const calls = [...script, ...contractScript]
      const expected = yield* run(fast.url, calls)
      const actual = yield* run(compat.url, calls)
      expect(actual.slice(0, script.length)).toEqual(expected.slice(0, script.length))
      // bad requests: same status and code; the platform's decode error does not say which
      // part of the request failed, so messages may differ in their prefix
      const codes = (answers: typeof expected) =>
        answers.slice(script.length).map((a) => [a.status, (a.body as { error?: string }).error, a.allow])
      expect(codes(actual)).toEqual(codes(expected))
      // and the JSON bodies labelled as form or text counted what they said, on both paths
      const fastCounter = yield* request(`${fast.url}/counter`)
      const compatCounter = yield* request(`${compat.url}/counter`)
      expect(compatCounter.json).toEqual(fastCounter.json)
      expect((fastCounter.json as { value: number }).value).toBe(2 + 3 + 1 + 1 + 5 + 2)
      expect(expected.slice(script.length).map((a) => a.status)).toEqual([
        200,
        200,
        400,
        400,
        400,
        200,
        200,
        400,
        400,
        400,
        404,
        405,
        413
      ])
    }))

  it.scopedLive("garbage bodies on the platform route never give 5xx nor reach a handler", () =>
    Effect.gen(function*() {
      const { store, url } = yield* startApiServer(CountersStockLive)
      const agent = new Http.Agent({ keepAlive: true, maxSockets: 4 })
      yield* Effect.addFinalizer(() => Effect.sync(() => agent.destroy()))
      const bodies = FastCheck.oneof(
        FastCheck.string({ maxLength: 64 }),
        FastCheck.json({ maxDepth: 3 }),
        FastCheck.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify({ by: v }))
      )
      const contentTypes = FastCheck.constantFrom("application/json", "text/plain", "application/octet-stream")
      yield* Effect.promise(() =>
        FastCheck.assert(
          FastCheck.asyncProperty(bodies, contentTypes, async (body, contentType) => {
            const before = await Effect.runPromise(Ref.get(store.seen))
            const answer = await Effect.runPromise(
              request(`${url}/increment`, { method: "POST", body, headers: { "content-type": contentType }, agent })
            )
            const after = await Effect.runPromise(Ref.get(store.seen))
            if (answer.status !== 200 && answer.status !== 400) return false
            return answer.status === 200 ? after === before + 1 : after === before
          }),
          { numRuns: 300 }
        )
      )
    }), 60_000)
})
