/**
 * The anti-entropy exchange itself, on memory nodes with eager push off and the periodic
 * rounds far away, so that only the exchanges a test starts happen (except in the
 * property test, which runs the rounds on the TestClock).
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Random, TestClock } from "effect"
import * as fc from "fast-check"
import type { NodeConfigShape } from "../../src/config/NodeConfig.js"
import * as CounterMap from "../../src/crdt/CounterMap.js"
import type { CounterName } from "../../src/crdt/CounterName.js"
import * as MemoryCluster from "../../src/node/MemoryCluster.js"
import { MemoryNetwork } from "../../src/transport/MemoryNetwork.js"

const c = (s: string) => s as CounterName

const quiet: Partial<NodeConfigShape> = {
  eagerPush: false,
  syncInterval: Duration.hours(1),
  fullSyncInterval: Duration.hours(2),
  heartbeatInterval: Duration.seconds(1),
  maxSyncPeers: 2
}

const run = <A, E>(self: Effect.Effect<A, E, MemoryNetwork | import("effect").Scope.Scope>, seed = 7, drop = 0) =>
  self.pipe(Effect.provide(MemoryNetwork.layer({ seed, dropProbability: drop })), Effect.withRandom(Random.make(seed)))

const settle = TestClock.adjust(Duration.millis(5))

const sent = (cl: MemoryCluster.MemoryCluster, i: number) => cl.node(i).gossip.stats

describe("anti-entropy", () => {
  it.scoped("one exchange (pull, answer and pull-back, answer) repairs both sides; equal states answer DigestAck", () =>
    run(Effect.gen(function*() {
      const cl = yield* MemoryCluster.make({ size: 2, config: quiet })
      yield* settle
      yield* cl.increment(0, c("a"), 5)
      yield* cl.increment(0, c("shared"), 1)
      yield* cl.increment(1, c("b"), 7)
      yield* cl.increment(1, c("shared"), 2)
      yield* settle
      expect(yield* cl.converged).toBe(false)
      const before0 = yield* sent(cl, 0)
      const before1 = yield* sent(cl, 1)
      yield* cl.node(0).gossip.syncNow
      yield* settle
      expect(yield* cl.converged).toBe(true)
      expect(yield* cl.values(c("shared"))).toEqual([3, 3])
      expect(yield* cl.values(c("a"))).toEqual([5, 5])
      expect(yield* cl.values(c("b"))).toEqual([7, 7])
      const after0 = yield* sent(cl, 0)
      const after1 = yield* sent(cl, 1)
      // node 0: one DigestPull, then its answer to the pull-back; node 1: its answer and
      // the pull-back. Neither had a watermark of the other: both answers are full state,
      // less the asker's own entries (which it holds at their highest already)
      expect(after0.digestPullsSent - before0.digestPullsSent).toBe(1)
      expect(after1.digestPullsSent - before1.digestPullsSent).toBe(1)
      expect(after0.pushesSent.full - before0.pushesSent.full).toBe(1)
      expect(after1.pushesSent.full - before1.pushesSent.full).toBe(1)
      expect(after0.entriesSent - before0.entriesSent).toBe(2)
      expect(after1.entriesSent - before1.entriesSent).toBe(2)
      // equal states answer DigestAck and push nothing
      yield* cl.node(1).gossip.syncNow
      yield* settle
      const last0 = yield* sent(cl, 0)
      const last1 = yield* sent(cl, 1)
      expect(last1.digestAcksReceived - after1.digestAcksReceived).toBe(1)
      expect(last0.entriesSent).toBe(after0.entriesSent)
    })))

  it.scoped("after one exchange, two nodes that differ by a few entries ship those entries, never the state", () =>
    run(Effect.gen(function*() {
      const cl = yield* MemoryCluster.make({ size: 2, config: quiet })
      yield* settle
      for (let i = 0; i < 100; i++) yield* cl.increment(0, c(`zero-${i}`), 1)
      for (let i = 0; i < 100; i++) yield* cl.increment(1, c(`one-${i}`), 1)
      yield* cl.node(0).gossip.syncNow
      yield* settle
      expect(yield* cl.converged).toBe(true)
      // both watermarks are set; a second round settles the echo of the first repair
      yield* cl.node(0).gossip.syncNow
      yield* settle
      yield* cl.node(1).gossip.syncNow
      yield* settle
      const before0 = yield* sent(cl, 0)
      const before1 = yield* sent(cl, 1)
      yield* cl.increment(1, c("one-1"), 1)
      yield* cl.increment(1, c("one-2"), 1)
      yield* cl.increment(0, c("zero-3"), 1)
      yield* cl.node(0).gossip.syncNow
      yield* settle
      expect(yield* cl.converged).toBe(true)
      const after0 = yield* sent(cl, 0)
      const after1 = yield* sent(cl, 1)
      expect(after1.entriesSent - before1.entriesSent).toBe(2)
      expect(after0.entriesSent - before0.entriesSent).toBe(1)
      expect(after0.pushesSent.full).toBe(before0.pushesSent.full)
      expect(after1.pushesSent.full).toBe(before1.pushesSent.full)
    })))

  it.scoped("eager pushes that cover a stretch of the writer's history move the watermark: anti-entropy then sends none of it", () =>
    run(Effect.gen(function*() {
      const cl = yield* MemoryCluster.make({ size: 2, config: { ...quiet, eagerPush: true, pushWindow: Duration.millis(2) } })
      yield* settle
      for (let i = 0; i < 20; i++) yield* cl.increment(0, c(`w${i}`), 1)
      yield* settle
      // node 1 learns a watermark of node 0 (equal states: DigestAck)
      yield* cl.node(1).gossip.syncNow
      yield* settle
      expect(yield* cl.converged).toBe(true)
      // node 1 writes alone, so the states differ at the next exchange
      yield* cl.network.isolate(cl.nodes[1]!.addr)
      yield* cl.increment(1, c("mine"), 1)
      yield* settle
      yield* cl.network.heal
      for (let i = 0; i < 10; i++) {
        yield* cl.increment(0, c(`w${i}`), 1)
        yield* TestClock.adjust(Duration.millis(3))
      }
      yield* settle
      const before0 = yield* sent(cl, 0)
      yield* cl.node(1).gossip.syncNow
      yield* settle
      expect(yield* cl.converged).toBe(true)
      const after0 = yield* sent(cl, 0)
      // node 0's answer is one empty part: everything it wrote went out covered
      expect(after0.pushesSent.sync - before0.pushesSent.sync).toBe(1)
      expect(after0.entriesSent - before0.entriesSent).toBe(0)
    })))

  it.scoped("a node that catches up by whole state forwards none of it (the others hold it already)", () =>
    run(Effect.gen(function*() {
      const cl = yield* MemoryCluster.make({ size: 3, config: { ...quiet, eagerPush: true, pushWindow: Duration.millis(2) } })
      yield* settle
      for (let i = 0; i < 30; i++) yield* cl.increment(0, c(`s${i}`), 1)
      yield* TestClock.adjust(Duration.millis(20))
      expect(yield* cl.converged).toBe(true)
      yield* cl.stop(2)
      yield* cl.restart(2, { freshDisk: true })
      yield* TestClock.adjust(Duration.millis(20))
      yield* cl.node(2).gossip.syncNow
      yield* TestClock.adjust(Duration.millis(20))
      expect(yield* cl.converged).toBe(true)
      expect((yield* sent(cl, 2)).pushesSent.forward).toBe(0)
    })))

  it.scoped("a state larger than one frame goes in parts, and the pull-back brings what the asker has more", () =>
    run(Effect.gen(function*() {
      const cl = yield* MemoryCluster.make({ size: 2, config: quiet, services: { gossip: { maxPushEntries: 2 } } })
      yield* settle
      for (let i = 0; i < 5; i++) yield* cl.increment(0, c(`x${i}`), i + 1)
      for (let i = 0; i < 3; i++) yield* cl.increment(1, c(`y${i}`), 10)
      yield* cl.node(0).gossip.syncNow
      yield* settle
      expect(yield* cl.converged).toBe(true)
      expect((yield* cl.node(1).store.values).length).toBe(8)
      // node 1 answered with its 3 entries in 2 parts; node 0 answered the pull-back with
      // its whole state (8 entries) walked in 4 parts, less node 1's own 3 (which node 1
      // holds at their highest): 5 entries
      expect((yield* sent(cl, 1)).pushesSent.full).toBe(2)
      expect((yield* sent(cl, 0)).pushesSent.full).toBe(4)
      expect((yield* sent(cl, 0)).entriesSent).toBe(5)
      // every part arrived: the next exchange finds equal states
      const acks = (yield* sent(cl, 0)).digestAcksReceived
      yield* cl.node(0).gossip.syncNow
      yield* settle
      expect((yield* sent(cl, 0)).digestAcksReceived).toBe(acks + 1)
    })))

  it.scoped("the full-sync round is one more anti-entropy round: three nodes converge on it alone", () =>
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

  it.scoped("a node restarted on its data dir, and one on an empty one, catch up by full state once, then by deltas", () =>
    run(Effect.gen(function*() {
      const cl = yield* MemoryCluster.make({ size: 2, config: quiet })
      yield* settle
      for (let i = 0; i < 20; i++) yield* cl.increment(0, c(`k${i}`), 1)
      yield* cl.node(1).gossip.syncNow
      yield* settle
      expect(yield* cl.converged).toBe(true)
      yield* cl.stop(1)
      yield* cl.restart(1, { freshDisk: true })
      yield* settle
      // the restarted node pulls at once (membership), holds no watermark: full state
      yield* cl.node(1).gossip.syncNow
      yield* settle
      expect(yield* cl.converged).toBe(true)
      expect(yield* cl.values(c("k3"))).toEqual([1, 1])
      const before = yield* sent(cl, 0)
      yield* cl.increment(0, c("k3"), 1)
      yield* cl.node(1).gossip.syncNow
      yield* settle
      const after = yield* sent(cl, 0)
      expect(after.entriesSent - before.entriesSent).toBe(1)
      expect(yield* cl.values(c("k3"))).toEqual([2, 2])
    })))

  // Random partitions, message drops, crashes, graceful restarts and lost data dirs; then
  // the network heals and the rounds run: every node ends with exactly the state a
  // full-state exchange between all of them would give (the merge of their states).
  it.effect.prop(
    "under random faults the watermark exchange converges to the state a full exchange gives",
    [
      fc.array(
        fc.oneof(
          fc.record({ op: fc.constant("write" as const), node: fc.nat(3), counter: fc.nat(5), by: fc.integer({ min: 1, max: 9 }) }),
          fc.record({ op: fc.constant("partition" as const), cut: fc.nat(3) }),
          fc.record({ op: fc.constant("heal" as const) }),
          fc.record({ op: fc.constant("crash" as const), node: fc.nat(3), fresh: fc.boolean() }),
          fc.record({ op: fc.constant("sync" as const), node: fc.nat(3) }),
          fc.record({ op: fc.constant("tick" as const), ms: fc.integer({ min: 1, max: 3_000 }) })
        ),
        { minLength: 1, maxLength: 40 }
      ),
      fc.integer({ min: 1, max: 1_000 })
    ],
    ([ops, seed]) =>
      Effect.scoped(run(
        Effect.gen(function*() {
          const cl = yield* MemoryCluster.make({
            size: 4,
            config: { ...quiet, syncInterval: Duration.seconds(1), fullSyncInterval: Duration.seconds(7), maxSyncPeers: 1 },
            services: { gossip: { maxPushEntries: 2 } }
          })
          yield* settle
          for (const o of ops) {
            switch (o.op) {
              case "write":
                if (cl.nodes[o.node]!.running !== undefined) {
                  yield* cl.increment(o.node, c(`n${o.counter}`), o.by).pipe(Effect.ignore)
                }
                break
              case "partition":
                yield* cl.network.partition([[cl.nodes[o.cut]!.addr]])
                break
              case "heal":
                yield* cl.network.heal
                break
              case "crash":
                if (cl.nodes[o.node]!.running !== undefined) {
                  yield* cl.crash(o.node)
                  yield* cl.restart(o.node, { freshDisk: o.fresh })
                }
                break
              case "sync":
                yield* cl.node(o.node).gossip.syncNow
                break
              case "tick":
                yield* TestClock.adjust(Duration.millis(o.ms))
                break
            }
            yield* settle
          }
          yield* cl.network.heal
          yield* cl.network.setDropProbability(0)
          // what a full-state exchange between every node would give
          const states = yield* Effect.forEach(cl.nodes, (n) => n.running!.store.entries)
          const expected = CounterMap.fromEntries(states.flat())
          for (let round = 0; round < 40 && !(yield* cl.converged); round++) {
            yield* TestClock.adjust(Duration.seconds(1))
          }
          expect(yield* cl.converged).toBe(true)
          expect(yield* cl.node(0).store.digest).toBe(expected.digest())
        }),
        seed,
        0.2
      )),
    { timeout: 120_000, fastCheck: { numRuns: 15 } }
  )
})
