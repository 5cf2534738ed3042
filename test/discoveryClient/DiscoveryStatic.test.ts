import { describe, expect, it } from "../support/vitest.js"
import { Effect, FastCheck as fc, Layer, Option } from "effect"
import type { DiscoveredPeer } from "../../src/discoveryClient/DiscoveryClient.js"
import { DiscoveryClient, layerUnion, unionPeers } from "../../src/discoveryClient/DiscoveryClient.js"
import * as DiscoveryHttp from "../../src/discoveryClient/DiscoveryHttp.js"
import * as DiscoveryStatic from "../../src/discoveryClient/DiscoveryStatic.js"
import { startDiscovery } from "../discoveryServer/startDiscovery.js"

const peer = (gossipAddr: string, httpAddr = "", nodeId = ""): DiscoveredPeer => ({ gossipAddr, httpAddr, nodeId })

describe("DiscoveryStatic", () => {
  it("reads --peers and --nodes", () => {
    expect(DiscoveryStatic.fromGossipAddrs(["a:9001", " b:9002 ", ""])).toEqual([peer("a:9001"), peer("b:9002")])
    expect(DiscoveryStatic.fromNodeUrls(["http://a:8010", "http://b:8011/", "c:8012", "http://d"])).toEqual([
      peer("", "a:8010"),
      peer("", "b:8011"),
      peer("", "c:8012"),
      peer("", "d:80")
    ])
  })

  it.effect("serves its fixed list, deduplicated, always reachable", () =>
    Effect.gen(function*() {
      const client = yield* DiscoveryClient
      expect(yield* client.peers).toEqual([peer("a:9001"), peer("b:9002")])
      expect(yield* client.reachable).toBe(true)
    }).pipe(Effect.provide(DiscoveryStatic.layerGossipAddrs(["a:9001", "b:9002", "a:9001"]))))
})

describe("unionPeers", () => {
  it("merges by gossip address, then by HTTP address, filling unknown fields", () => {
    const fromDiscovery = [peer("a:9001", "a:8010", "n-a"), peer("b:9002", "b:8011", "n-b")]
    const fromPeers = [peer("a:9001"), peer("c:9003")]
    const fromNodes = [peer("", "b:8011"), peer("", "d:8013")]
    expect(unionPeers([fromDiscovery, fromPeers, fromNodes])).toEqual([
      peer("a:9001", "a:8010", "n-a"),
      peer("b:9002", "b:8011", "n-b"),
      peer("c:9003"),
      peer("", "d:8013")
    ])
    // static first: the discovery entry fills in what the static one lacks
    expect(unionPeers([fromPeers, fromDiscovery])).toEqual([
      peer("a:9001", "a:8010", "n-a"),
      peer("c:9003"),
      peer("b:9002", "b:8011", "n-b")
    ])
    // two different gossip addresses sharing an HTTP address stay two peers
    expect(unionPeers([[peer("a:1", "h:1")], [peer("b:1", "h:1")]])).toHaveLength(2)
  })

  const arbPeer = fc.record({
    gossipAddr: fc.constantFrom("", "a:1", "b:1", "c:1"),
    httpAddr: fc.constantFrom("", "h:1", "h:2", "h:3"),
    nodeId: fc.constantFrom("", "x", "y")
  })
  const arbSources = fc.array(fc.array(arbPeer, { maxLength: 6 }), { maxLength: 4 })

  it.prop("no two results share a gossip address; every address is kept", [arbSources], ([sources]) => {
    const out = unionPeers(sources)
    const gossip = out.map((p) => p.gossipAddr).filter((a) => a !== "")
    expect(new Set(gossip).size).toBe(gossip.length)
    expect(out.every((p) => p.gossipAddr !== "" || p.httpAddr !== "")).toBe(true)
    for (const p of sources.flat()) {
      if (p.gossipAddr !== "") expect(gossip).toContain(p.gossipAddr)
      else if (p.httpAddr !== "") expect(out.some((o) => o.httpAddr === p.httpAddr)).toBe(true)
    }
  }, { fastCheck: { numRuns: 1000 } })

  it.prop("idempotent: a list merged with itself is the list merged once", [arbSources], ([sources]) => {
    const once = unionPeers(sources)
    expect(unionPeers([once, once])).toEqual(once)
    expect(unionPeers([...sources, ...sources])).toEqual(once)
  }, { fastCheck: { numRuns: 1000 } })
})

describe("layerUnion (HTTP discovery + static peers at once)", () => {
  it.scopedLive("lists both, deduplicated; reachable follows discovery", () =>
    Effect.gen(function*() {
      const d = yield* startDiscovery()
      yield* d.registry.register({ addr: "127.0.0.1:9001", httpAddr: "127.0.0.1:8011", nodeId: "n1" })
      yield* d.registry.register({ addr: "127.0.0.1:9002", httpAddr: "127.0.0.1:8012", nodeId: "n2" })
      const both = layerUnion(
        DiscoveryHttp.layer({
          discovery: d.addr,
          heartbeatInterval: "1 second",
          refreshInterval: "1 second",
          clusterKey: Option.none()
        }),
        DiscoveryStatic.layerGossipAddrs(["127.0.0.1:9002", "127.0.0.1:9003"])
      )
      const client = yield* Effect.provide(DiscoveryClient, yield* Layer.build(both))
      expect(yield* client.peers).toEqual([
        peer("127.0.0.1:9001", "127.0.0.1:8011", "n1"),
        peer("127.0.0.1:9002", "127.0.0.1:8012", "n2"),
        peer("127.0.0.1:9003")
      ])
      expect(yield* client.reachable).toBe(true)
    }))
})
