/**
 * The node's HTTP API over a real socket (ephemeral port), on a memory node: every contract
 * route answers with the documented shape; bad input answers the documented error and
 * changes nothing.
 */
import { describe, expect, it } from "../support/vitest.js"
import { Context, Duration, Effect, Layer } from "effect"
import { NodeConfig } from "../../src/config/NodeConfig.js"
import * as ApiServer from "../../src/http/ApiServer.js"
import * as NodeHttp from "../../src/node/NodeHttp.js"
import * as NodeRole from "../../src/node/NodeRole.js"
import * as MemoryDisk from "../../src/storage/MemoryDisk.js"
import { MemoryNetwork } from "../../src/transport/MemoryNetwork.js"

interface Reply {
  readonly status: number
  readonly body: any
  readonly text: string
}

/** A node on a memory disk, with a second node as its peer, and its HTTP server on port 0. */
const startNode = Effect.gen(function*() {
  const disk = MemoryDisk.make()
  const config = {
    addr: "127.0.0.1:9001",
    httpAddr: "127.0.0.1:8011",
    peers: ["127.0.0.1:9002"],
    heartbeatInterval: Duration.seconds(1)
  }
  const network = Layer.succeed(MemoryNetwork, yield* MemoryNetwork)
  const peerCtx = yield* Layer.build(
    NodeRole.layerMemory(MemoryDisk.make()).pipe(
      Layer.provide(Layer.merge(NodeConfig.layer({ addr: "127.0.0.1:9002", httpAddr: "127.0.0.1:8012" }), network))
    )
  )
  void peerCtx
  const ctx = yield* Layer.build(
    // served on an ephemeral port (the advertised --http-addr is not used by this test)
    NodeHttp.serve("127.0.0.1:0").pipe(
      Layer.provideMerge(NodeRole.layerMemory(disk)),
      Layer.provideMerge(Layer.merge(NodeConfig.layer(config), network))
    )
  )
  const base = Context.get(ctx, ApiServer.ApiServer).url
  const call = (method: string, path: string, body?: string, headers: Record<string, string> = {}) =>
    Effect.promise(async (): Promise<Reply> => {
      const res = await fetch(base + path, {
        method,
        ...(body !== undefined ? { body, headers: { "content-type": "application/json", ...headers } } : { headers })
      })
      const text = await res.text()
      let parsed: unknown = undefined
      try {
        parsed = JSON.parse(text)
      } catch {
        parsed = undefined
      }
      return { status: res.status, body: parsed, text }
    })
  return { call, disk }
}).pipe(Effect.provide(MemoryNetwork.layer()))

const live = <A, E>(name: string, f: Effect.Effect<A, E, import("effect").Scope.Scope>) =>
  it.live(name, () => Effect.scoped(f).pipe(Effect.timeout("20 seconds")))

describe("node HTTP API", () => {
  live("every contract route answers with the documented shape", Effect.gen(function*() {
    const { call } = yield* startNode
    const first = yield* call("GET", "/counter")
    expect(first.status).toBe(200)
    expect(first.body).toEqual({ value: 0, nodeId: expect.any(String) })
    const nodeId = first.body.nodeId as string
    expect(yield* call("POST", "/increment")).toMatchObject({ status: 200, body: { value: 1, nodeId } })
    expect(yield* call("POST", "/increment", JSON.stringify({ by: 5 }))).toMatchObject({ status: 200, body: { value: 6, nodeId } })
    expect(yield* call("POST", "/decrement", JSON.stringify({ by: 2 }))).toMatchObject({ status: 200, body: { value: 4, nodeId } })
    expect(yield* call("POST", "/decrement", "{}")).toMatchObject({ status: 200, body: { value: 3, nodeId } })
    expect((yield* call("GET", "/counter")).body).toEqual({ value: 3, nodeId })
    expect((yield* call("GET", "/local-counter")).body).toEqual({ value: 3, nodeId })
    expect((yield* call("GET", "/state")).body).toEqual({
      nodeId,
      increments: { [nodeId]: 6 },
      decrements: { [nodeId]: 3 },
      value: 3
    })
    expect(yield* call("POST", "/counters/likes.v2:x-y_z/increment", JSON.stringify({ by: 3 }))).toMatchObject({
      status: 200,
      body: { name: "likes.v2:x-y_z", value: 3, nodeId }
    })
    expect((yield* call("POST", "/counters/likes.v2:x-y_z/decrement")).body).toEqual({ name: "likes.v2:x-y_z", value: 2, nodeId })
    expect((yield* call("GET", "/counters/likes.v2:x-y_z")).body).toEqual({ name: "likes.v2:x-y_z", value: 2, nodeId })
    const long = "n".repeat(128)
    expect((yield* call("POST", `/counters/${long}/increment`)).body).toEqual({ name: long, value: 1, nodeId })
    expect((yield* call("POST", `/counters/${long}/decrement`)).body).toEqual({ name: long, value: 0, nodeId })
    expect((yield* call("GET", "/counters/never-written")).body).toEqual({ name: "never-written", value: 0, nodeId })
    expect((yield* call("GET", "/counters")).body).toEqual({
      counters: [{ name: "default", value: 3 }, { name: "likes.v2:x-y_z", value: 2 }, { name: long, value: 0 }]
    })
    const peers = yield* call("GET", "/peers")
    expect(peers.status).toBe(200)
    expect(peers.body.peers).toHaveLength(1)
    expect(peers.body.peers[0]).toMatchObject({
      addr: "127.0.0.1:9002",
      status: expect.stringMatching(/^(alive|suspect|dead)$/),
      fails: expect.any(Number),
      lastSeen: expect.stringMatching(/^\d{4}-\d\d-\d\dT/)
    })
    const health = yield* call("GET", "/health")
    expect(health.status).toBe(200)
    expect(health.body).toMatchObject({ status: "ok", role: "node", nodeId, counters: 3 })
    const openapi = yield* call("GET", "/openapi.json")
    expect(openapi.status).toBe(200)
    expect(Object.keys(openapi.body.paths)).toEqual(expect.arrayContaining([
      "/counter", "/increment", "/decrement", "/local-counter", "/state", "/counters", "/counters/{name}",
      "/counters/{name}/increment", "/counters/{name}/decrement", "/peers", "/health"
    ]))
    const metrics = yield* call("GET", "/metrics")
    expect(metrics.status).toBe(200)
    expect(metrics.text).toContain("dcounter_writes_total")
    expect(metrics.text).toContain("dcounter_peers")
    const docs = yield* call("GET", "/docs")
    expect(docs.status).toBe(200)
    expect(docs.text).toContain("<html")
  }))

  live("bad input answers the documented error and changes nothing", Effect.gen(function*() {
    const { call, disk } = yield* startNode
    yield* call("POST", "/increment", JSON.stringify({ by: 10 }))
    yield* call("POST", "/counters/k/increment", JSON.stringify({ by: 4 }))
    const snapshot = Effect.all([call("GET", "/counters"), call("GET", "/state")])
    const before = yield* snapshot
    const recordsBefore = disk.records
    const badBodies = [
      JSON.stringify({ by: 0 }),
      JSON.stringify({ by: -1 }),
      JSON.stringify({ by: 1.5 }),
      JSON.stringify({ by: "2" }),
      JSON.stringify({ by: null }),
      JSON.stringify({ by: 2 ** 53 }),
      JSON.stringify({ by: 1e400 }),
      JSON.stringify({ By: 5 }),
      "null",
      JSON.stringify({ by: 2, extra: 1 }),
      "{",
      "[1]",
      "\"x\"",
      "not json"
    ]
    for (const body of badBodies) {
      for (const path of ["/increment", "/decrement", "/counters/k/increment", "/counters/k/decrement"]) {
        const reply = yield* call("POST", path, body)
        expect({ body, path, status: reply.status }).toEqual({ body, path, status: 400 })
        expect(reply.body).toEqual({ error: "bad_request", message: expect.any(String) })
      }
    }
    for (const name of ["bad%20name", "a%2Fb", "x".repeat(129), "%C3%A9", "a*b"]) {
      const inc = yield* call("POST", `/counters/${name}/increment`)
      expect({ name, status: inc.status, error: inc.body?.error }).toEqual({ name, status: 400, error: "bad_request" })
      const get = yield* call("GET", `/counters/${name}`)
      expect({ name, status: get.status }).toEqual({ name, status: 400 })
    }
    const notFound = yield* call("GET", "/nope")
    expect(notFound).toMatchObject({ status: 404, body: { error: "not_found", message: expect.any(String) } })
    const wrongMethod = yield* call("GET", "/increment")
    expect(wrongMethod).toMatchObject({ status: 405, body: { error: "method_not_allowed", message: expect.any(String) } })
    expect((yield* call("DELETE", "/counters/k")).status).toBe(405)
    expect((yield* call("PUT", "/counter")).status).toBe(405)
    const big = JSON.stringify({ by: 1, pad: "x".repeat(70 * 1024) })
    const tooLarge = yield* call("POST", "/increment", big)
    expect(tooLarge).toMatchObject({ status: 413, body: { error: "payload_too_large", message: expect.any(String) } })
    // overflow: a valid request the counter cannot take
    const overflow = yield* call("POST", "/counters/k/increment", JSON.stringify({ by: Number.MAX_SAFE_INTEGER }))
    expect(overflow).toMatchObject({ status: 400, body: { error: "overflow", message: expect.any(String) } })
    expect(yield* snapshot).toEqual(before)
    expect(disk.records).toBe(recordsBefore)
  }))

  live("GET /counters pages by name with limit, after and prefix; a bad query is 400 and changes nothing", Effect.gen(function*() {
    const { call, disk } = yield* startNode
    const names = Array.from({ length: 25 }, (_, i) => `c:${String(i).padStart(2, "0")}`)
    for (const name of [...names].reverse()) yield* call("POST", `/counters/${name}/increment`)
    yield* call("POST", "/counters/other/increment", JSON.stringify({ by: 4 }))
    // every page, following next: all counters once, sorted
    const seen: Array<{ name: string; value: number }> = []
    let after: string | undefined = undefined
    for (let i = 0; i < 10; i++) {
      const reply: Reply = yield* call("GET", `/counters?limit=7${after === undefined ? "" : `&after=${after}`}`)
      expect(reply.status).toBe(200)
      expect(reply.body.counters.length).toBeLessThanOrEqual(7)
      seen.push(...reply.body.counters)
      if (reply.body.next === undefined) break
      expect(reply.body.next).toBe(reply.body.counters[6].name)
      after = reply.body.next
    }
    expect(seen).toEqual([...names.map((name) => ({ name, value: 1 })), { name: "other", value: 4 }])
    expect((yield* call("GET", "/counters?prefix=c:1&limit=3")).body).toEqual({
      counters: [{ name: "c:10", value: 1 }, { name: "c:11", value: 1 }, { name: "c:12", value: 1 }],
      next: "c:12"
    })
    expect((yield* call("GET", "/counters?prefix=c:1&after=c:17")).body).toEqual({
      counters: [{ name: "c:18", value: 1 }, { name: "c:19", value: 1 }]
    })
    expect((yield* call("GET", "/counters?after=zzz")).body).toEqual({ counters: [] })
    expect((yield* call("GET", "/counters?prefix=")).body.counters).toHaveLength(26)
    expect((yield* call("GET", "/counters?limit=1000")).body.counters).toHaveLength(26)
    // the default limit is 100: a counter created after the first page is listed in order
    for (let i = 0; i < 100; i++) yield* call("POST", `/counters/d:${String(i).padStart(3, "0")}/increment`)
    const first = yield* call("GET", "/counters")
    expect(first.body.counters).toHaveLength(100)
    // 25 c:* names, then d:000 to d:074
    expect(first.body.next).toBe("d:074")
    expect((yield* call("GET", "/counters?after=d:074")).body.counters.map((c: { name: string }) => c.name))
      .toEqual([...Array.from({ length: 25 }, (_, i) => `d:0${i + 75}`), "other"])

    const before = yield* call("GET", "/counters?limit=1000")
    const recordsBefore = disk.records
    const bad: ReadonlyArray<readonly [string, string]> = [
      ["limit=0", "limit"], ["limit=1001", "limit"], ["limit=abc", "limit"], ["limit=1.5", "limit"],
      ["limit=-3", "limit"], ["limit=", "limit"], ["limit=1e2", "limit"], ["limit=2&limit=3", "limit"],
      ["after=", "after"], ["after=a%20b", "after"], [`after=${"x".repeat(129)}`, "after"], ["after=%C3%A9", "after"],
      ["prefix=a*", "prefix"], [`prefix=${"y".repeat(129)}`, "prefix"], ["prefix=a&prefix=b", "prefix"]
    ]
    for (const [query, param] of bad) {
      const reply = yield* call("GET", `/counters?${query}`)
      expect({ query, status: reply.status }).toEqual({ query, status: 400 })
      expect(reply.body).toEqual({ error: "bad_request", message: expect.stringContaining(`${param} must be `) })
      // one plain sentence: no stack of schema errors
      expect(reply.body.message).not.toContain(";")
    }
    expect(yield* call("GET", "/counters?limit=1000")).toEqual(before)
    expect(disk.records).toBe(recordsBefore)

    const openapi = yield* call("GET", "/openapi.json")
    const params = (openapi.body.paths["/counters"].get.parameters as Array<{ name: string; in: string }>)
      .map((p) => `${p.in}:${p.name}`)
    expect(params).toEqual(expect.arrayContaining(["query:limit", "query:after", "query:prefix"]))
  }))

  live("a JSON body labelled as a form or text (curl -d) is read as JSON, never miscounted", Effect.gen(function*() {
    const { call } = yield* startNode
    const form = { "content-type": "application/x-www-form-urlencoded" }
    expect((yield* call("POST", "/increment", JSON.stringify({ by: 5 }), form)).body.value).toBe(5)
    expect((yield* call("POST", "/increment", JSON.stringify({ by: 2 }), { "content-type": "text/plain" })).body.value).toBe(7)
    const zero = yield* call("POST", "/increment", JSON.stringify({ by: 0 }), form)
    expect(zero).toMatchObject({ status: 400, body: { error: "bad_request" } })
    const notJson = yield* call("POST", "/increment", "by=5", form)
    expect(notJson).toMatchObject({ status: 400, body: { error: "bad_request" } })
    expect((yield* call("GET", "/counter")).body.value).toBe(7)
  }))

  live("a failing disk answers 503 and counts nothing; the node recovers with the disk", Effect.gen(function*() {
    const { call, disk } = yield* startNode
    yield* call("POST", "/increment", JSON.stringify({ by: 2 }))
    disk.failWith("NoSpace")
    const failed = yield* call("POST", "/increment")
    expect(failed).toMatchObject({ status: 503, body: { error: "unavailable", message: expect.stringContaining("durable") } })
    expect((yield* call("POST", "/counters/x/decrement")).status).toBe(503)
    expect((yield* call("GET", "/counter")).body.value).toBe(2)
    expect((yield* call("GET", "/counters/x")).body.value).toBe(0)
    disk.failWith(undefined)
    expect((yield* call("POST", "/increment")).body.value).toBe(3)
  }))
})

describe("node HTTP API: POST /batch (gateway -> node)", () => {
  const batch = (writes: ReadonlyArray<unknown>) => JSON.stringify({ writes })

  live("applies every write in order and answers one result per write", Effect.gen(function*() {
    const { call } = yield* startNode
    const nodeId = ((yield* call("GET", "/counter")).body as { nodeId: string }).nodeId
    const reply = yield* call("POST", "/batch", batch([
      { name: "default", kind: "inc", by: 5 },
      { name: "likes", kind: "inc", by: 2 },
      { name: "default", kind: "dec", by: 1 },
      { name: "likes", kind: "inc", by: 3 },
      { name: "n".repeat(128), kind: "dec", by: 4 }
    ]))
    expect(reply.status).toBe(200)
    expect(reply.body).toEqual({
      nodeId,
      results: [{ value: 5 }, { value: 2 }, { value: 4 }, { value: 5 }, { value: -4 }]
    })
    expect((yield* call("GET", "/counter")).body.value).toBe(4)
    expect((yield* call("GET", "/counters/likes")).body.value).toBe(5)
    // the single endpoints see the same counters
    expect((yield* call("POST", "/counters/likes/increment")).body.value).toBe(6)
    const openapi = yield* call("GET", "/openapi.json")
    expect(Object.keys(openapi.body.paths)).toContain("/batch")
    expect(Object.keys(openapi.body.paths.batch ?? openapi.body.paths["/batch"])).toEqual(["post"])
  }))

  live("a malformed batch is refused whole (400) and changes nothing", Effect.gen(function*() {
    const { call, disk } = yield* startNode
    yield* call("POST", "/batch", batch([{ name: "default", kind: "inc", by: 10 }, { name: "k", kind: "inc", by: 4 }]))
    const snapshot = Effect.all([call("GET", "/counters"), call("GET", "/state")])
    const before = yield* snapshot
    const recordsBefore = disk.records
    const good = { name: "k", kind: "inc", by: 1 }
    const full = Array.from({ length: 256 }, () => good)
    const badBodies = [
      batch([]),
      batch([...full, good]),
      batch([good, { name: "k", kind: "inc" }]),
      batch([good, { name: "k", kind: "inc", by: 0 }]),
      batch([good, { name: "k", kind: "inc", by: -1 }]),
      batch([good, { name: "k", kind: "inc", by: 1.5 }]),
      batch([good, { name: "k", kind: "inc", by: "1" }]),
      batch([good, { name: "k", kind: "inc", by: 2 ** 53 }]),
      batch([good, { name: "k", kind: "add", by: 1 }]),
      batch([good, { name: "a/b", kind: "inc", by: 1 }]),
      batch([good, { name: "", kind: "inc", by: 1 }]),
      batch([good, { name: "x".repeat(129), kind: "inc", by: 1 }]),
      batch([good, { name: "k", kind: "inc", by: 1, extra: true }]),
      batch([good, null]),
      batch([good, [1]]),
      JSON.stringify({ writes: [good], extra: 1 }),
      JSON.stringify({ writes: good }),
      JSON.stringify([good]),
      JSON.stringify({}),
      "null",
      "{",
      "not json",
      ""
    ]
    for (const body of badBodies) {
      const reply = yield* call("POST", "/batch", body)
      expect({ body: body.slice(0, 80), status: reply.status }).toEqual({ body: body.slice(0, 80), status: 400 })
      expect(reply.body).toEqual({ error: "bad_request", message: expect.any(String) })
    }
    expect((yield* call("GET", "/batch")).status).toBe(405)
    expect(yield* snapshot).toEqual(before)
    expect(disk.records).toBe(recordsBefore)
    // a full batch of valid writes (256, the longest names) fits the body limit
    const longest = Array.from({ length: 256 }, (_, i) => ({ name: `${i}`.padStart(128, "n"), kind: "dec", by: 2 ** 53 - 1 }))
    const accepted = yield* call("POST", "/batch", batch(longest))
    expect(accepted.status).toBe(200)
    expect(accepted.body.results).toHaveLength(256)
  }))

  live("a write that would overflow fails alone; the others of its batch are counted", Effect.gen(function*() {
    const { call, disk } = yield* startNode
    const max = Number.MAX_SAFE_INTEGER
    yield* call("POST", "/counters/k/increment", JSON.stringify({ by: max - 10 }))
    const recordsBefore = disk.records
    const reply = yield* call("POST", "/batch", batch([
      { name: "k", kind: "inc", by: 4 },
      { name: "k", kind: "inc", by: 7 },
      { name: "other", kind: "inc", by: 1 },
      { name: "k", kind: "inc", by: 6 },
      { name: "k", kind: "dec", by: 1 }
    ]))
    expect(reply.status).toBe(200)
    expect(reply.body.results).toEqual([
      { value: max - 6 },
      { error: "overflow", message: expect.any(String) },
      { value: 1 },
      { value: max },
      { value: max - 1 }
    ])
    expect((yield* call("GET", "/counters/k")).body.value).toBe(max - 1)
    expect(disk.records - recordsBefore).toBe(4)
  }))

  live("a failing disk fails every write of the batch (503 each, in its result) and counts nothing", Effect.gen(function*() {
    const { call, disk } = yield* startNode
    yield* call("POST", "/increment", JSON.stringify({ by: 2 }))
    disk.failWith("NoSpace")
    const reply = yield* call("POST", "/batch", batch([{ name: "default", kind: "inc", by: 1 }, { name: "x", kind: "dec", by: 1 }]))
    expect(reply.status).toBe(200)
    expect(reply.body.results).toEqual([
      { error: "unavailable", message: expect.stringContaining("durable") },
      { error: "unavailable", message: expect.stringContaining("durable") }
    ])
    disk.failWith(undefined)
    expect((yield* call("GET", "/counter")).body.value).toBe(2)
    expect((yield* call("GET", "/counters/x")).body.value).toBe(0)
  }))
})
