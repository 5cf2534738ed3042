/**
 * Real node layers (file WAL in temp dirs, TCP gossip and HTTP on loopback, free ports):
 * three nodes converge after writes to each; a node closed and started again on its data
 * directory keeps its replica id and its writes.
 */
import { describe, expect, it } from "../support/vitest.js"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Duration, Effect, Exit, Layer, Scope } from "effect"
import { NodeConfig } from "../../src/config/NodeConfig.js"
import * as NodeRole from "../../src/node/NodeRole.js"
import { freePort } from "../support/live.js"

interface LiveNode {
  readonly gossip: string
  readonly http: string
  readonly dir: string
  scope: Scope.CloseableScope | undefined
}

const startNode = (node: LiveNode, peers: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    yield* Layer.buildWithScope(
      NodeRole.layer.pipe(
        Layer.provide(NodeConfig.layer({
          addr: node.gossip,
          httpAddr: node.http,
          dataDir: node.dir,
          peers,
          syncInterval: Duration.millis(500),
          fullSyncInterval: Duration.seconds(5),
          heartbeatInterval: Duration.millis(200)
        }))
      ),
      scope
    )
    node.scope = scope
  })

const stopNode = (node: LiveNode) =>
  Effect.suspend(() => {
    const scope = node.scope
    node.scope = undefined
    return scope === undefined ? Effect.void : Scope.close(scope, Exit.void)
  })

const call = (node: LiveNode, method: string, path: string, body?: unknown) =>
  Effect.promise(async () => {
    const res = await fetch(`http://${node.http}${path}`, {
      method,
      ...(body !== undefined ? { body: JSON.stringify(body), headers: { "content-type": "application/json" } } : {})
    })
    return { status: res.status, body: (await res.json()) as any }
  })

/** Polls every node until all report `expected`, for at most `limit`. */
const awaitValue = (nodes: ReadonlyArray<LiveNode>, path: string, expected: number, limit = Duration.seconds(10)) =>
  Effect.gen(function*() {
    const deadline = Date.now() + Duration.toMillis(limit)
    let values: Array<number> = []
    while (Date.now() < deadline) {
      values = yield* Effect.forEach(nodes, (n) => Effect.map(call(n, "GET", path), (r) => r.body.value as number))
      if (values.every((v) => v === expected)) return values
      yield* Effect.sleep("20 millis")
    }
    return yield* Effect.dieMessage(`values ${JSON.stringify(values)} never all reached ${expected}`)
  })

describe("node role on TCP loopback", () => {
  it.live("3 real nodes converge after writes to each; a restarted node keeps its id and writes", () =>
    Effect.gen(function*() {
      const root = mkdtempSync(join(tmpdir(), "dcounter-node-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(root, { recursive: true, force: true })))
      const nodes: Array<LiveNode> = []
      for (let i = 0; i < 3; i++) {
        nodes.push({
          gossip: `127.0.0.1:${yield* freePort}`,
          http: `127.0.0.1:${yield* freePort}`,
          dir: join(root, `n${i}`),
          scope: undefined
        })
      }
      yield* Effect.addFinalizer(() => Effect.forEach(nodes, stopNode, { discard: true }))
      const peersOf = (i: number) => nodes.filter((_, j) => j !== i).map((n) => n.gossip)
      for (let i = 0; i < 3; i++) yield* startNode(nodes[i]!, peersOf(i))

      for (let i = 0; i < 3; i++) {
        expect((yield* call(nodes[i]!, "POST", "/increment", { by: i + 1 })).status).toBe(200)
        expect((yield* call(nodes[i]!, "POST", "/counters/views/increment")).status).toBe(200)
      }
      yield* call(nodes[1]!, "POST", "/decrement", { by: 2 })
      yield* awaitValue(nodes, "/counter", 1 + 2 + 3 - 2)
      yield* awaitValue(nodes, "/counters/views", 3)
      const before = (yield* call(nodes[2]!, "GET", "/counter")).body.nodeId

      // graceful stop, writes elsewhere meanwhile, start again on the same directory
      yield* stopNode(nodes[2]!)
      yield* call(nodes[0]!, "POST", "/increment", { by: 10 })
      yield* startNode(nodes[2]!, peersOf(2))
      const again = yield* call(nodes[2]!, "GET", "/local-counter")
      expect(again.body).toEqual({ value: 3, nodeId: before })
      yield* call(nodes[2]!, "POST", "/increment", { by: 100 })
      yield* awaitValue(nodes, "/counter", 4 + 10 + 100)
      const peers = yield* call(nodes[0]!, "GET", "/peers")
      expect(peers.body.peers.map((p: { addr: string }) => p.addr).sort()).toEqual(peersOf(0).sort())
    }).pipe(Effect.scoped, Effect.timeout("60 seconds")))
})
