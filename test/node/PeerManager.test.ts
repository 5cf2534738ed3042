import { describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Layer, Queue, TestClock } from "effect"
import * as DiscoveryStatic from "../../src/discoveryClient/DiscoveryStatic.js"
import { NodeConfig } from "../../src/config/NodeConfig.js"
import type { ReplicaId } from "../../src/crdt/ReplicaId.js"
import * as PeerManager from "../../src/node/PeerManager.js"
import type { HostPort } from "../../src/protocol/Message.js"
import { Hello, PeerInfo, PeerList, Ping, PingAck, PROTOCOL_VERSION } from "../../src/protocol/Message.js"
import { MemoryNetwork } from "../../src/transport/MemoryNetwork.js"
import { Transport } from "../../src/transport/Transport.js"
import * as TransportMemory from "../../src/transport/TransportMemory.js"

const addr = (i: number) => `127.0.0.1:${9000 + i}` as HostPort
const hello = (i: number, replica = `r${i}`) =>
  new Hello({ protocol: PROTOCOL_VERSION, replicaId: replica as ReplicaId, gossipAddr: addr(i), httpAddr: `127.0.0.1:${8010 + i}` as HostPort })

const config = (self: number, peers: ReadonlyArray<string>) =>
  NodeConfig.layer({
    addr: addr(self),
    httpAddr: `127.0.0.1:${8010 + self}`,
    peers,
    heartbeatInterval: Duration.seconds(1),
    maxFails: 3,
    failureTimeout: Duration.seconds(10),
    syncInterval: Duration.seconds(2),
    maxSyncPeers: 2
  })

/** The node under test: a PeerManager on the memory network, with its inbound loop. */
const node = (self: number, peers: ReadonlyArray<string>, options: PeerManager.PeerManagerOptions = {}) =>
  Effect.gen(function*() {
    const ctx = yield* Layer.build(
      PeerManager.layer({ startJitter: false, ...options }).pipe(Layer.provideMerge(TransportMemory.layer(hello(self))), Layer.provide(config(self, peers)), Layer.provide(DiscoveryStatic.layerNone))
    )
    const pm = Context.get(ctx, PeerManager.PeerManager)
    const transport = Context.get(ctx, Transport)
    yield* Queue.take(transport.inbound).pipe(Effect.flatMap(pm.handle), Effect.forever, Effect.forkScoped)
    return pm
  })

/** A bare peer on the network that answers Pings while `answering` is true and records what it gets. */
const fakePeer = (i: number, replica?: string) =>
  Effect.gen(function*() {
    const ctx = yield* Layer.build(TransportMemory.layer(hello(i, replica)))
    const transport = Context.get(ctx, Transport)
    const state = { answering: true, received: [] as Array<string> }
    yield* Queue.take(transport.inbound).pipe(
      Effect.flatMap(({ from, message }) => {
        state.received.push(message._tag)
        return message._tag === "Ping" && state.answering
          ? transport.send(from.gossipAddr, new PingAck({ seq: message.seq }))
          : Effect.void
      }),
      Effect.forever,
      Effect.forkScoped
    )
    return { transport, state }
  })

const statusOf = (pm: PeerManager.PeerManager["Type"], a: HostPort) =>
  Effect.map(pm.peers, (ps) => ps.find((p) => p.addr === a)?.status)

/** Advances the TestClock to `t` seconds after the test started. */
const at = (t: number) =>
  Effect.gen(function*() {
    const now = yield* TestClock.currentTimeMillis
    yield* TestClock.adjust(Duration.millis(t * 1000 - now))
  })

const withNetwork = <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.provide(self, MemoryNetwork.layer())

describe("PeerManager", () => {
  it.scoped("alive -> suspect after max-fails missed heartbeats -> dead at failure-timeout -> alive when heard", () =>
    withNetwork(Effect.gen(function*() {
      const peer = yield* fakePeer(2)
      const pm = yield* node(1, [addr(2)])
      yield* at(0)
      expect(yield* statusOf(pm, addr(2))).toBe("alive")
      yield* at(2)
      // heard from at t=2 (the PingAck to the Ping of t=2); then it goes silent
      peer.state.answering = false
      expect((yield* pm.peers)[0]!.lastSeen).toBe(2000)
      // Pings of t=3, 4, 5 go unanswered; the third miss is counted at t=6
      yield* at(5.999)
      expect(yield* statusOf(pm, addr(2))).toBe("alive")
      expect((yield* pm.peers)[0]!.fails).toBe(2)
      yield* at(6)
      expect(yield* statusOf(pm, addr(2))).toBe("suspect")
      expect(yield* pm.alive).toEqual([])
      // dead exactly failure-timeout (10 s) after it was last heard from
      yield* at(11.999)
      expect(yield* statusOf(pm, addr(2))).toBe("suspect")
      yield* at(12)
      expect(yield* statusOf(pm, addr(2))).toBe("dead")
      // a static peer is kept (and probed) however long it is dead
      yield* at(40)
      expect(yield* statusOf(pm, addr(2))).toBe("dead")
      peer.state.answering = true
      yield* at(41)
      expect(yield* statusOf(pm, addr(2))).toBe("alive")
      expect(yield* pm.alive).toEqual([addr(2)])
      expect((yield* pm.peers)[0]!.fails).toBe(0)
    })))

  it.scoped("any message is proof of life: a peer heard from between heartbeats never becomes suspect", () =>
    withNetwork(Effect.gen(function*() {
      const peer = yield* fakePeer(2)
      const pm = yield* node(1, [addr(2)])
      peer.state.answering = false
      for (let t = 0; t < 20; t++) {
        yield* at(t + 0.5)
        yield* peer.transport.send(addr(1), new PeerList({ peers: [] }))
      }
      expect(yield* statusOf(pm, addr(2))).toBe("alive")
    })))

  it.scoped("a dead peer learned by exchange is listed for the retention time, then removed", () =>
    withNetwork(Effect.gen(function*() {
      const pm = yield* node(1, [], { deadRetention: Duration.seconds(5) })
      yield* at(0)
      yield* pm.handle({
        from: hello(3),
        message: new PeerList({ peers: [new PeerInfo({ gossipAddr: addr(2), httpAddr: "127.0.0.1:8012" as HostPort })] })
      })
      yield* at(9.999)
      expect((yield* pm.peers).map((p) => [p.addr, p.status])).toEqual([[addr(2), "suspect"], [addr(3), "suspect"]])
      yield* at(10)
      expect((yield* pm.peers).map((p) => p.status)).toEqual(["dead", "dead"])
      yield* at(14)
      expect((yield* pm.peers).length).toBe(2)
      yield* at(15)
      expect(yield* pm.peers).toEqual([])
    })))

  it.scoped("never adds itself: not by address, not by replica id, not from a PeerList or Hello", () =>
    withNetwork(Effect.gen(function*() {
      const pm = yield* node(1, [addr(1), addr(2)])
      expect(yield* pm.add({ gossipAddr: addr(1) }, "discovery")).toBe(false)
      expect(yield* pm.add({ gossipAddr: addr(5), replicaId: "r1" as ReplicaId }, "discovery")).toBe(false)
      yield* pm.handle({
        from: hello(2),
        message: new PeerList({ peers: [new PeerInfo({ gossipAddr: addr(1), httpAddr: "127.0.0.1:8011" as HostPort })] })
      })
      yield* pm.handle({ from: hello(1), message: new Ping({ seq: 1 }) })
      expect((yield* pm.peers).map((p) => p.addr)).toEqual([addr(2)])
    })))

  it.scoped("learns peers from Hello and PeerList, answers a newcomer with its peer list", () =>
    withNetwork(Effect.gen(function*() {
      const pm = yield* node(1, [])
      const two = yield* fakePeer(2)
      const three = yield* fakePeer(3)
      yield* at(0)
      // peer 2 contacts us: learned from its Hello, and it gets our peer list
      yield* two.transport.send(addr(1), new Ping({ seq: 7 }))
      yield* at(0.5)
      expect((yield* pm.peers).map((p) => [p.addr, p.httpAddr, p.replicaId, p.sources])).toEqual([
        [addr(2), "127.0.0.1:8012", "r2", ["contact"]]
      ])
      expect(two.state.received).toContain("PeerList")
      expect(two.state.received).toContain("PingAck")
      // 3 contacts us too; the list we send it now names 2
      yield* three.transport.send(addr(1), new Ping({ seq: 1 }))
      yield* at(0.6)
      const list = yield* pm.peerList
      expect(list.peers.map((p) => p.gossipAddr).sort()).toEqual([addr(2), addr(3)])
    })))

  it.scoped("a peer that comes back with a new replica id (lost data directory) is updated", () =>
    withNetwork(Effect.gen(function*() {
      const pm = yield* node(1, [])
      yield* pm.handle({ from: hello(2, "old"), message: new Ping({ seq: 1 }) })
      yield* pm.handle({ from: hello(2, "new"), message: new Ping({ seq: 2 }) })
      expect((yield* pm.peers).map((p) => p.replicaId)).toEqual(["new"])
    })))

  it.scoped("the peer table is bounded: dead peers are evicted first, otherwise newcomers are refused", () =>
    withNetwork(Effect.gen(function*() {
      const pm = yield* node(1, [], { maxPeers: 3 })
      yield* at(0)
      for (const i of [2, 3, 4]) expect(yield* pm.add({ gossipAddr: addr(i) }, "exchange")).toBe(true)
      expect(yield* pm.add({ gossipAddr: addr(5) }, "exchange")).toBe(false)
      yield* at(10)
      // all three are dead now: a newcomer evicts one
      expect(yield* pm.add({ gossipAddr: addr(5) }, "exchange")).toBe(true)
      expect((yield* pm.peers).length).toBe(3)
      expect((yield* pm.peers).map((p) => p.addr)).toContain(addr(5))
    })))

  it.scoped("sends its peer list to alive peers every exchange interval", () =>
    withNetwork(Effect.gen(function*() {
      const two = yield* fakePeer(2)
      yield* node(1, [addr(2)], { exchangeInterval: Duration.seconds(3) })
      yield* at(2.9)
      expect(two.state.received).not.toContain("PeerList")
      yield* at(3)
      expect(two.state.received.filter((t) => t === "PeerList").length).toBe(1)
      yield* at(6)
      expect(two.state.received.filter((t) => t === "PeerList").length).toBe(2)
    })))

  it.scoped("pickAlive returns distinct alive peers, honouring exclusions", () =>
    withNetwork(Effect.gen(function*() {
      const pm = yield* node(1, [2, 3, 4, 5, 6].map(addr))
      for (let k = 0; k < 20; k++) {
        const picked = yield* pm.pickAlive(2, new Set([addr(3)]))
        expect(picked.length).toBe(2)
        expect(new Set(picked).size).toBe(2)
        expect(picked).not.toContain(addr(3))
      }
      expect((yield* pm.pickAlive(10)).length).toBe(5)
    })))
})
