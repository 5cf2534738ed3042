/**
 * The outbound peer's reconnect pacing: the delay before attempt n + 1 is the capped
 * exponential `min(cap, base * 2^(n-1))`, jittered into its upper half, so peers that
 * lost the same node do not redial it in step, and no delay ever exceeds the cap.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, FastCheck as fc, Random } from "effect"
import { backoffDelay, splitHostPort } from "../../src/transport/internal/OutboundPeer.js"

describe("OutboundPeer", () => {
  it.prop(
    "backoff: within [full/2, full] of the capped exponential, whatever the attempt",
    [fc.integer({ min: 1, max: 200 }), fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: 60_000 }), fc.integer()],
    ([attempt, base, cap, seed]) => {
      const delay = Effect.runSync(backoffDelay(attempt, base, cap).pipe(Effect.withRandom(Random.make(seed))))
      const full = Math.min(cap, base * 2 ** Math.min(attempt - 1, 30))
      const ms = Duration.toMillis(delay)
      expect(ms).toBeGreaterThanOrEqual(Math.floor(full / 2))
      expect(ms).toBeLessThanOrEqual(Math.ceil(full))
      expect(ms).toBeLessThanOrEqual(cap)
    }
  )

  it("backoff: jitter spreads the delays of one attempt", () => {
    const delays = new Set(
      Array.from({ length: 20 }, (_, seed) =>
        Duration.toMillis(Effect.runSync(backoffDelay(5, 100, 10_000).pipe(Effect.withRandom(Random.make(seed))))))
    )
    expect(delays.size).toBeGreaterThan(10)
    for (const ms of delays) expect(ms >= 800 && ms <= 1600).toBe(true)
  })

  it("splitHostPort: host and port of an address, IPv6 without brackets; undefined if not one", () => {
    expect(splitHostPort("127.0.0.3:9001")).toEqual({ host: "127.0.0.3", port: 9001 })
    expect(splitHostPort("[::1]:9000")).toEqual({ host: "::1", port: 9000 })
    expect(splitHostPort("node-1.svc:65535")).toEqual({ host: "node-1.svc", port: 65535 })
    for (const bad of ["9000", ":9000", "host:", "host:65536", "host:9x", "host:123456"]) {
      expect(splitHostPort(bad)).toBeUndefined()
    }
  })
})
