import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Exit, TestClock } from "effect"
import * as Registry from "../../src/discoveryServer/Registry.js"

const n = (i: number) => ({ addr: `127.0.0.1:${9000 + i}`, httpAddr: `127.0.0.1:${8010 + i}`, nodeId: `n${i}` })

const withRegistry = (options: Registry.RegistryOptions) => Effect.provide(Registry.layer(options))

describe("Registry", () => {
  it.scoped("register / heartbeat / deregister / peers, lastSeen from the Clock", () =>
    Effect.gen(function*() {
      const registry = yield* Registry.Registry
      yield* TestClock.setTime(1_000)
      yield* registry.register(n(2))
      yield* registry.register(n(1))
      expect(yield* registry.peers).toEqual([{ ...n(1), lastSeen: 1_000 }, { ...n(2), lastSeen: 1_000 }])

      yield* TestClock.adjust("2 seconds")
      yield* registry.heartbeat(n(1).addr)
      expect((yield* registry.peers).map((p) => p.lastSeen)).toEqual([3_000, 1_000])

      expect(yield* registry.deregister(n(1).addr)).toBe(true)
      expect(yield* registry.deregister(n(1).addr)).toBe(false)
      expect((yield* registry.peers).map((p) => p.addr)).toEqual([n(2).addr])

      const unknown = yield* Effect.exit(registry.heartbeat(n(1).addr))
      expect(unknown).toEqual(Exit.fail(new Registry.PeerNotRegistered({ addr: n(1).addr })))
    }).pipe(withRegistry({ ttl: "5 seconds", capacity: 10 })))

  it.scoped("an entry expires after the TTL without a heartbeat; heartbeats keep it", () =>
    Effect.gen(function*() {
      const registry = yield* Registry.Registry
      yield* registry.register(n(1))
      yield* registry.register(n(2))
      for (let i = 0; i < 4; i++) {
        yield* TestClock.adjust("1 second")
        yield* registry.heartbeat(n(2).addr)
      }
      // n1 last seen 4s ago: still listed (TTL 5s)
      expect((yield* registry.peers).map((p) => p.addr)).toEqual([n(1).addr, n(2).addr])
      yield* TestClock.adjust("1 second")
      yield* registry.heartbeat(n(2).addr)
      // n1 last seen 5s ago: gone, and its heartbeat is refused
      expect((yield* registry.peers).map((p) => p.addr)).toEqual([n(2).addr])
      const late = yield* Effect.either(registry.heartbeat(n(1).addr))
      expect(Either.isLeft(late) && late.left._tag).toBe("PeerNotRegistered")
      // registering again brings it back
      yield* registry.register(n(1))
      expect((yield* registry.peers).map((p) => p.addr)).toEqual([n(1).addr, n(2).addr])
    }).pipe(withRegistry({ ttl: "5 seconds", capacity: 10 })))

  it.scoped("the background sweeper removes expired entries from the map", () =>
    Effect.gen(function*() {
      const registry = yield* Registry.Registry
      for (let i = 1; i <= 50; i++) yield* registry.register(n(i))
      expect(yield* registry.size).toBe(50)
      yield* TestClock.adjust("4 seconds")
      yield* registry.heartbeat(n(7).addr)
      // expired entries are still in the map until the sweeper runs (every 1s here)
      yield* TestClock.adjust("1500 millis")
      expect(yield* registry.size).toBe(1)
      yield* TestClock.adjust("5 seconds")
      expect(yield* registry.size).toBe(0)
    }).pipe(withRegistry({ ttl: "5 seconds", capacity: 100, sweepInterval: "1 second" })))

  it.scoped("bounded: a new address past the capacity fails, a known one re-registers", () =>
    Effect.gen(function*() {
      const registry = yield* Registry.Registry
      yield* registry.register(n(1))
      yield* registry.register(n(2))
      yield* registry.register(n(3))
      const full = yield* Effect.either(registry.register(n(4)))
      expect(full).toEqual(Either.left(new Registry.RegistryFull({ capacity: 3, addr: n(4).addr })))
      yield* registry.register({ ...n(2), nodeId: "renamed" })
      expect((yield* registry.peers).map((p) => p.nodeId)).toEqual(["n1", "renamed", "n3"])
      expect(yield* registry.size).toBe(3)
    }).pipe(withRegistry({ ttl: "5 seconds", capacity: 3 })))

  it.scoped("a full registry drops expired entries before refusing a new address", () =>
    Effect.gen(function*() {
      const registry = yield* Registry.Registry
      yield* registry.register(n(1))
      yield* registry.register(n(2))
      yield* TestClock.adjust("3 seconds")
      yield* registry.register(n(3))
      yield* TestClock.adjust("2 seconds")
      // n1, n2 expired (not swept yet: the sweeper runs every minute here)
      expect(yield* registry.size).toBe(3)
      yield* registry.register(n(4))
      expect((yield* registry.peers).map((p) => p.addr)).toEqual([n(3).addr, n(4).addr])
      expect(yield* registry.size).toBe(2)
    }).pipe(withRegistry({ ttl: "5 seconds", capacity: 3, sweepInterval: "1 minute" })))

  it.scoped("the sweeper stops with its scope", () =>
    Effect.gen(function*() {
      // a scope that closes right away: after it, adjusting the clock runs nothing
      const registry = yield* Effect.scoped(Registry.make({ ttl: "1 second", capacity: 10 }))
      yield* registry.register(n(1))
      yield* TestClock.adjust("10 seconds")
      expect(yield* registry.size).toBe(1)
    }))
})
