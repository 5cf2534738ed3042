/**
 * The DNS discovery client on the TestClock, over a scripted lookup (no sockets): the
 * name is re-resolved every refresh interval; names that appear are listed, names that
 * vanish are not; a failed lookup keeps the last list, is logged once per outage (then at
 * most once per interval) and retried; a lookup that hangs is cut at its timeout. The
 * node:dns lookup itself is exercised against a real DNS server in test/e2e/dns.test.ts.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, Layer, Logger, LogLevel, Option, TestClock } from "effect"
import { DiscoveryClient } from "../../src/discoveryClient/DiscoveryClient.js"
import * as DiscoveryDns from "../../src/discoveryClient/DiscoveryDns.js"
import type { DnsName } from "../../src/discoveryClient/DnsName.js"
import * as Values from "../../src/config/Values.js"
import { capture } from "../support/TestLogger.js"

type Answer = ReadonlyArray<string> | "fail" | "hang"

/** A lookup answering from `script`, one entry per call (the last one repeats). */
const scripted = (script: ReadonlyArray<Answer>) => {
  const asked: Array<DnsName> = []
  const lookup: DiscoveryDns.Lookup = (name) =>
    Effect.suspend(() => {
      const answer = script[Math.min(asked.length, script.length - 1)]!
      asked.push(name)
      if (answer === "hang") return Effect.never
      if (answer === "fail") {
        return Effect.fail(new DiscoveryDns.DnsLookupFailed({ name: name.name, reason: "Failed", detail: "ESERVFAIL" }))
      }
      return Effect.succeed(answer)
    })
  return { asked, lookup }
}

const name: DnsName = { kind: "A", name: "dcounter-nodes.default.svc.cluster.local", port: undefined }
const options: DiscoveryDns.Options = {
  name,
  target: "gossip",
  defaultPort: 9000,
  dnsServer: Option.none(),
  refreshInterval: Duration.seconds(2),
  lookupTimeout: Duration.millis(500),
  outageLogInterval: Duration.minutes(1)
}

const gossipAddrs = Effect.flatMap(DiscoveryClient, (c) => c.peers).pipe(Effect.map((ps) => ps.map((p) => p.gossipAddr)))

describe("DiscoveryDns", () => {
  it.scoped("lists what DNS answers, re-resolved every refresh interval: new names join, vanished ones leave", () =>
    Effect.gen(function*() {
      const { asked, lookup } = scripted([["10.0.0.1:9000", "10.0.0.2:9000"], ["10.0.0.2:9000", "10.0.0.3:9000"]])
      const context = yield* Layer.build(DiscoveryDns.layerWith(options, lookup))
      const client = Effect.provide(gossipAddrs, context)
      expect(yield* client).toEqual(["10.0.0.1:9000", "10.0.0.2:9000"])
      expect(asked).toHaveLength(1) // resolved once while the layer starts
      yield* TestClock.adjust("1999 millis")
      expect(asked).toHaveLength(1)
      yield* TestClock.adjust("1 millis")
      expect(asked).toHaveLength(2)
      expect(yield* client).toEqual(["10.0.0.2:9000", "10.0.0.3:9000"])
      expect(yield* Effect.provide(Effect.flatMap(DiscoveryClient, (c) => c.reachable), context)).toBe(true)
    }))

  it.scoped("the gateway's DNS client lists node HTTP addresses", () =>
    Effect.gen(function*() {
      const { lookup } = scripted([["10.0.0.1:8010"]])
      const context = yield* Layer.build(DiscoveryDns.layerWith({ ...options, target: "http" }, lookup))
      const peers = yield* Effect.provide(Effect.flatMap(DiscoveryClient, (c) => c.peers), context)
      expect(peers).toEqual([{ gossipAddr: "", httpAddr: "10.0.0.1:8010", nodeId: "" }])
    }))

  it.scoped("a failed or hung lookup keeps the last list, is logged once per outage and retried; never fatal", () =>
    Effect.gen(function*() {
      const logs = capture()
      const { asked, lookup } = scripted([["10.0.0.1:9000"], "fail", "hang", "fail", ["10.0.0.4:9000"]])
      const context = yield* Layer.build(DiscoveryDns.layerWith(options, lookup)).pipe(Effect.provide(logs.layer))
      const reachable = Effect.provide(Effect.flatMap(DiscoveryClient, (c) => c.reachable), context)
      const client = Effect.provide(gossipAddrs, context)
      yield* TestClock.adjust("2 seconds") // fails
      expect(asked).toHaveLength(2)
      expect(yield* client).toEqual(["10.0.0.1:9000"])
      expect(yield* reachable).toBe(false)
      yield* TestClock.adjust("2 seconds") // hangs: cut at the lookup timeout
      yield* TestClock.adjust("500 millis")
      expect(asked).toHaveLength(3)
      expect(yield* client).toEqual(["10.0.0.1:9000"])
      yield* TestClock.adjust("2 seconds") // fails again
      expect(asked).toHaveLength(4)
      const warnings = logs.lines.filter((l) => l.level === "WARN")
      expect(warnings).toHaveLength(1)
      expect(warnings[0]!.message).toMatch(/DNS discovery dns:dcounter-nodes\.default\.svc\.cluster\.local: .*ESERVFAIL.*keeping the 1 address/)
      yield* TestClock.adjust("2 seconds") // answers again
      expect(yield* client).toEqual(["10.0.0.4:9000"])
      expect(yield* reachable).toBe(true)
      expect(logs.lines.filter((l) => l.level === "INFO").map((l) => l.message).join("\n")).toMatch(/answers again/)
    }).pipe(Logger.withMinimumLogLevel(LogLevel.Info)))
})

describe("DNS option values", () => {
  it("dns:NAME, dns:NAME:PORT, dns+srv:NAME and what is refused", () => {
    expect(Values.dnsName("dns:a.b")).toEqual(Either.right({ kind: "A", name: "a.b", port: undefined }))
    expect(Values.dnsName("dns:a.b:9001")).toEqual(Either.right({ kind: "A", name: "a.b", port: 9001 }))
    expect(Values.dnsName("dns+srv:_g._tcp.a.b")).toEqual(Either.right({ kind: "SRV", name: "_g._tcp.a.b", port: undefined }))
    for (const bad of ["dns:", "dns::9000", "dns:a b", "dns:a.b:0", "dns:a.b:65536", "dns:a..b", "dns+srv:a:1", "a.b"]) {
      expect(Either.isLeft(Values.dnsName(bad)), bad).toBe(true)
    }
    expect(Values.isWildcardHost("0.0.0.0")).toBe(true)
    expect(Values.isWildcardHost("::")).toBe(true)
    expect(Values.isWildcardHost("127.0.0.1")).toBe(false)
    expect(Values.isWildcardHost("::1")).toBe(false)
    expect(Values.dnsServer("10.96.0.10:53")).toEqual(Either.right("10.96.0.10:53"))
    expect(Either.isLeft(Values.dnsServer("kube-dns:53"))).toBe(true)
  })
})
