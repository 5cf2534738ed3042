/**
 * A fresh node catches up on a state larger than one gossip frame (4 MiB) across real TCP:
 * real node layers (file WAL in temp dirs, TCP gossip and HTTP on loopback, free ports).
 * The anti-entropy answer goes in parts, and the new node ends with every entry.
 */
import { describe, expect, it } from "../support/vitest.js"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Context, Duration, Effect, Layer, Scope } from "effect"
import { NodeConfig } from "../../src/config/NodeConfig.js"
import type { CounterName } from "../../src/crdt/CounterName.js"
import type { Entry } from "../../src/crdt/Entry.js"
import type { ReplicaId } from "../../src/crdt/ReplicaId.js"
import * as Codec from "../../src/protocol/Codec.js"
import { DEFAULT_MAX_FRAME_BYTES } from "../../src/protocol/Frame.js"
import { Push } from "../../src/protocol/Message.js"
import { CounterStore } from "../../src/node/CounterStore.js"
import { Gossip } from "../../src/node/Gossip.js"
import * as NodeRole from "../../src/node/NodeRole.js"
import { freePort } from "../support/live.js"

const ENTRIES = 150_000

const start = (root: string, name: string, peers: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const gossip = `127.0.0.1:${yield* freePort}`
    const http = `127.0.0.1:${yield* freePort}`
    const scope = yield* Scope.make()
    yield* Effect.addFinalizer((exit) => Scope.close(scope, exit))
    const context = yield* Layer.buildWithScope(
      NodeRole.layer.pipe(
        Layer.provide(NodeConfig.layer({
          addr: gossip,
          httpAddr: http,
          dataDir: join(root, name),
          peers,
          syncInterval: Duration.millis(300),
          fullSyncInterval: Duration.seconds(5),
          heartbeatInterval: Duration.millis(200)
        }))
      ),
      scope
    )
    return { gossip, store: Context.get(context, CounterStore), stats: Context.get(context, Gossip).stats }
  })

describe("catch-up on TCP loopback", () => {
  it.scopedLive(`a fresh node catches up on ${ENTRIES} entries (more than one 4 MiB frame) in parts`, () =>
    Effect.gen(function*() {
      const root = mkdtempSync(join(tmpdir(), "dcounter-catchup-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(root, { recursive: true, force: true })))
      const a = yield* start(root, "a", [])
      const replica = "catchUpReplica0000000A" as ReplicaId
      const entries: Array<Entry> = []
      for (let i = 0; i < ENTRIES; i++) {
        entries.push([`catch-up:counter-${String(i).padStart(7, "0")}` as CounterName, replica, i + 1, i % 7])
      }
      // the state is larger than what one frame may carry
      const whole = Codec.encode(new Push({ full: true, entries, digest: "" }, true))
      expect(whole.length).toBeGreaterThan(DEFAULT_MAX_FRAME_BYTES)
      yield* a.store.merge(entries)
      const b = yield* start(root, "b", [a.gossip])
      const deadline = Date.now() + 60_000
      while ((yield* b.store.size) < ENTRIES && Date.now() < deadline) yield* Effect.sleep("50 millis")
      expect(yield* b.store.size).toBe(ENTRIES)
      expect(yield* b.store.digest).toBe(yield* a.store.digest)
      const sent = yield* a.stats
      expect(sent.pushesSent.full).toBeGreaterThanOrEqual(Math.ceil(ENTRIES / 16_384))
    }), 90_000)
})
