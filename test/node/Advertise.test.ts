/**
 * Bind vs advertise: a node bound to the wildcard (0.0.0.0) and advertising 127.0.0.2 is
 * known by that advertised address, and only by it, to discovery (register), to another
 * node (its Hello and PeerList) and to the gateway (/nodes). Real sockets on loopback.
 */
import { describe, expect, it } from "../support/vitest.js"
import { Duration, Effect, Layer, Option } from "effect"
import { DiscoveryConfig } from "../../src/config/DiscoveryConfig.js"
import { GatewayConfig } from "../../src/config/GatewayConfig.js"
import { NodeConfig } from "../../src/config/NodeConfig.js"
import * as DiscoveryRole from "../../src/discoveryServer/DiscoveryRole.js"
import * as GatewayRole from "../../src/gateway/GatewayRole.js"
import * as NodeRole from "../../src/node/NodeRole.js"
import * as DataDirMemory from "../../src/storage/DataDirMemory.js"
import * as MemoryDisk from "../../src/storage/MemoryDisk.js"
import * as WalMemory from "../../src/storage/WalMemory.js"
import { eventually, freePort } from "../support/live.js"

interface Listed {
  readonly addr?: string
  readonly httpAddr?: string | null
  readonly gossipAddr?: string
  readonly status?: string
  readonly heard?: boolean
  readonly healthy?: boolean
}
interface Answer {
  readonly length?: number
  readonly peers?: ReadonlyArray<Listed>
  readonly nodes?: ReadonlyArray<Listed>
}

const getJson = (url: string) =>
  Effect.promise(async (): Promise<Answer | undefined> => {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) })
      return (await res.json()) as Answer
    } catch {
      return undefined
    }
  })

const memoryNode = (config: Partial<typeof NodeConfig.Service>) =>
  Layer.build(
    NodeRole.layerOver(Layer.merge(WalMemory.layer(MemoryDisk.make()), DataDirMemory.layer(MemoryDisk.make()))).pipe(
      Layer.provide(NodeConfig.layer({
        syncInterval: Duration.millis(200),
        heartbeatInterval: Duration.millis(200),
        ...config
      }))
    )
  )

describe("advertised addresses", () => {
  it.scopedLive("discovery, peers and the gateway see the advertised addresses, never the wildcard bind", () =>
    Effect.gen(function*() {
      const discovery = `127.0.0.1:${yield* freePort}`
      yield* Layer.build(DiscoveryRole.layer.pipe(Layer.provide(DiscoveryConfig.layer({ addr: discovery }))))

      const gossipPort = yield* freePort
      const httpPort = yield* freePort
      const advertised = { gossip: `127.0.0.2:${gossipPort}`, http: `127.0.0.2:${httpPort}` }
      yield* memoryNode({
        addr: `0.0.0.0:${gossipPort}`,
        httpAddr: `0.0.0.0:${httpPort}`,
        advertiseAddr: Option.some(advertised.gossip),
        advertiseHttpAddr: Option.some(advertised.http),
        discovery: Option.some(discovery)
      })
      const other = { gossip: `127.0.0.1:${yield* freePort}`, http: `127.0.0.1:${yield* freePort}` }
      yield* memoryNode({ addr: other.gossip, httpAddr: other.http, discovery: Option.some(discovery) })

      // discovery: registered under the advertised addresses
      yield* eventually("both nodes registered", "10 seconds", Effect.map(getJson(`http://${discovery}/peers`), (peers) => peers?.length === 2))
      const registered = yield* getJson(`http://${discovery}/peers`)
      expect(registered).toContainEqual(expect.objectContaining({ addr: advertised.gossip, httpAddr: advertised.http }))
      expect(JSON.stringify(registered)).not.toContain("0.0.0.0")

      // the advertised node describes itself by them
      expect(yield* getJson(`http://${advertised.http}/health`)).toMatchObject({
        addr: advertised.gossip,
        httpAddr: advertised.http
      })

      // the other node: alive at the advertised gossip address, with the advertised HTTP address from the Hello
      yield* eventually(
        "the other node to hear the advertised node",
        "10 seconds",
        Effect.map(getJson(`http://${other.http}/peers`), (body) =>
          (body?.peers ?? []).some((p) => p.addr === advertised.gossip && p.status === "alive" && p.heard))
      )
      const peers = yield* getJson(`http://${other.http}/peers`)
      expect(peers?.peers).toContainEqual(expect.objectContaining({ addr: advertised.gossip, httpAddr: advertised.http }))
      expect(JSON.stringify(peers)).not.toContain("0.0.0.0")

      // the gateway: the node's advertised HTTP address, healthy
      const gateway = `127.0.0.1:${yield* freePort}`
      yield* Layer.build(
        GatewayRole.layer.pipe(
          Layer.provide(GatewayConfig.layer({
            addr: gateway,
            discovery: Option.some(discovery),
            refreshInterval: Duration.millis(200)
          }))
        )
      )
      yield* eventually(
        "the gateway to check the advertised node",
        "10 seconds",
        Effect.map(getJson(`http://${gateway}/nodes`), (body) =>
          (body?.nodes ?? []).some((n) => n.httpAddr === advertised.http && n.gossipAddr === advertised.gossip && n.healthy))
      )
      expect(JSON.stringify(yield* getJson(`http://${gateway}/nodes`))).not.toContain("0.0.0.0")
    }), { timeout: 30_000 })
})
