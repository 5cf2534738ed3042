/**
 * Layer-swapped cluster tests: real node layers on the in-process MemoryNetwork and simulated
 * disks, timed by the TestClock (nothing sleeps for real).
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Layer, Random, TestClock } from "effect"
import type { NodeConfigShape } from "../../src/config/NodeConfig.js"
import type { CounterName } from "../../src/crdt/CounterName.js"
import { DiscoveryClient, type DiscoveredPeer } from "../../src/discoveryClient/DiscoveryClient.js"
import * as MemoryCluster from "../../src/node/MemoryCluster.js"
import { MemoryNetwork } from "../../src/transport/MemoryNetwork.js"

const c = (s: string) => s as CounterName
const A = c("default")

const config: Partial<NodeConfigShape> = {
  syncInterval: Duration.seconds(2),
  fullSyncInterval: Duration.seconds(20),
  maxSyncPeers: 2,
  heartbeatInterval: Duration.seconds(1),
  maxFails: 3,
  failureTimeout: Duration.seconds(10),
  eagerPush: true,
  pushWindow: Duration.millis(2)
}

const cluster = (options: Partial<MemoryCluster.MemoryClusterOptions> = {}) =>
  MemoryCluster.make({ size: 5, config, ...options })

const run = <A, E>(self: Effect.Effect<A, E, MemoryNetwork | import("effect").Scope.Scope>, seed = 42) =>
  self.pipe(Effect.provide(MemoryNetwork.layer({ seed })), Effect.withRandom(Random.make(seed)))

const advance = (ms: number) => TestClock.adjust(Duration.millis(ms))

/** Advances the clock in steps until the cluster converged; fails after `limitMs`. */
const untilConverged = (cl: MemoryCluster.MemoryCluster, limitMs: number, stepMs = 10) =>
  Effect.gen(function*() {
    for (let t = 0; t <= limitMs; t += stepMs) {
      if (yield* cl.converged) return t
      yield* advance(stepMs)
    }
    return yield* Effect.dieMessage(`not converged after ${limitMs} ms: ${JSON.stringify(yield* cl.values(A))}`)
  })

describe("cluster (memory network, TestClock)", () => {
  it.scoped("5 nodes converge on a write within one push window, without waiting for anti-entropy", () =>
    run(Effect.gen(function*() {
      const cl = yield* cluster()
      yield* advance(1)
      expect(yield* cl.increment(0, A, 3)).toBe(3)
      expect(yield* cl.increment(3, c("other"), 2)).toBe(2)
      yield* advance(3)
      expect(yield* cl.values(A)).toEqual([3, 3, 3, 3, 3])
      expect(yield* cl.values(c("other"))).toEqual([2, 2, 2, 2, 2])
      expect(yield* cl.converged).toBe(true)
      const pushes = yield* cl.node(0).gossip.stats
      expect(pushes.pushesSent.eager).toBe(4)
    })))

  it.scoped("with eager push off (the seed's behaviour) the same write waits for anti-entropy", () =>
    run(Effect.gen(function*() {
      const cl = yield* cluster({ config: { ...config, eagerPush: false } })
      yield* advance(1)
      yield* cl.increment(0, A, 3)
      yield* advance(3)
      expect((yield* cl.values(A)).filter((v) => v === 3).length).toBe(1)
      const t = yield* untilConverged(cl, 20_000, 100)
      expect(t).toBeGreaterThan(1000)
      expect(yield* cl.values(A)).toEqual([3, 3, 3, 3, 3])
    })))

  it.scoped("concurrent increments and decrements on every node are all counted exactly once", () =>
    run(Effect.gen(function*() {
      const cl = yield* cluster()
      yield* advance(1)
      const writes = Array.from({ length: 5 }, (_, i) =>
        Array.from({ length: 60 }, (_, k) => (k % 3 === 0 ? cl.decrement(i, A, 2) : cl.increment(i, A, 1 + (k % 4)))))
      yield* Effect.all(writes.flat(), { concurrency: "unbounded", discard: true })
      let expected = 0
      for (let k = 0; k < 60; k++) expected += k % 3 === 0 ? -2 : 1 + (k % 4)
      yield* untilConverged(cl, 100, 2)
      expect(yield* cl.values(A)).toEqual(Array(5).fill(expected * 5))
    })))

  it.scoped("a 2/3 partition with writes on both sides heals to exactly the expected value", () =>
    run(Effect.gen(function*() {
      const cl = yield* cluster()
      yield* advance(1)
      yield* cl.increment(0, A, 100)
      yield* advance(5)
      const [n0, n1, n2, n3, n4] = cl.nodes.map((n) => n.addr)
      yield* cl.network.partition([[n0!, n1!], [n2!, n3!, n4!]])
      // writes on both sides, several counters, while the partition lasts 30 s (peers go dead)
      yield* cl.increment(0, A, 5)
      yield* cl.decrement(1, A, 2)
      yield* cl.increment(2, A, 7)
      yield* cl.increment(3, A, 1)
      yield* cl.decrement(4, A, 3)
      yield* cl.increment(1, c("likes"), 4)
      yield* cl.increment(4, c("likes"), 6)
      yield* advance(5)
      expect(yield* cl.values(A)).toEqual([103, 103, 105, 105, 105])
      yield* advance(30_000)
      const seen = yield* cl.node(0).peers.peers
      expect(seen.filter((p) => p.status === "dead").map((p) => p.addr).sort()).toEqual([n2, n3, n4])
      expect(yield* cl.node(0).peers.alive).toEqual([n1])
      // more writes during the partition
      yield* cl.increment(2, A, 10)
      yield* cl.network.heal
      // the peers come back at the next heartbeat (<= 1 s) and are synced with at once
      expect(yield* untilConverged(cl, 3_000)).toBeLessThanOrEqual(1_010)
      expect(yield* cl.values(A)).toEqual(Array(5).fill(100 + 5 - 2 + 7 + 1 - 3 + 10))
      expect(yield* cl.values(c("likes"))).toEqual(Array(5).fill(10))
      expect((yield* cl.node(0).peers.alive).length).toBe(4)
    })))

  it.scoped("a short partition (no peer declared dead) is repaired by anti-entropy both ways", () =>
    run(Effect.gen(function*() {
      const cl = yield* cluster()
      yield* advance(1)
      const [n0, n1, n2, n3, n4] = cl.nodes.map((n) => n.addr)
      yield* cl.network.partition([[n0!, n1!], [n2!, n3!, n4!]])
      yield* cl.increment(1, A, 4)
      yield* cl.increment(3, A, 9)
      yield* advance(500)
      yield* cl.network.heal
      // repaired by the next sync round (every 2 s) and forwarded at once to the rest
      const t = yield* untilConverged(cl, 10_000, 10)
      expect(yield* cl.values(A)).toEqual(Array(5).fill(13))
      expect(t).toBeGreaterThan(0)
      expect(t).toBeLessThanOrEqual(2_010)
    })))

  it.scoped("a late joiner that knows one node learns every peer and catches up", () =>
    run(Effect.gen(function*() {
      const cl = yield* cluster({ seeds: "first" })
      yield* advance(1)
      for (let i = 0; i < 5; i++) yield* cl.increment(i, A, i + 1)
      yield* cl.increment(2, c("views"), 40)
      yield* untilConverged(cl, 5_000)
      const joiner = yield* cl.add([cl.nodes[3]!.addr])
      yield* untilConverged(cl, 5_000)
      expect(yield* joiner.running!.store.value(A)).toBe(15)
      expect(yield* joiner.running!.store.value(c("views"))).toBe(40)
      // it knows the whole cluster by exchange, and its writes reach everyone at once
      yield* advance(2_100)
      expect((yield* joiner.running!.peers.alive).length).toBe(5)
      yield* joiner.running!.store.increment(A, 100)
      yield* advance(3)
      expect(yield* cl.values(A)).toEqual(Array(6).fill(115))
    })))

  it.scoped("a node stopped and restarted on the same disk resumes without loss or reuse", () =>
    run(Effect.gen(function*() {
      const cl = yield* cluster()
      yield* advance(1)
      yield* cl.increment(1, A, 10)
      yield* cl.decrement(1, A, 3)
      const id = cl.node(1).store.replicaId
      yield* advance(5)
      yield* cl.stop(1)
      yield* cl.increment(0, A, 20)
      yield* advance(5)
      yield* cl.restart(1)
      expect(cl.node(1).store.replicaId).toBe(id)
      expect(yield* cl.node(1).store.localValue(A)).toBe(7)
      // it catches up at start, not at the next sync round
      expect(yield* untilConverged(cl, 100, 1)).toBeLessThan(10)
      yield* cl.increment(1, A, 1)
      yield* untilConverged(cl, 100, 1)
      expect(yield* cl.values(A)).toEqual(Array(5).fill(28))
    })))

  it.scoped("after kill -9 a node keeps every acknowledged write", () =>
    run(Effect.gen(function*() {
      const cl = yield* cluster()
      yield* advance(1)
      // the writes are acknowledged; the crash comes before any push leaves the node
      yield* Effect.all(Array.from({ length: 30 }, () => cl.increment(2, A, 1)), { concurrency: 6 })
      yield* cl.network.isolate(cl.nodes[2]!.addr)
      yield* advance(5)
      yield* cl.crash(2)
      yield* cl.network.heal
      yield* cl.restart(2)
      yield* untilConverged(cl, 100, 1)
      expect(yield* cl.values(A)).toEqual(Array(5).fill(30))
    })))

  it.scoped("a node restarted on an empty disk gets a fresh replica id; the value neither drops nor double counts", () =>
    run(Effect.gen(function*() {
      const cl = yield* cluster()
      yield* advance(1)
      yield* cl.increment(2, A, 10)
      yield* cl.increment(0, A, 5)
      yield* untilConverged(cl, 1_000)
      const old = cl.node(2).store.replicaId
      yield* cl.crash(2)
      yield* cl.restart(2, { freshDisk: true })
      expect(cl.node(2).store.replicaId).not.toBe(old)
      expect(yield* untilConverged(cl, 100, 1)).toBeLessThan(10)
      expect(yield* cl.node(2).store.value(A)).toBe(15)
      yield* cl.increment(2, A, 1)
      yield* untilConverged(cl, 100, 1)
      expect(yield* cl.values(A)).toEqual(Array(5).fill(16))
      // its old writes are still counted once, under the old id, on every node
      const state = yield* cl.node(4).store.counterState(A)
      expect(state.increments[old]).toBe(10)
      expect(state.increments[cl.node(2).store.replicaId]).toBe(1)
    })))

  it.scoped("with discovery gone, peers learned by exchange keep converging", () =>
    run(Effect.gen(function*() {
      // discovery lists every node while it is up; then it disappears with an empty list
      const registry = { up: true, list: [] as Array<DiscoveredPeer> }
      const discovery = () =>
        Layer.succeed(DiscoveryClient, {
          peers: Effect.sync(() => (registry.up ? registry.list : [])),
          reachable: Effect.sync(() => registry.up)
        })
      const cl = yield* cluster({ seeds: "none", discovery })
      registry.list = cl.nodes.map((n) => ({ gossipAddr: n.addr, httpAddr: n.httpAddr, nodeId: "x" }))
      yield* advance(1_001)
      expect((yield* cl.node(0).peers.alive).length).toBe(4)
      registry.up = false
      // a newcomer that knows only node 1: everyone learns it by Hello and PeerList
      const joiner = yield* cl.add([cl.nodes[1]!.addr])
      yield* advance(4_100)
      for (let i = 0; i < 6; i++) expect((yield* cl.node(i).peers.alive).length).toBe(5)
      yield* joiner.running!.store.increment(A, 7)
      yield* cl.increment(0, A, 1)
      yield* advance(3)
      expect(yield* cl.values(A)).toEqual(Array(6).fill(8))
    })))

  it.scoped("a lone node pushes nothing; once a peer is alive its writes are pushed within a push window", () =>
    run(Effect.gen(function*() {
      const cl = yield* cluster({ size: 1 })
      yield* advance(1)
      expect(yield* cl.increment(0, A, 5)).toBe(5)
      yield* advance(10)
      expect((yield* cl.node(0).gossip.stats).pushesSent.eager ?? 0).toBe(0)
      const joiner = yield* cl.add([cl.nodes[0]!.addr])
      // the write made alone arrives by anti-entropy (a DigestPull to a joining peer)
      yield* untilConverged(cl, 5_000)
      expect(yield* joiner.running!.store.value(A)).toBe(5)
      yield* advance(2_100)
      expect((yield* cl.node(0).peers.alive).length).toBe(1)
      // its own entries were announced once, when the first peer was alive
      const announced = (yield* cl.node(0).gossip.stats).pushesSent.eager
      expect(announced).toBe(1)
      yield* cl.increment(0, A, 1)
      yield* advance(3)
      expect(yield* joiner.running!.store.value(A)).toBe(6)
      expect((yield* cl.node(0).gossip.stats).pushesSent.eager).toBe(announced + 1)
    })))

  it.scoped("an isolated node is suspected and declared dead at the configured times, alive once healed", () =>
    run(Effect.gen(function*() {
      const cl = yield* cluster()
      yield* advance(1)
      const n4 = cl.nodes[4]!.addr
      const status = Effect.map(cl.node(0).peers.peers, (ps) => ps.find((p) => p.addr === n4)!.status)
      yield* advance(999)
      // t = 1 s: last heard from at the Ping/PingAck round of t = 1 s
      yield* cl.network.isolate(n4)
      yield* advance(3_999) // t = 4.999 s: Pings of 2, 3, 4 s missed, the third counted at 5 s
      expect(yield* status).toBe("alive")
      yield* advance(1) // t = 5 s
      expect(yield* status).toBe("suspect")
      yield* advance(5_999) // t = 10.999 s
      expect(yield* status).toBe("suspect")
      yield* advance(1) // t = 11 s = last heard (1 s) + failure timeout (10 s)
      expect(yield* status).toBe("dead")
      yield* cl.increment(4, A, 2)
      yield* cl.network.heal
      yield* advance(1_000)
      expect(yield* status).toBe("alive")
      yield* untilConverged(cl, 100, 5)
      expect(yield* cl.values(A)).toEqual(Array(5).fill(2))
    })))

  it.scoped("beyond the direct-push limit, receivers forward what changed them and everyone converges fast", () =>
    run(Effect.gen(function*() {
      const cl = yield* cluster({
        size: 12,
        config: { ...config, syncInterval: Duration.hours(1), fullSyncInterval: Duration.hours(2) },
        services: { gossip: { directPushLimit: 3 } }
      })
      yield* advance(1)
      yield* cl.increment(5, A, 9)
      yield* advance(10)
      expect(yield* cl.values(A)).toEqual(Array(12).fill(9))
      const forwards = yield* Effect.forEach(cl.nodes, (n) => Effect.map(n.running!.gossip.stats, (s) => s.pushesSent.forward))
      expect(forwards.reduce((a, b) => a + b, 0)).toBeGreaterThan(0)
    })))
})
