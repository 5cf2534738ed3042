import { describe, expect, it } from "../support/vitest.js"
import { Context, Duration, Effect, Layer } from "effect"
import { GatewayConfig } from "../../src/config/GatewayConfig.js"
import * as GatewayRole from "../../src/gateway/GatewayRole.js"
import { NodePool } from "../../src/gateway/NodePool.js"
import { ApiServer } from "../../src/http/ApiServer.js"
import * as FakeNode from "./FakeNode.js"

/** Starts a gateway on a free port over the given node URLs; returns its base URL. */
const gateway = (nodes: ReadonlyArray<string>, refreshInterval = Duration.minutes(10)) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(
      GatewayRole.layer.pipe(Layer.provide(GatewayConfig.layer({ addr: "127.0.0.1:0", nodes, refreshInterval })))
    )
    const server = Context.get(context, ApiServer)
    const pool = Context.get(context, NodePool)
    return { base: server.url, pool }
  })

const call = (url: string, init?: RequestInit) =>
  Effect.promise(async () => {
    const res = await fetch(url, init)
    const text = await res.text()
    return { status: res.status, body: text === "" ? undefined : (JSON.parse(text) as Record<string, unknown>) }
  })

const post = (url: string, body?: string) =>
  call(url, { method: "POST", ...(body === undefined ? {} : { body, headers: { "content-type": "application/json" } }) })

describe("gateway", () => {
  it.scopedLive("spreads writes round-robin over the healthy nodes", () =>
    Effect.gen(function*() {
      const nodes = yield* Effect.all([FakeNode.make("a"), FakeNode.make("b"), FakeNode.make("c")])
      const { base } = yield* gateway(nodes.map((n) => n.url))
      for (let i = 0; i < 30; i++) {
        const res = yield* post(`${base}/increment`)
        expect(res.status).toBe(200)
      }
      expect(nodes.map((n) => n.writes())).toEqual([10, 10, 10])
      // keep-alive: the health checks and the 10 writes of each node shared a connection or two
      for (const node of nodes) expect(node.connections()).toBeLessThanOrEqual(2)
      const read = yield* call(`${base}/counter`)
      expect(read.status).toBe(200)
      expect(read.body).toMatchObject({ value: 10 })
      expect(typeof read.body?.["node"]).toBe("string")
      expect(typeof read.body?.["nodeId"]).toBe("string")
    }))

  it.scopedLive("fails a write over to another node when the connection is refused", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Effect.all([FakeNode.make("a"), FakeNode.make("b")])
      const { base, pool } = yield* gateway([a!.url, b!.url])
      expect(yield* pool.healthyCount).toBe(2)
      yield* b!.close // the pool still believes b is healthy: the refresh interval is long
      for (let i = 0; i < 4; i++) {
        const res = yield* post(`${base}/increment`, JSON.stringify({ by: 2 }))
        expect(res.status).toBe(200)
        expect(res.body).toMatchObject({ node: a!.addr })
      }
      expect(a!.value()).toBe(8)
      expect(b!.writes()).toBe(0)
      const views = yield* pool.nodes
      expect(views.find((n) => n.httpAddr === b!.addr)?.healthy).toBe(false)
    }))

  it.scopedLive("answers 503 indeterminate, without retrying, when a node accepts a write and dies", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Effect.all([FakeNode.make("a"), FakeNode.make("b")])
      const { base } = yield* gateway([a!.url, b!.url])
      a!.setMode("die-on-write")
      b!.setMode("die-on-write")
      const res = yield* post(`${base}/increment`)
      expect(res.status).toBe(503)
      expect(res.body).toMatchObject({ error: "indeterminate" })
      // exactly one node saw the write: the gateway did not try the other one
      expect(a!.writes() + b!.writes()).toBe(1)
      const named = yield* post(`${base}/counters/likes/increment`)
      expect(named.status).toBe(503)
      expect(named.body).toMatchObject({ error: "indeterminate" })
      expect(a!.writes() + b!.writes()).toBe(2)
    }))

  it.scopedLive("/health is 503 and writes are 503 when no node is healthy", () =>
    Effect.gen(function*() {
      const dead = yield* FakeNode.deadAddr
      const sick = yield* FakeNode.make("sick")
      sick.setMode("unhealthy")
      const { base } = yield* gateway([`http://${dead}`, sick.url])
      const health = yield* call(`${base}/health`)
      expect(health.status).toBe(503)
      expect(health.body).toMatchObject({ error: "no_healthy_node" })
      const write = yield* post(`${base}/increment`)
      expect(write.status).toBe(503)
      expect(write.body).toMatchObject({ error: "no_healthy_node" })
      expect(sick.writes()).toBe(0)
      const nodes = yield* call(`${base}/nodes`)
      expect(nodes.status).toBe(200)
      const list = nodes.body?.["nodes"] as ReadonlyArray<{ httpAddr: string; healthy: boolean }>
      expect(list.map((n) => [n.httpAddr, n.healthy]).sort()).toEqual([[dead, false], [sick.addr, false]].sort())
    }))

  it.scopedLive("/health is 200 with the number of healthy nodes; /nodes lists every node", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Effect.all([FakeNode.make("node-a"), FakeNode.make("node-b")])
      const dead = yield* FakeNode.deadAddr
      const { base } = yield* gateway([a!.url, b!.url, `http://${dead}`])
      const health = yield* call(`${base}/health`)
      expect(health.status).toBe(200)
      expect(health.body).toMatchObject({ status: "ok", healthyNodes: 2 })
      yield* post(`${base}/increment`, JSON.stringify({ by: 5 }))
      const nodes = yield* call(`${base}/nodes`)
      const list = nodes.body?.["nodes"] as ReadonlyArray<Record<string, unknown>>
      expect(list).toHaveLength(3)
      const byAddr = new Map(list.map((n) => [n["httpAddr"], n]))
      expect(byAddr.get(a!.addr)).toMatchObject({ id: "node-a", healthy: true })
      expect(byAddr.get(dead)).toMatchObject({ healthy: false })
      expect(list.every((n) => typeof n["gossipAddr"] === "string")).toBe(true)
    }))

  it.scopedLive("rejects bad input with 400 before it reaches a node", () =>
    Effect.gen(function*() {
      const a = yield* FakeNode.make("a")
      const { base } = yield* gateway([a.url])
      for (const body of ['{"by":0}', '{"by":-1}', '{"by":1.5}', '{"by":"2"}', "{bad", '"x"', '{"by":9007199254740992}']) {
        const res = yield* post(`${base}/increment`, body)
        expect(res.status, body).toBe(400)
        expect(res.body).toMatchObject({ error: "bad_request" })
      }
      const badName = yield* post(`${base}/counters/${"x".repeat(129)}/increment`)
      expect(badName.status).toBe(400)
      const badChars = yield* call(`${base}/counters/a%20b`)
      expect(badChars.status).toBe(400)
      expect(a.writes()).toBe(0)
      // a body labelled as a form or text (curl -d) is read as JSON: refused when it is not
      // `{"by": N}`, never counted as an empty one
      for (const type of ["application/x-www-form-urlencoded", "text/plain"]) {
        const res = yield* call(`${base}/increment`, { method: "POST", body: "by=5", headers: { "content-type": type } })
        expect(res.status, type).toBe(400)
      }
      const extra = yield* post(`${base}/increment`, '{"by":2,"extra":1}')
      expect(extra.status).toBe(400)
      expect(a.writes()).toBe(0)
      // no body and an empty object count as by: 1; a literal null is refused
      expect((yield* post(`${base}/decrement`, "null")).status).toBe(400)
      for (const body of [undefined, "{}"]) expect((yield* post(`${base}/decrement`, body)).status).toBe(200)
      expect(a.value()).toBe(-2)
      expect((yield* call(`${base}/nope`)).status).toBe(404)
      expect((yield* call(`${base}/increment`)).status).toBe(405)
    }))

  it.scopedLive("forwards named counters", () =>
    Effect.gen(function*() {
      const a = yield* FakeNode.make("a")
      const { base } = yield* gateway([a.url])
      const inc = yield* post(`${base}/counters/page.views:home/increment`, JSON.stringify({ by: 7 }))
      expect(inc.status).toBe(200)
      expect(inc.body).toMatchObject({ name: "page.views:home", value: 7, node: a.addr })
      yield* post(`${base}/counters/page.views:home/decrement`)
      const read = yield* call(`${base}/counters/page.views:home`)
      expect(read.body).toMatchObject({ name: "page.views:home", value: 6 })
      const list = yield* call(`${base}/counters`)
      expect(list.body).toMatchObject({ counters: [{ name: "page.views:home", value: 6 }] })
    }))

  it.scopedLive("forwards a paged listing's query to a node and relays next; refuses a bad query itself", () =>
    Effect.gen(function*() {
      const a = yield* FakeNode.make("a")
      const { base } = yield* gateway([a.url])
      for (const name of ["p:3", "p:1", "q:1", "p:2", "p:4"]) yield* post(`${base}/counters/${name}/increment`)
      const first = yield* call(`${base}/counters?limit=2&prefix=p:`)
      expect(first).toEqual({
        status: 200,
        body: { counters: [{ name: "p:1", value: 1 }, { name: "p:2", value: 1 }], next: "p:2", node: a.addr }
      })
      const second = yield* call(`${base}/counters?limit=2&prefix=p:&after=p:2`)
      expect(second.body).toEqual({ counters: [{ name: "p:3", value: 1 }, { name: "p:4", value: 1 }], node: a.addr })
      const all = yield* call(`${base}/counters`)
      expect((all.body?.["counters"] as Array<unknown>).length).toBe(5)
      expect(all.body).not.toHaveProperty("next")
      expect(a.listings()).toEqual(["/counters?limit=2&prefix=p%3A", "/counters?limit=2&after=p%3A2&prefix=p%3A", "/counters"])
      const bad = [
        "limit=0", "limit=1001", "limit=abc", "limit=1.5", "limit=-1", "limit=", "limit=1&limit=2",
        "after=", "after=a%20b", `after=${"x".repeat(129)}`, "prefix=a*", `prefix=${"x".repeat(129)}`
      ]
      for (const query of bad) {
        const res = yield* call(`${base}/counters?${query}`)
        expect({ query, status: res.status, error: res.body?.["error"] }).toEqual({ query, status: 400, error: "bad_request" })
        expect(res.body?.["message"]).toMatch(/^(limit|after|prefix) must be /)
      }
      expect(a.listings()).toHaveLength(3)
      const openapi = yield* call(`${base}/openapi.json`)
      const paths = openapi.body?.["paths"] as Record<string, { get: { parameters: Array<{ name: string; in: string }> } }>
      expect(paths["/counters"]!.get.parameters.map((p) => `${p.in}:${p.name}`))
        .toEqual(expect.arrayContaining(["query:limit", "query:after", "query:prefix"]))
    }))

  it.scopedLive("serves the dashboard, OpenAPI and metrics", () =>
    Effect.gen(function*() {
      const a = yield* FakeNode.make("a")
      const { base } = yield* gateway([a.url])
      const page = yield* Effect.promise(() => fetch(`${base}/`).then(async (r) => ({ status: r.status, type: r.headers.get("content-type"), text: await r.text() })))
      expect(page.status).toBe(200)
      expect(page.type).toContain("text/html")
      expect(page.text).toContain('id="cluster-value"')
      expect(page.text).not.toMatch(/<script[^>]+src=|<link[^>]+href="http/)
      const openapi = yield* call(`${base}/openapi.json`)
      expect(openapi.status).toBe(200)
      expect(Object.keys(openapi.body?.["paths"] as object)).toEqual(expect.arrayContaining(["/increment", "/nodes", "/health"]))
      yield* post(`${base}/increment`)
      const metrics = yield* Effect.promise(() => fetch(`${base}/metrics`).then((r) => r.text()))
      expect(metrics).toContain("dcounter_gateway_forwarded_total")
    }))
})
