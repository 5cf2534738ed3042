import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Option, Queue, Scope, TestClock } from "effect"
import { ReplicaId } from "../../src/crdt/ReplicaId.js"
import type { HostPort, Message } from "../../src/protocol/Message.js"
import { Hello, Ping } from "../../src/protocol/Message.js"
import { MemoryNetwork } from "../../src/transport/MemoryNetwork.js"
import type { Inbound } from "../../src/transport/Transport.js"
import { Transport } from "../../src/transport/Transport.js"
import * as TransportMemory from "../../src/transport/TransportMemory.js"

const A = "127.0.0.1:9001" as HostPort
const B = "127.0.0.1:9002" as HostPort
const C = "127.0.0.1:9003" as HostPort

const hello = (addr: HostPort, id = `r${addr.slice(-1)}`) =>
  new Hello({ protocol: 1, replicaId: ReplicaId.make(id), gossipAddr: addr, httpAddr: addr })

/** A transport for `addr` living in its own scope, so a test can stop and restart it. */
const start = (addr: HostPort, options: TransportMemory.TransportMemoryOptions = {}, id?: string) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const transport = yield* TransportMemory.make(hello(addr, id), options).pipe(Scope.extend(scope))
    return { transport, stop: Scope.close(scope, Exit.void) }
  })

const tag = (m: Message): string => (m._tag === "Ping" ? `Ping${m.seq}` : m._tag)

/** Takes messages until a Ping with `seq`, returning what came before it, included. */
const takeUntil = (inbound: Queue.Dequeue<Inbound>, seq: number) =>
  Effect.gen(function* () {
    const seen: Array<string> = []
    while (true) {
      const next = yield* Queue.take(inbound)
      seen.push(tag(next.message))
      if (next.message._tag === "Ping" && next.message.seq === seq) return seen
    }
  })

const withNetwork = Effect.provide(MemoryNetwork.layer({ seed: 42 }))

describe("MemoryNetwork + TransportMemory", () => {
  it.effect("delivers in order per link, a Hello first", () =>
    Effect.gen(function* () {
      const a = yield* start(A)
      const b = yield* start(B)
      for (let i = 0; i < 100; i++) expect(yield* a.transport.send(B, new Ping({ seq: i }))).toBe(true)
      const first = yield* Queue.take(b.transport.inbound)
      expect(first.message).toEqual(hello(A))
      expect(first.from.gossipAddr).toBe(A)
      const rest = yield* takeUntil(b.transport.inbound, 99)
      expect(rest).toEqual(Array.from({ length: 100 }, (_, i) => `Ping${i}`))
      const states = yield* a.transport.connections
      expect(states).toMatchObject([{ addr: B, status: "connected", sent: 100, queued: 0 }])
      expect((yield* b.transport.stats).framesIn).toBe(101)
    }).pipe(withNetwork))

  it.effect("partition cuts links between groups until heal", () =>
    Effect.gen(function* () {
      const network = yield* MemoryNetwork
      const a = yield* start(A)
      const b = yield* start(B)
      const c = yield* start(C)
      yield* a.transport.send(B, new Ping({ seq: 0 }))
      expect(yield* takeUntil(b.transport.inbound, 0)).toEqual(["Hello", "Ping0"])

      yield* network.partition([[A, C], [B]])
      expect(yield* network.reachable(A, B)).toBe(false)
      expect(yield* network.reachable(A, C)).toBe(true)
      yield* a.transport.send(B, new Ping({ seq: 1 }))
      yield* b.transport.send(A, new Ping({ seq: 1 }))
      yield* a.transport.send(C, new Ping({ seq: 1 }))
      expect(yield* takeUntil(c.transport.inbound, 1)).toEqual(["Hello", "Ping1"])
      const states = yield* a.transport.connections
      expect(states.find((s) => s.addr === B)).toMatchObject({ status: "backoff", lastError: "partitioned" })
      expect((yield* network.stats).unreachable).toBe(2)

      yield* network.heal
      yield* a.transport.send(B, new Ping({ seq: 2 }))
      // Ping1 was lost; a new connection starts with a Hello
      expect(yield* takeUntil(b.transport.inbound, 2)).toEqual(["Hello", "Ping2"])
      yield* b.transport.send(A, new Ping({ seq: 2 }))
      expect(yield* takeUntil(a.transport.inbound, 2)).toEqual(["Hello", "Ping2"])
    }).pipe(withNetwork))

  it.effect("addresses not listed in a partition form one group", () =>
    Effect.gen(function* () {
      const network = yield* MemoryNetwork
      yield* start(A)
      yield* start(B)
      yield* start(C)
      yield* network.partition([[A]])
      expect(yield* network.reachable(B, C)).toBe(true)
      expect(yield* network.reachable(B, A)).toBe(false)
      expect(yield* network.reachable(A, C)).toBe(false)
    }).pipe(withNetwork))

  it.effect("isolate cuts one node off from everyone, heal restores it", () =>
    Effect.gen(function* () {
      const network = yield* MemoryNetwork
      const a = yield* start(A)
      const b = yield* start(B)
      const c = yield* start(C)
      yield* network.isolate(C)
      yield* a.transport.send(C, new Ping({ seq: 1 }))
      yield* c.transport.send(B, new Ping({ seq: 1 }))
      yield* a.transport.send(B, new Ping({ seq: 2 }))
      expect(yield* takeUntil(b.transport.inbound, 2)).toEqual(["Hello", "Ping2"])
      expect((yield* network.stats).unreachable).toBe(2)
      expect((yield* c.transport.connections)[0]).toMatchObject({ addr: B, status: "backoff", lastError: "isolated" })

      yield* network.heal
      yield* a.transport.send(C, new Ping({ seq: 3 }))
      expect(yield* takeUntil(c.transport.inbound, 3)).toEqual(["Hello", "Ping3"])
    }).pipe(withNetwork))

  const dropRun = Effect.gen(function* () {
    const network = yield* MemoryNetwork
    const a = yield* start(A)
    const b = yield* start(B)
    yield* network.setDropProbability(0.5)
    for (let i = 0; i < 1000; i++) yield* a.transport.send(B, new Ping({ seq: i }))
    yield* network.setDropProbability(0)
    yield* a.transport.send(B, new Ping({ seq: 1000 }))
    const seen = yield* takeUntil(b.transport.inbound, 1000)
    const stats = yield* network.stats
    return { seen, stats }
  })

  it.effect("drop probability loses that share of messages, reproducibly for a seed", () =>
    Effect.gen(function* () {
      const first = yield* dropRun.pipe(withNetwork)
      const again = yield* dropRun.pipe(withNetwork)
      const other = yield* dropRun.pipe(Effect.provide(MemoryNetwork.layer({ seed: 7 })))
      const pings = first.seen.filter((s) => s.startsWith("Ping")).map((s) => Number(s.slice(4)))
      // delivered in order, the marker last
      expect(pings).toEqual([...pings].sort((x, y) => x - y))
      expect(pings.at(-1)).toBe(1000)
      expect(pings.length - 1).toBeGreaterThan(400)
      expect(pings.length - 1).toBeLessThan(600)
      expect(first.stats.dropped).toBe(1000 - (pings.length - 1))
      expect(again.seen).toEqual(first.seen)
      expect(other.seen).not.toEqual(first.seen)
    }))

  it.effect("delay holds every message back by the delay, under the TestClock", () =>
    Effect.gen(function* () {
      const network = yield* MemoryNetwork
      const a = yield* start(A)
      const b = yield* start(B)
      yield* network.setDelay("100 millis")
      yield* a.transport.send(B, new Ping({ seq: 0 }))
      yield* TestClock.adjust("50 millis")
      yield* a.transport.send(B, new Ping({ seq: 1 }))
      const first = yield* Effect.fork(takeUntil(b.transport.inbound, 0))
      yield* TestClock.adjust("49 millis")
      expect(Option.isNone(yield* Fiber.poll(first))).toBe(true)
      yield* TestClock.adjust("1 millis")
      // 100 ms: Ping0 is out, Ping1 (sent at 50 ms) is due at 150 ms
      expect(yield* Fiber.join(first)).toEqual(["Hello", "Ping0"])
      const second = yield* Effect.fork(takeUntil(b.transport.inbound, 1))
      yield* TestClock.adjust("49 millis")
      expect(Option.isNone(yield* Fiber.poll(second))).toBe(true)
      yield* TestClock.adjust("1 millis")
      expect(yield* Fiber.join(second)).toEqual(["Ping1"])
    }).pipe(withNetwork))

  it.effect("jitter never reorders a link", () =>
    Effect.gen(function* () {
      const network = yield* MemoryNetwork
      const a = yield* start(A)
      const b = yield* start(B)
      yield* network.setDelay("10 millis", "50 millis")
      for (let i = 0; i < 200; i++) yield* a.transport.send(B, new Ping({ seq: i }))
      const taker = yield* Effect.fork(takeUntil(b.transport.inbound, 199))
      yield* TestClock.adjust("1 second")
      const seen = yield* Fiber.join(taker)
      expect(seen).toEqual(["Hello", ...Array.from({ length: 200 }, (_, i) => `Ping${i}`)])
    }).pipe(withNetwork))

  it.effect("a stopped node receives nothing; the same address registered again does", () =>
    Effect.gen(function* () {
      const network = yield* MemoryNetwork
      const a = yield* start(A)
      const b1 = yield* start(B, {}, "old")
      yield* a.transport.send(B, new Ping({ seq: 0 }))
      expect(yield* takeUntil(b1.transport.inbound, 0)).toEqual(["Hello", "Ping0"])
      yield* b1.stop
      expect(yield* Queue.isShutdown(b1.transport.inbound)).toBe(true)
      expect(yield* network.reachable(A, B)).toBe(false)
      yield* a.transport.send(B, new Ping({ seq: 1 }))
      expect((yield* network.stats).unreachable).toBe(1)

      const b2 = yield* start(B, {}, "new")
      yield* a.transport.send(B, new Ping({ seq: 2 }))
      expect(yield* takeUntil(b2.transport.inbound, 2)).toEqual(["Hello", "Ping2"])
      // and it can answer with its new identity
      yield* b2.transport.send(A, new Ping({ seq: 3 }))
      const first = yield* Queue.take(a.transport.inbound)
      expect(first.message).toEqual(hello(B, "new"))
    }).pipe(withNetwork))

  it.effect("a full inbox holds the link back and a full link queue refuses pings", () =>
    Effect.gen(function* () {
      const network = yield* MemoryNetwork
      const a = yield* start(A)
      const b = yield* start(B, { inboundQueueSize: 4 })
      const results: Array<boolean> = []
      for (let i = 0; i < 2000; i++) {
        results.push(yield* a.transport.send(B, new Ping({ seq: i })))
        if (i % 100 === 0) yield* Effect.yieldNow()
      }
      yield* Effect.yieldNow()
      // 4 in the inbox and the link fiber suspended offering the 5th
      expect(yield* Queue.size(b.transport.inbound)).toBe(5)
      const refused = results.filter((r) => !r).length
      expect(refused).toBeGreaterThan(0)
      const state = (yield* a.transport.connections)[0]!
      expect(state.queued).toBeLessThanOrEqual(1024)
      expect(state.dropped).toBe(refused)
      expect((yield* network.stats).overflowed).toBe(refused)
      // what was accepted arrives in order
      const taker = yield* Effect.fork(takeUntil(b.transport.inbound, 5000))
      yield* a.transport.send(B, new Ping({ seq: 5000 })).pipe(Effect.repeat({ until: (ok) => ok }))
      const seen = (yield* Fiber.join(taker)).filter((s) => s !== "Hello")
      expect(seen.length).toBe(2000 - refused + 1)
      const seqs = seen.map((s) => Number(s.slice(4)))
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y))
    }).pipe(withNetwork))

  it.effect("TransportMemory.layer provides a Transport over a MemoryNetwork", () =>
    Effect.gen(function* () {
      const other = yield* start(B)
      const network = yield* MemoryNetwork
      const program = Effect.gen(function* () {
        const t = yield* Transport
        yield* t.send(B, new Ping({ seq: 7 }))
        const seen = yield* takeUntil(other.transport.inbound, 7)
        return { self: t.self.gossipAddr, seen }
      })
      const layer = TransportMemory.layer(hello(A)).pipe(Layer.provide(Layer.succeed(MemoryNetwork, network)))
      const result = yield* program.pipe(Effect.provide(layer))
      expect(result).toEqual({ self: A, seen: ["Hello", "Ping7"] })
      // the layer's scope is closed: A is gone
      expect(yield* network.reachable(B, A)).toBe(false)
    }).pipe(withNetwork))
})
