/**
 * What a client reads when its request is refused: one plain sentence per problem, naming
 * the field and, for `by`, the bound; never Schema's internals (`Expected undefined`,
 * `lessThanOrEqualTo(...)`, type literals). And `Retry-After` on every 503.
 */
import { describe, expect, it } from "../support/vitest.js"
import { Context, Duration, Effect, Layer } from "effect"
import { GatewayConfig } from "../../src/config/GatewayConfig.js"
import * as GatewayRole from "../../src/gateway/GatewayRole.js"
import { ApiServer } from "../../src/http/ApiServer.js"
import { describeIssues } from "../../src/http/internal/codec.js"
import * as FakeNode from "../gateway/FakeNode.js"
import { startDiscovery } from "../discoveryServer/startDiscovery.js"

const gateway = (nodes: ReadonlyArray<string>) =>
  Effect.map(
    Layer.build(GatewayRole.layer.pipe(
      Layer.provide(GatewayConfig.layer({ addr: "127.0.0.1:0", nodes, refreshInterval: Duration.minutes(10) }))
    )),
    (context) => Context.get(context, ApiServer).url
  )

const send = (url: string, method: string, body?: string) =>
  Effect.promise(async () => {
    const res = await fetch(url, {
      method,
      ...(body === undefined ? {} : { body, headers: { "content-type": "application/json" } })
    })
    const text = await res.text()
    return { status: res.status, retryAfter: res.headers.get("retry-after"), body: JSON.parse(text) as { error: string; message: string } }
  })

const schemaInternals = /Expected|actual|readonly|lessThanOrEqualTo|Int\b|\{ |body\.by|path\./

describe("error texts", () => {
  it.scopedLive("bad bodies and names: one plain sentence each", () =>
    Effect.gen(function*() {
      const node = yield* FakeNode.make("a")
      const base = yield* gateway([node.url])
      const cases: ReadonlyArray<readonly [string, string | undefined, string]> = [
        ["/increment", '{"by":0}', "by must be a positive integer"],
        ["/increment", '{"by":-3}', "by must be a positive integer"],
        ["/increment", '{"by":1.5}', "by must be a positive integer"],
        ["/increment", '{"by":"2"}', "by must be a positive integer"],
        ["/increment", '{"by":null}', "by must be a positive integer"],
        ["/increment", '{"by":9007199254740992}', "by must be at most 9007199254740991"],
        ["/decrement", '{"by":1e300}', "by must be at most 9007199254740991"],
        ["/increment", '{"byy":1}', 'unknown field "byy" in the body (expected "by")'],
        ["/increment", "null", "the body must be a JSON object, not null"],
        ["/increment", "[1]", "the body must be a JSON object, not [1]"],
        ["/counters/a%20b/increment", undefined, "a counter name is 1 to 128 characters of [A-Za-z0-9._:-]"]
      ]
      for (const [path, body, message] of cases) {
        const res = yield* send(base + path, "POST", body)
        expect(res.status, `${path} ${body}`).toBe(400)
        expect(res.body, `${path} ${body}`).toEqual({ error: "bad_request", message })
      }
      expect(node.writes()).toBe(0)
    }))

  it.scopedLive("discovery: a missing field named", () =>
    Effect.gen(function*() {
      const discovery = yield* startDiscovery()
      const res = yield* send(`${discovery.url}/register`, "POST", "{}")
      expect(res.status).toBe(400)
      expect(res.body.message).toMatch(/^addr is missing(; httpAddr is missing; nodeId is missing)?$/)
    }))

  it.scopedLive("503 carries Retry-After", () =>
    Effect.gen(function*() {
      const dead = yield* FakeNode.deadAddr
      const base = yield* gateway([`http://${dead}`])
      for (const [method, path] of [["POST", "/increment"], ["GET", "/counter"], ["GET", "/health"]] as const) {
        const res = yield* send(base + path, method)
        expect(res.status, path).toBe(503)
        expect(res.retryAfter, path).toBe("1")
        expect(res.body.message, path).not.toMatch(schemaInternals)
      }
    }))

  it("Schema's default messages become sentences; repeats and the undefined member go", () => {
    expect(describeIssues("body", [
      { path: ["by"], message: "Expected number, actual \"x\"" },
      { path: ["by"], message: "Expected undefined, actual \"x\"" },
      { path: ["by"], message: "Expected number, actual \"x\"" },
      { path: ["name"], message: "is missing" }
    ])).toBe('by must be a number, not "x"; name is missing')
    expect(describeIssues("query", [{ path: ["limit"], message: "limit must be at most 1000" }])).toBe("limit must be at most 1000")
    expect(describeIssues("query", [{ path: ["limit"], message: "too big" }])).toBe("query parameter limit: too big")
    expect(describeIssues("body", [])).toBe("the body is not valid")
  })
})
