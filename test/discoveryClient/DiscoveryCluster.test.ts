/**
 * The scenario: three real node layers (NodeRole.layerMemory on the in-process
 * network, via MemoryCluster) that meet only through a real discovery on loopback, each with
 * its own DiscoveryHttp client. Discovery is stopped while they run: writes keep converging;
 * it restarts empty on the same address: all three are listed again within two heartbeats.
 */
import { describe, expect, it } from "../support/vitest.js"
import { Context, Duration, Effect, Exit, Layer, Option, Scope } from "effect"
import type { NodeConfigShape } from "../../src/config/NodeConfig.js"
import type { CounterName } from "../../src/crdt/CounterName.js"
import { DiscoveryClient } from "../../src/discoveryClient/DiscoveryClient.js"
import * as DiscoveryHttp from "../../src/discoveryClient/DiscoveryHttp.js"
import * as MemoryCluster from "../../src/node/MemoryCluster.js"
import { MemoryNetwork } from "../../src/transport/MemoryNetwork.js"
import { heartbeatsBeforeRegistering, startDiscovery } from "../discoveryServer/startDiscovery.js"
import { eventually, freePort } from "../support/live.js"

const A = "default" as CounterName

const nodeConfig: Partial<NodeConfigShape> = {
  syncInterval: Duration.millis(300),
  fullSyncInterval: Duration.seconds(3),
  maxSyncPeers: 2,
  heartbeatInterval: Duration.millis(200),
  maxFails: 10,
  failureTimeout: Duration.seconds(30),
  eagerPush: true,
  pushWindow: Duration.millis(2)
}

/** the discovery client's heartbeat (the default of `--heartbeat-interval`) */
const heartbeat = Duration.seconds(1)

describe("3 nodes and a discovery that goes away", () => {
  it.scopedLive("writes keep converging while discovery is down; after an empty restart all 3 are listed within two heartbeats", () =>
    Effect.gen(function*() {
      const port = yield* freePort
      const addr = `127.0.0.1:${port}`
      const first = yield* Scope.make()
      const d1 = yield* startDiscovery({ addr }).pipe(Scope.extend(first))

      const clients: Array<DiscoveryClient["Type"]> = []
      const cluster = yield* MemoryCluster.make({
        size: 3,
        seeds: "none", // they meet through discovery only
        config: nodeConfig,
        discovery: ({ addr: nodeAddr, index }) =>
          DiscoveryHttp.layer({
            discovery: addr,
            self: { addr: nodeAddr, httpAddr: `127.0.0.1:${8100 + index}`, nodeId: `node#${index}` },
            heartbeatInterval: heartbeat,
            refreshInterval: "200 millis",
            clusterKey: Option.none()
          }).pipe(Layer.tap((context) => Effect.sync(() => clients.push(Context.get(context, DiscoveryClient)))))
      })
      const nodes = [0, 1, 2]
      const everyone = (check: (i: number) => Effect.Effect<boolean>) =>
        Effect.map(Effect.forEach(nodes, check), (all) => all.every((ok) => ok))
      const valuesAre = (expected: number) =>
        Effect.map(cluster.values(A), (values) => values.length === 3 && values.every((v) => v === expected))

      expect((yield* d1.registry.peers).length).toBe(3)
      yield* eventually(
        "each node sees the two others alive",
        "10 seconds",
        everyone((i) => Effect.map(cluster.node(i).peers.alive, (alive) => alive.length === 2))
      )
      yield* eventually(
        "each client listed the two others",
        "5 seconds",
        Effect.map(Effect.forEach(clients, (c) => c.peers), (lists) => lists.every((l) => l.length === 2))
      )
      yield* Effect.forEach(nodes, (i) => cluster.increment(i, A, 1))
      yield* eventually("converged on 3", "10 seconds", valuesAre(3))

      // discovery goes away
      yield* Scope.close(first, Exit.void)
      yield* eventually(
        "every client noticed",
        "5 seconds",
        Effect.map(Effect.forEach(clients, (c) => c.reachable), (r) => r.every((x) => !x))
      )
      for (let round = 1; round <= 3; round++) {
        yield* Effect.forEach(nodes, (i) => cluster.increment(i, A, 10))
        yield* eventually(`converged without discovery, round ${round}`, "10 seconds", valuesAre(3 + 30 * round))
      }
      expect(yield* cluster.converged).toBe(true)
      // the clients still serve what they knew
      for (const c of clients) expect((yield* c.peers).length).toBe(2)

      // discovery comes back on the same address, empty
      const d2 = yield* startDiscovery({ addr })
      expect(yield* d2.registry.peers).toEqual([])
      const restarted = Date.now()
      // bounded wait (the machine may be loaded); "within two heartbeats" is checked below by
      // counting heartbeats, which does not depend on the machine's speed
      yield* eventually("all 3 listed again", "15 seconds", Effect.map(d2.registry.peers, (peers) => peers.length === 3))
      yield* Effect.logInfo(`all 3 listed again ${Date.now() - restarted}ms after the restart (heartbeat ${Duration.format(heartbeat)})`)
      expect((yield* d2.registry.peers).map((p) => p.addr)).toEqual(cluster.nodes.map((n) => n.addr))
      // each node registered again on its first heartbeat to the new discovery (404), or its
      // second if the first one's answer got lost
      for (const node of cluster.nodes) {
        const heartbeats = heartbeatsBeforeRegistering(d2.calls, node.addr)
        expect(heartbeats).toBeGreaterThanOrEqual(0)
        expect(heartbeats).toBeLessThanOrEqual(2)
      }
      yield* Effect.forEach(nodes, (i) => cluster.decrement(i, A, 1))
      yield* eventually("converged after the restart", "10 seconds", valuesAre(90))

      // a graceful stop deregisters
      yield* cluster.stop(1)
      expect((yield* d2.registry.peers).map((p) => p.addr)).toEqual([cluster.nodes[0]!.addr, cluster.nodes[2]!.addr])
      yield* cluster.stop(0)
      yield* cluster.stop(2)
      expect(yield* d2.registry.peers).toEqual([])
    }).pipe(Effect.provide(MemoryNetwork.layer())), { timeout: 60_000 })
})
