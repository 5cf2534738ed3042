/**
 * The roles' Configs: the options added with the one-Config-per-role work, the defaults
 * that production and the modules share, and the documentation of every option.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Either, Layer, Option } from "effect"
import { readFileSync } from "node:fs"
import { allFlagNames, envName, sections } from "../../src/cli/Flags.js"
import * as ConfigSource from "../../src/config/ConfigSource.js"
import * as GatewayConfig from "../../src/config/GatewayConfig.js"
import { DiscoveryClient } from "../../src/discoveryClient/DiscoveryClient.js"
import * as NodeConfig from "../../src/config/NodeConfig.js"
import * as Upstream from "../../src/gateway/Upstream.js"
import * as GatewayRole from "../../src/gateway/GatewayRole.js"
import * as NodeRole from "../../src/node/NodeRole.js"
import * as DataDirMemory from "../../src/storage/DataDirMemory.js"
import * as MemoryDisk from "../../src/storage/MemoryDisk.js"
import * as WalFile from "../../src/storage/WalFile.js"

const node = (flags: ConfigSource.Flags, env: Record<string, string> = {}) =>
  ConfigSource.load(NodeConfig.config, flags, env)

describe("NodeConfig.config", () => {
  it.effect("--refresh-interval sets the discovery refresh; unset, it follows --sync-interval", () =>
    Effect.gen(function*() {
      const unset = yield* node({ "sync-interval": "3s" })
      expect(Duration.toMillis(NodeConfig.discoveryRefreshOf(unset))).toBe(3000)
      const set = yield* node({ "sync-interval": "3s", "refresh-interval": "30s" })
      expect(Duration.toMillis(NodeConfig.discoveryRefreshOf(set))).toBe(30_000)
      expect(Duration.toMillis(set.syncInterval)).toBe(3000)
      const fromEnv = yield* node({}, { DCOUNTER_REFRESH_INTERVAL: "5s" })
      expect(Duration.toMillis(NodeConfig.discoveryRefreshOf(fromEnv))).toBe(5000)
      const bad = yield* Effect.either(node({}, { DCOUNTER_REFRESH_INTERVAL: "often" }))
      expect(Either.getLeft(bad).pipe(Option.map((e) => e.message))).toEqual(
        Option.some(`invalid DCOUNTER_REFRESH_INTERVAL="often" (--refresh-interval): expected a duration like 500ms, 2s or 1m`)
      )
      // a test's partial layer without the new field keeps the old behaviour
      const partial = { ...NodeConfig.defaults, syncInterval: Duration.millis(300) }
      expect(Duration.toMillis(NodeConfig.discoveryRefreshOf(partial))).toBe(300)
    }))

  it.effect("the WAL options reach the file WAL; their defaults are the WAL's own", () =>
    Effect.gen(function*() {
      const defaults = yield* node({})
      expect(NodeRole.walOptionsOf(defaults)).toEqual({
        flushInterval: WalFile.defaults.flushInterval,
        snapshotInterval: WalFile.defaults.snapshotInterval,
        snapshotEveryRecords: WalFile.defaults.snapshotEveryRecords
      })
      const given = yield* node({ "wal-flush-interval": "5ms", "snapshot-interval": "1m", "snapshot-every-records": "500" })
      const options = NodeRole.walOptionsOf(given)
      expect(Duration.toMillis(Duration.decode(options.flushInterval!))).toBe(5)
      expect(Duration.toMillis(Duration.decode(options.snapshotInterval!))).toBe(60_000)
      expect(options.snapshotEveryRecords).toBe(500)
      // a partial test layer without them: the WAL keeps its defaults
      expect(NodeRole.walOptionsOf({ ...NodeConfig.defaults, walFlushInterval: undefined })).not.toHaveProperty("flushInterval")
      const bad = yield* Effect.either(node({ "snapshot-every-records": "0" }))
      expect(Either.getLeft(bad).pipe(Option.map((e) => e.message))).toEqual(
        Option.some(`invalid --snapshot-every-records "0": expected an integer from 1 to 1000000000`)
      )
    }))
})

describe("GatewayConfig.config", () => {
  it.effect("--read-timeout and --write-timeout reach the forwarder; their defaults are its own", () =>
    Effect.gen(function*() {
      const defaults = yield* ConfigSource.load(GatewayConfig.config, { nodes: "http://a:1" }, {})
      expect(GatewayRole.upstreamOptionsOf(defaults)).toEqual(Upstream.defaultOptions)
      const given = yield* ConfigSource.load(GatewayConfig.config, { nodes: "http://a:1", "write-timeout": "3s" }, {
        DCOUNTER_READ_TIMEOUT: "500ms"
      })
      const options = GatewayRole.upstreamOptionsOf(given)
      expect(Duration.toMillis(Duration.decode(options.readTimeout))).toBe(500)
      expect(Duration.toMillis(Duration.decode(options.writeTimeout))).toBe(3000)
    }))
})

describe("the discovery client a role composes", () => {
  it.scoped("a node configured without discovery gets the client that lists no peers", () =>
    Effect.gen(function*() {
      const context = yield* Layer.build(
        NodeRole.layerDiscovery.pipe(
          Layer.provide(DataDirMemory.layer(MemoryDisk.make())),
          Layer.provide(NodeConfig.NodeConfig.layer())
        )
      )
      const client = Context.get(context, DiscoveryClient)
      expect(yield* client.peers).toEqual([])
      expect(yield* client.reachable).toBe(true)
    }))

  it.scoped("a gateway with static nodes only gets the client that lists no peers", () =>
    Effect.gen(function*() {
      const context = yield* Layer.build(
        GatewayRole.layerDiscovery.pipe(Layer.provide(GatewayConfig.GatewayConfig.layer({ nodes: ["http://a:1"] })))
      )
      expect(yield* Context.get(context, DiscoveryClient).peers).toEqual([])
    }))
})

describe("docs/configuration.md", () => {
  it("lists every option with its environment variable", () => {
    const doc = readFileSync(new URL("../../docs/configuration.md", import.meta.url), "utf8")
    for (const name of allFlagNames) {
      expect(doc, name).toContain(`--${name}`)
      expect(doc, name).toContain(envName(name))
    }
    for (const section of Object.values(sections)) expect(section.flags.length).toBeGreaterThan(0)
  })
})
