/**
 * The HTTP discovery client against a real discovery role on loopback (ephemeral ports).
 * Waits are bounded polls (`eventually`), never fixed sleeps before an assertion.
 */
import { describe, expect, it } from "../support/vitest.js"
import { Context, Duration, Effect, Exit, Layer, Option, Redacted, Scope } from "effect"
import type { DiscoveredPeer } from "../../src/discoveryClient/DiscoveryClient.js"
import { DiscoveryClient } from "../../src/discoveryClient/DiscoveryClient.js"
import * as DiscoveryHttp from "../../src/discoveryClient/DiscoveryHttp.js"
import { heartbeatsBeforeRegistering, startDiscovery } from "../discoveryServer/startDiscovery.js"
import { eventually, freePort } from "../support/live.js"

const self = (i: number) => ({ addr: `127.0.0.1:${9100 + i}`, httpAddr: `127.0.0.1:${8100 + i}`, nodeId: `node-${i}` })

/** Builds a client in its own scope, so a test can close it (shutdown) on its own. */
const startClient = (options: DiscoveryHttp.Options) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(DiscoveryHttp.layer(options), scope)
    return { client: Context.get(context, DiscoveryClient), close: Scope.close(scope, Exit.void) }
  })

const listed = (registry: { readonly peers: Effect.Effect<ReadonlyArray<{ readonly addr: string }>> }) =>
  Effect.map(registry.peers, (peers) => peers.map((p) => p.addr))

const addrsOf = (peers: ReadonlyArray<DiscoveredPeer>) => peers.map((p) => p.gossipAddr).sort()

const base = {
  heartbeatInterval: "100 millis",
  refreshInterval: "100 millis",
  clusterKey: Option.none()
} satisfies Partial<DiscoveryHttp.Options>

describe("DiscoveryHttp (live, against a real discovery)", () => {
  it.scopedLive("registers at start, heartbeats keep it listed past the TTL, lists the others", () =>
    Effect.gen(function*() {
      const d = yield* startDiscovery({ peerTtl: Duration.millis(1500) })
      const a = yield* startClient({ ...base, discovery: d.addr, self: self(1) })
      // registered before the layer finished starting
      expect(yield* listed(d.registry)).toEqual([self(1).addr])
      const b = yield* startClient({ ...base, discovery: d.addr, self: self(2) })
      expect(yield* listed(d.registry)).toEqual([self(1).addr, self(2).addr])
      // b read the list at start: a only (not itself)
      expect(yield* b.client.peers).toEqual([{ gossipAddr: self(1).addr, httpAddr: self(1).httpAddr, nodeId: "node-1" }])
      yield* eventually("a sees b", "10 seconds", Effect.map(a.client.peers, (p) => p.length === 1))
      expect(yield* a.client.reachable).toBe(true)
      // more than two TTLs later both are still listed: heartbeats keep them
      yield* Effect.sleep("3500 millis")
      expect(yield* listed(d.registry)).toEqual([self(1).addr, self(2).addr])
      yield* a.close
      yield* b.close
    }))

  it.scopedLive("a heartbeat answered 404 makes the client register again", () =>
    Effect.gen(function*() {
      const d = yield* startDiscovery()
      const a = yield* startClient({ ...base, discovery: d.addr, self: self(1) })
      const mark = d.calls.length
      expect(yield* d.registry.deregister(self(1).addr)).toBe(true)
      expect(yield* listed(d.registry)).toEqual([])
      // next heartbeat: 404 -> register at once
      yield* eventually("re-registered", "10 seconds", Effect.map(listed(d.registry), (l) => l.length === 1))
      // on the first heartbeat after the 404, or the second if that answer came too late
      const heartbeats = heartbeatsBeforeRegistering(d.calls.slice(mark), self(1).addr)
      expect(heartbeats).toBeGreaterThanOrEqual(1)
      expect(heartbeats).toBeLessThanOrEqual(2)
      yield* a.close
    }))

  it.scopedLive("deregisters when its scope closes", () =>
    Effect.gen(function*() {
      const d = yield* startDiscovery()
      const a = yield* startClient({ ...base, discovery: d.addr, self: self(1) })
      const b = yield* startClient({ ...base, discovery: d.addr, self: self(2) })
      yield* a.close
      expect(yield* listed(d.registry)).toEqual([self(2).addr])
      yield* b.close
      expect(yield* listed(d.registry)).toEqual([])
    }))

  it.scopedLive("the gateway mode (no self) only reads the list", () =>
    Effect.gen(function*() {
      const d = yield* startDiscovery()
      const node = yield* startClient({ ...base, discovery: d.addr, self: self(1) })
      const gateway = yield* startClient({ ...base, discovery: d.addr })
      expect(yield* listed(d.registry)).toEqual([self(1).addr])
      expect(addrsOf(yield* gateway.client.peers)).toEqual([self(1).addr])
      yield* gateway.close
      yield* node.close
    }))

  it.scopedLive("with a cluster key: the right key registers, a wrong or missing key is refused (401)", () =>
    Effect.gen(function*() {
      const d = yield* startDiscovery({ clusterKey: Option.some(Redacted.make("k3y")) })
      const good = yield* startClient({
        ...base,
        discovery: d.addr,
        self: self(1),
        clusterKey: Option.some(Redacted.make("k3y"))
      })
      expect(yield* listed(d.registry)).toEqual([self(1).addr])
      expect(yield* good.client.reachable).toBe(true)

      const wrong = yield* startClient({
        ...base,
        discovery: d.addr,
        self: self(2),
        clusterKey: Option.some(Redacted.make("nope")),
        startupTimeout: "300 millis"
      })
      const none = yield* startClient({ ...base, discovery: d.addr, self: self(3), startupTimeout: "300 millis" })
      expect(yield* listed(d.registry)).toEqual([self(1).addr])
      expect(yield* wrong.client.reachable).toBe(false)
      expect(yield* none.client.reachable).toBe(false)
      expect(yield* wrong.client.peers).toEqual([])
      yield* none.close
      yield* wrong.close
      yield* good.close
    }))

  it.scopedLive("starts while discovery is down (bounded), then registers when it comes up", () =>
    Effect.gen(function*() {
      const port = yield* freePort
      const addr = `127.0.0.1:${port}`
      const a = yield* startClient({
        ...base,
        heartbeatInterval: "200 millis",
        discovery: addr,
        self: self(1),
        startupTimeout: "500 millis"
      })
      expect(yield* a.client.peers).toEqual([])
      expect(yield* a.client.reachable).toBe(false)
      const d = yield* startDiscovery({ addr })
      yield* eventually("registered after discovery came up", "10 seconds", Effect.map(listed(d.registry), (l) => l.length === 1))
      yield* eventually("reachable", "10 seconds", a.client.reachable)
      yield* a.close
    }))

  it.scopedLive("3 clients: discovery stops (cached peers kept), restarts empty, each registers again on its first heartbeat", () =>
    Effect.gen(function*() {
      const heartbeat = Duration.millis(500)
      const port = yield* freePort
      const addr = `127.0.0.1:${port}`

      const first = yield* Scope.make()
      const d1 = yield* startDiscovery({ addr }).pipe(Scope.extend(first))
      const clients = yield* Effect.forEach([1, 2, 3], (i) =>
        startClient({ ...base, heartbeatInterval: heartbeat, refreshInterval: "100 millis", discovery: addr, self: self(i) }))
      yield* eventually(
        "everyone sees the two others",
        "10 seconds",
        Effect.map(Effect.forEach(clients, (c) => c.client.peers), (lists) => lists.every((l) => l.length === 2))
      )
      expect(yield* listed(d1.registry)).toEqual([self(1).addr, self(2).addr, self(3).addr])

      // discovery goes away: clients keep serving what they knew
      yield* Scope.close(first, Exit.void)
      yield* eventually(
        "clients notice the outage",
        "10 seconds",
        Effect.map(Effect.forEach(clients, (c) => c.client.reachable), (r) => r.every((x) => !x))
      )
      yield* Effect.sleep("300 millis")
      for (const [i, c] of clients.entries()) {
        expect(addrsOf(yield* c.client.peers)).toEqual([1, 2, 3].filter((j) => j !== i + 1).map((j) => self(j).addr))
      }

      // discovery comes back on the same address, empty
      const d2 = yield* startDiscovery({ addr })
      expect(yield* listed(d2.registry)).toEqual([])
      const restarted = Date.now()
      // bounded wait; "within two heartbeats" is checked by counting heartbeats below
      yield* eventually("all 3 listed again", "15 seconds", Effect.map(listed(d2.registry), (l) => l.length === 3))
      yield* Effect.logInfo(`all 3 listed again ${Date.now() - restarted}ms after the restart (heartbeat ${Duration.format(heartbeat)})`)
      for (const i of [1, 2, 3]) {
        const heartbeats = heartbeatsBeforeRegistering(d2.calls, self(i).addr)
        expect(heartbeats).toBeGreaterThanOrEqual(0)
        expect(heartbeats).toBeLessThanOrEqual(2)
      }
      yield* Effect.forEach(clients, (c) => c.close)
      expect(yield* listed(d2.registry)).toEqual([])
    }))
})
