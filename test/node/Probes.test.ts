/**
 * `/livez` and `/readyz` on every role, in each state: a node whose WAL recovery is held
 * (live, not ready, counter routes 503), then ready; a gateway with no node (live, not
 * ready) and with one; discovery (ready once it listens). Real sockets on loopback.
 */
import { describe, expect, it } from "../support/vitest.js"
import { Deferred, Duration, Effect, Exit, Fiber, Layer, Option, Redacted, Scope } from "effect"
import { DiscoveryConfig } from "../../src/config/DiscoveryConfig.js"
import { GatewayConfig } from "../../src/config/GatewayConfig.js"
import { NodeConfig } from "../../src/config/NodeConfig.js"
import * as DiscoveryRole from "../../src/discoveryServer/DiscoveryRole.js"
import * as GatewayRole from "../../src/gateway/GatewayRole.js"
import { ApiServer } from "../../src/http/ApiServer.js"
import * as NodeRole from "../../src/node/NodeRole.js"
import * as DataDirMemory from "../../src/storage/DataDirMemory.js"
import * as MemoryDisk from "../../src/storage/MemoryDisk.js"
import * as WalMemory from "../../src/storage/WalMemory.js"
import { eventually, freePort } from "../support/live.js"

interface Reply {
  readonly status: number
  readonly body: Record<string, unknown>
}

const get = (url: string) =>
  Effect.promise(async (): Promise<Reply | undefined> => {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) })
      return { status: res.status, body: (await res.json()) as Record<string, unknown> }
    } catch {
      return undefined
    }
  })

describe("node probes", () => {
  it.scopedLive("a node recovering its WAL is live but not ready, and serves once recovered", () =>
    Effect.gen(function*() {
      const gossip = `127.0.0.1:${yield* freePort}`
      const http = `127.0.0.1:${yield* freePort}`
      const recovery = yield* Deferred.make<void>()
      // the WAL is built (recovered) only once the test lets it
      const heldWal = WalMemory.layer(MemoryDisk.make()).pipe(
        Layer.provideMerge(Layer.effectDiscard(Deferred.await(recovery)))
      )
      const storage = Layer.merge(heldWal, DataDirMemory.layer(MemoryDisk.make()))
      const scope = yield* Scope.make()
      yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
      const starting = yield* Layer.buildWithScope(
        NodeRole.layerOver(storage).pipe(
          Layer.provide(NodeConfig.layer({ addr: gossip, httpAddr: http, heartbeatInterval: Duration.millis(200) }))
        ),
        scope
      ).pipe(Effect.fork)

      yield* eventually("the node's HTTP API to answer /livez", "10 seconds", Effect.map(get(`http://${http}/livez`), (r) => r?.status === 200))
      expect(yield* get(`http://${http}/livez`)).toEqual({ status: 200, body: { status: "ok" } })
      const notReady = yield* get(`http://${http}/readyz`)
      expect(notReady?.status).toBe(503)
      expect(notReady?.body).toMatchObject({
        error: "not_ready",
        checks: { wal: false, gossip: false, http: true, running: true }
      })
      expect(String(notReady?.body["message"])).toContain("write-ahead log is being recovered")
      const counter = yield* get(`http://${http}/counter`)
      expect(counter?.status).toBe(503)
      expect(counter?.body).toMatchObject({ error: "unavailable" })
      expect((yield* get(`http://${http}/health`))?.status).toBe(503)

      yield* Deferred.succeed(recovery, undefined)
      const context = yield* Fiber.join(starting)
      expect(context.unsafeMap.has(ApiServer.key)).toBe(true)
      const ready = yield* get(`http://${http}/readyz`)
      expect(ready).toEqual({
        status: 200,
        body: { status: "ready", checks: { wal: true, gossip: true, http: true, running: true } }
      })
      expect((yield* get(`http://${http}/counter`))?.body).toMatchObject({ value: 0 })

      // stopping: HTTP closes first, so nothing answers any more
      yield* Scope.close(scope, Exit.void)
      expect(yield* get(`http://${http}/livez`)).toBeUndefined()
    }), { timeout: 30_000 })
})

describe("gateway probes", () => {
  it.scopedLive("no node: live, not ready; a healthy node: ready", () =>
    Effect.gen(function*() {
      const nodeGossip = `127.0.0.1:${yield* freePort}`
      const nodeHttp = `127.0.0.1:${yield* freePort}`
      const gatewayAddr = `127.0.0.1:${yield* freePort}`
      const gateway = yield* Layer.build(
        GatewayRole.layer.pipe(
          Layer.provide(GatewayConfig.layer({
            addr: gatewayAddr,
            nodes: [`http://${nodeHttp}`],
            refreshInterval: Duration.millis(200)
          }))
        )
      )
      void gateway
      expect(yield* get(`http://${gatewayAddr}/livez`)).toEqual({ status: 200, body: { status: "ok" } })
      const notReady = yield* get(`http://${gatewayAddr}/readyz`)
      expect(notReady?.status).toBe(503)
      expect(notReady?.body).toMatchObject({ error: "not_ready", checks: { healthyNode: false } })
      expect(String(notReady?.body["message"])).toMatch(/none of 1 nodes is healthy/)

      yield* Layer.build(
        NodeRole.layerOver(Layer.merge(WalMemory.layer(MemoryDisk.make()), DataDirMemory.layer(MemoryDisk.make()))).pipe(
          Layer.provide(NodeConfig.layer({ addr: nodeGossip, httpAddr: nodeHttp }))
        )
      )
      yield* eventually(
        "the gateway to become ready",
        "10 seconds",
        Effect.map(get(`http://${gatewayAddr}/readyz`), (r) => r?.status === 200)
      )
      expect((yield* get(`http://${gatewayAddr}/readyz`))?.body).toEqual({ status: "ready", checks: { healthyNode: true } })
    }), { timeout: 30_000 })

  it.scopedLive("a gateway that knows no node says so", () =>
    Effect.gen(function*() {
      const gatewayAddr = `127.0.0.1:${yield* freePort}`
      const discovery = `127.0.0.1:${yield* freePort}` // nothing listens there
      yield* Layer.build(
        GatewayRole.layer.pipe(
          Layer.provide(GatewayConfig.layer({ addr: gatewayAddr, discovery: Option.some(discovery) }))
        )
      )
      expect((yield* get(`http://${gatewayAddr}/livez`))?.status).toBe(200)
      const notReady = yield* get(`http://${gatewayAddr}/readyz`)
      expect(notReady?.status).toBe(503)
      expect(notReady?.body["message"]).toBe("the gateway knows no node yet")
    }), { timeout: 30_000 })
})

describe("discovery probes", () => {
  it.scopedLive("live and ready once it listens, without the cluster key", () =>
    Effect.gen(function*() {
      const addr = `127.0.0.1:${yield* freePort}`
      yield* Layer.build(
        DiscoveryRole.layer.pipe(
          Layer.provide(DiscoveryConfig.layer({ addr, clusterKey: Option.some(Redacted.make("k")) }))
        )
      )
      expect(yield* get(`http://${addr}/livez`)).toEqual({ status: 200, body: { status: "ok" } })
      expect(yield* get(`http://${addr}/readyz`)).toEqual({ status: 200, body: { status: "ready", checks: { http: true } } })
      expect((yield* get(`http://${addr}/peers`))?.status).toBe(401)
    }), { timeout: 30_000 })
})
