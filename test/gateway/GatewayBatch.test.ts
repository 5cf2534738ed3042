/**
 * The gateway's batched writes over real sockets: concurrent writes reach a node in fewer
 * requests than writes, each counted once; in front of a real node (memory disk) through
 * its `POST /batch`; a node that dies with a batch makes every write of it 503.
 */
import { describe, expect, it } from "../support/vitest.js"
import { Context, Duration, Effect, Layer, Logger } from "effect"
import { GatewayConfig } from "../../src/config/GatewayConfig.js"
import { NodeConfig } from "../../src/config/NodeConfig.js"
import * as GatewayRole from "../../src/gateway/GatewayRole.js"
import { ApiServer } from "../../src/http/ApiServer.js"
import * as NodeHttp from "../../src/node/NodeHttp.js"
import * as NodeRole from "../../src/node/NodeRole.js"
import * as MemoryDisk from "../../src/storage/MemoryDisk.js"
import { MemoryNetwork } from "../../src/transport/MemoryNetwork.js"
import * as FakeNode from "./FakeNode.js"

const silent = Logger.replace(Logger.defaultLogger, Logger.none)

const gateway = (nodes: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(
      GatewayRole.layer.pipe(
        Layer.provide(GatewayConfig.layer({ addr: "127.0.0.1:0", nodes, refreshInterval: Duration.minutes(10) }))
      )
    )
    return Context.get(context, ApiServer).url
  })

/** A real node (memory disk, in-process gossip network) serving its HTTP API on a free port. */
const realNode = Effect.gen(function*() {
  const ctx = yield* Layer.build(
    NodeHttp.serve("127.0.0.1:0").pipe(
      Layer.provideMerge(NodeRole.layerMemory(MemoryDisk.make())),
      Layer.provideMerge(NodeConfig.layer({ addr: "127.0.0.1:9101", httpAddr: "127.0.0.1:8111" })),
      Layer.provide(MemoryNetwork.layer())
    )
  )
  return Context.get(ctx, ApiServer).url
})

const post = (url: string, body?: string) =>
  Effect.promise(async () => {
    const res = await fetch(url, { method: "POST", ...(body === undefined ? {} : { body, headers: { "content-type": "application/json" } }) })
    return { status: res.status, body: (await res.json()) as Record<string, unknown> }
  })

const live = <A, E>(name: string, f: Effect.Effect<A, E, import("effect").Scope.Scope>) =>
  it.live(name, () => Effect.scoped(f).pipe(Effect.provide(silent), Effect.timeout("20 seconds")))

describe("gateway: batched writes", () => {
  live("concurrent writes reach the node in fewer requests than writes, each counted once", Effect.gen(function*() {
    const a = yield* FakeNode.make("a")
    const base = yield* gateway([a.url])
    const replies = yield* Effect.all(
      Array.from({ length: 60 }, (_, i) => post(`${base}/increment`, JSON.stringify({ by: 1 + (i % 3) }))),
      { concurrency: "unbounded" }
    )
    expect(replies.every((r) => r.status === 200)).toBe(true)
    const total = Array.from({ length: 60 }, (_, i) => 1 + (i % 3)).reduce((x, y) => x + y, 0)
    expect(a.value()).toBe(total)
    expect(a.writes()).toBe(60)
    expect(a.batches()).toBeLessThan(60)
    // every reply carries the value its own write produced: all different, the last the total
    const values = replies.map((r) => r.body["value"] as number)
    expect(new Set(values).size).toBe(60)
    expect(Math.max(...values)).toBe(total)
  }))

  live("in front of a real node: default and named counters, every write durable and counted once", Effect.gen(function*() {
    const node = yield* realNode
    const base = yield* gateway([node])
    const paths = ["/increment", "/decrement", "/counters/likes/increment", "/counters/likes/decrement", "/counters/views/increment"]
    const replies = yield* Effect.all(
      Array.from({ length: 50 }, (_, i) => post(`${base}${paths[i % paths.length]}`, JSON.stringify({ by: 2 }))),
      { concurrency: "unbounded" }
    )
    expect(replies.map((r) => r.status)).toEqual(replies.map(() => 200))
    for (const [i, r] of replies.entries()) {
      const path = paths[i % paths.length]!
      if (path.startsWith("/counters/")) expect(r.body["name"]).toBe(path.split("/")[2])
      expect(typeof r.body["nodeId"]).toBe("string")
    }
    const read = (path: string) => Effect.promise(() => fetch(`${node}${path}`).then((r) => r.json() as Promise<{ value: number }>))
    expect((yield* read("/counter")).value).toBe(0)
    expect((yield* read("/counters/likes")).value).toBe(0)
    expect((yield* read("/counters/views")).value).toBe(20)
    // an overflow is the writer's own 400; the writes beside it are counted
    const overflow = yield* post(`${base}/counters/views/increment`, JSON.stringify({ by: Number.MAX_SAFE_INTEGER }))
    expect(overflow).toMatchObject({ status: 400, body: { error: "bad_request" } })
    expect((yield* read("/counters/views")).value).toBe(20)
  }))

  live("in front of a node without /batch (an older version): its writes go one by one, each counted once", Effect.gen(function*() {
    const old = yield* FakeNode.make("old")
    old.setMode("no-batch")
    const base = yield* gateway([old.url])
    const replies = yield* Effect.all(
      Array.from({ length: 20 }, (_, i) => post(`${base}${i % 2 === 0 ? "/increment" : "/counters/x/increment"}`)),
      { concurrency: "unbounded" }
    )
    expect(replies.map((r) => r.status)).toEqual(replies.map(() => 200))
    expect(old.writes()).toBe(20)
    expect(old.batches()).toBe(0)
    expect(old.value()).toBe(10)
  }))

  live("a node that dies holding a batch: every write of it is 503 indeterminate, none retried elsewhere", Effect.gen(function*() {
    const [a, b] = yield* Effect.all([FakeNode.make("a"), FakeNode.make("b")])
    const base = yield* gateway([a!.url, b!.url])
    a!.setMode("die-on-write")
    b!.setMode("die-on-write")
    const replies = yield* Effect.all(Array.from({ length: 20 }, () => post(`${base}/increment`)), { concurrency: "unbounded" })
    // the first batches die with their node; the nodes are then out of rotation, so later
    // writes are refused before they are sent
    for (const r of replies) expect(r.status).toBe(503)
    const errors = replies.map((r) => r.body["error"])
    expect(errors.every((e) => e === "indeterminate" || e === "no_healthy_node")).toBe(true)
    const indeterminate = errors.filter((e) => e === "indeterminate").length
    expect(indeterminate).toBeGreaterThan(0)
    // each indeterminate write reached exactly one node, once; the others none
    expect(a!.writes() + b!.writes()).toBe(indeterminate)
  }))
})
