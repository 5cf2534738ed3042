/**
 * The HTTP discovery client while discovery is unreachable, on the TestClock: an
 * `HttpClient` that refuses every connection at once (no sockets, no real time).
 */
import { HttpClient, HttpClientError } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Logger, LogLevel, Option, TestClock } from "effect"
import { DiscoveryClient } from "../../src/discoveryClient/DiscoveryClient.js"
import * as DiscoveryHttp from "../../src/discoveryClient/DiscoveryHttp.js"
import { capture } from "../support/TestLogger.js"

let calls = 0
const refusing = Layer.succeed(
  HttpClient.HttpClient,
  HttpClient.make((request) => {
    calls++
    return Effect.fail(
      new HttpClientError.RequestError({ request, reason: "Transport", description: "connect ECONNREFUSED" })
    )
  })
)

const options: DiscoveryHttp.Options = {
  discovery: "127.0.0.1:1",
  self: { addr: "127.0.0.1:9001", httpAddr: "127.0.0.1:8011", nodeId: "n1" },
  heartbeatInterval: "5 seconds",
  refreshInterval: "10 seconds",
  clusterKey: Option.none()
}

describe("DiscoveryHttp while discovery is unreachable (TestClock)", () => {
  it.scoped("starts anyway (bounded), serves an empty list, logs the outage once then at most once a minute", () => {
    const logs = capture()
    return Effect.gen(function*() {
      calls = 0
      const building = yield* Layer.build(DiscoveryHttp.layerWithHttpClient(options).pipe(Layer.provide(refusing))).pipe(
        Effect.fork
      )
      // the first registration retries with backoff (100ms, 200ms, ...) for at most the
      // startup timeout (2s) plus one request timeout (2s)
      yield* TestClock.adjust("4 seconds")
      const client = Context.get(yield* Fiber.join(building), DiscoveryClient)
      const startupCalls = calls
      expect(startupCalls).toBeGreaterThanOrEqual(4) // retried
      expect(startupCalls).toBeLessThanOrEqual(8) // with backoff, not in a hot loop
      expect(yield* client.peers).toEqual([])
      expect(yield* client.reachable).toBe(false)

      // five minutes of outage
      for (let i = 0; i < 60; i++) yield* TestClock.adjust("5 seconds")
      expect(yield* client.peers).toEqual([])
      expect(yield* client.reachable).toBe(false)
      // it kept trying: a registration attempt per heartbeat, a refresh per refresh interval
      expect(calls - startupCalls).toBeGreaterThanOrEqual(85)

      const outage = logs.lines.filter((l) => l.level === "WARN" && l.message.includes("unreachable"))
      expect(outage[0]!.message).toContain("127.0.0.1:1 unreachable")
      expect(outage.slice(1).every((l) => l.message.includes("still unreachable"))).toBe(true)
      // once, then once a minute: 1 + 5
      expect(outage.length).toBeGreaterThanOrEqual(5)
      expect(outage.length).toBeLessThanOrEqual(6)
      for (let i = 1; i < outage.length; i++) {
        expect(outage[i]!.at - outage[i - 1]!.at).toBeGreaterThanOrEqual(60_000)
      }
      // nothing else at warn or above, except the one "not registered yet" line
      const others = logs.lines.filter((l) =>
        (l.level === "WARN" || l.level === "ERROR") && !l.message.includes("unreachable")
      )
      expect(others.map((l) => l.message)).toEqual([
        "not registered with discovery 127.0.0.1:1 yet; retrying every 5s"
      ])
    }).pipe(Effect.provide(logs.layer), Logger.withMinimumLogLevel(LogLevel.Info))
  })

  it.scoped("a client whose HttpClient dies keeps its loops alive and logs the defect", () => {
    const logs = capture()
    let n = 0
    const dying = Layer.succeed(
      HttpClient.HttpClient,
      HttpClient.make(() => {
        n++
        return Effect.die(new Error("boom"))
      })
    )
    return Effect.gen(function*() {
      const building = yield* Layer.build(
        DiscoveryHttp.layerWithHttpClient(options).pipe(Layer.provide(dying))
      ).pipe(Effect.fork)
      yield* TestClock.adjust("1 second")
      const client = Context.get(yield* Fiber.join(building), DiscoveryClient)
      const before = n
      for (let i = 0; i < 10; i++) yield* TestClock.adjust("5 seconds")
      expect(n - before).toBeGreaterThanOrEqual(10) // loops still running
      expect(yield* client.peers).toEqual([])
      expect(logs.lines.some((l) => l.level === "ERROR" && l.message.includes("failed unexpectedly"))).toBe(true)
    }).pipe(Effect.provide(logs.layer))
  })
})
