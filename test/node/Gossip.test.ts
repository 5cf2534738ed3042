/**
 * The anti-entropy exchange itself, on two or three memory nodes with eager push off and
 * the periodic rounds far away, so that only the exchanges a test starts happen.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Random, TestClock } from "effect"
import type { NodeConfigShape } from "../../src/config/NodeConfig.js"
import type { CounterName } from "../../src/crdt/CounterName.js"
import * as MemoryCluster from "../../src/node/MemoryCluster.js"
import { Network } from "../../src/transport/Network.js"

const c = (s: string) => s as CounterName

const quiet: Partial<NodeConfigShape> = {
  eagerPush: false,
  syncInterval: Duration.hours(1),
  fullSyncInterval: Duration.hours(2),
  heartbeatInterval: Duration.seconds(1),
  maxSyncPeers: 2
}

const run = <A, E>(self: Effect.Effect<A, E, Network | import("effect").Scope.Scope>) =>
  self.pipe(Effect.provide(Network.layer({ seed: 7 })), Effect.withRandom(Random.make(7)))

const settle = TestClock.adjust(Duration.millis(5))

describe("anti-entropy", () => {
  it.scoped("one exchange (pull, full push, push-back of what the other lacks) repairs both sides", () =>
    run(Effect.gen(function*() {
      const cl = yield* MemoryCluster.make({ size: 2, config: quiet })
      yield* settle
      yield* cl.increment(0, c("a"), 5)
      yield* cl.increment(0, c("shared"), 1)
      yield* cl.increment(1, c("b"), 7)
      yield* cl.increment(1, c("shared"), 2)
      yield* settle
      expect(yield* cl.converged).toBe(false)
      const before0 = yield* cl.node(0).gossip.stats
      const before1 = yield* cl.node(1).gossip.stats
      yield* cl.node(0).gossip.syncNow
      yield* settle
      expect(yield* cl.converged).toBe(true)
      expect(yield* cl.values(c("shared"))).toEqual([3, 3])
      expect(yield* cl.values(c("a"))).toEqual([5, 5])
      expect(yield* cl.values(c("b"))).toEqual([7, 7])
      const after0 = yield* cl.node(0).gossip.stats
      const after1 = yield* cl.node(1).gossip.stats
      // node 0: one DigestPull and one push-back; node 1: one full push; nothing else
      expect(after0.digestPullsSent - before0.digestPullsSent).toBe(1)
      expect(after0.pushesSent.pushback - before0.pushesSent.pushback).toBe(1)
      expect(after1.pushesSent.sync - before1.pushesSent.sync).toBe(1)
      expect(after1.pushesSent.pushback - before1.pushesSent.pushback).toBe(0)
      // equal states answer DigestAck and push nothing
      yield* cl.node(1).gossip.syncNow
      yield* settle
      const last0 = yield* cl.node(0).gossip.stats
      const last1 = yield* cl.node(1).gossip.stats
      expect(last1.digestAcksReceived - after1.digestAcksReceived).toBe(1)
      expect(last0.pushesSent.sync).toBe(after0.pushesSent.sync)
    })))

  it.scoped("a state larger than one frame goes in chunks, and the receiver still answers with what it has more", () =>
    run(Effect.gen(function*() {
      const cl = yield* MemoryCluster.make({ size: 2, config: quiet, services: { gossip: { maxPushEntries: 2 } } })
      yield* settle
      for (let i = 0; i < 5; i++) yield* cl.increment(0, c(`x${i}`), i + 1)
      for (let i = 0; i < 3; i++) yield* cl.increment(1, c(`y${i}`), 10)
      yield* cl.node(0).gossip.syncNow
      yield* settle
      expect(yield* cl.converged).toBe(true)
      expect((yield* cl.node(1).store.values).length).toBe(8)
      const s1 = yield* cl.node(1).gossip.stats
      // node 1 answered the pull with its 3 entries in 2 chunks and a DigestPull; node 0,
      // holding more, answered that with its whole state (now 8 entries) in 4 chunks
      expect(s1.pushesSent.sync).toBe(2)
      expect((yield* cl.node(0).gossip.stats).pushesSent.sync).toBe(4)
    })))

  it.scoped("a full push every full-sync interval reaches max-sync-peers peers and is answered with what they have more", () =>
    run(Effect.gen(function*() {
      const cl = yield* MemoryCluster.make({
        size: 3,
        config: { ...quiet, fullSyncInterval: Duration.seconds(10), maxSyncPeers: 2 }
      })
      yield* settle
      yield* cl.increment(0, c("p"), 1)
      yield* cl.increment(1, c("q"), 2)
      yield* cl.increment(2, c("r"), 3)
      yield* TestClock.adjust(Duration.seconds(10))
      yield* settle
      expect(yield* cl.converged).toBe(true)
      expect(yield* cl.values(c("r"))).toEqual([3, 3, 3])
    })))
})
