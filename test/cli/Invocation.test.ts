import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Option, Redacted } from "effect"
import { allFlagNames, envName, flagNamesOf, sections } from "../../src/cli/Flags.js"
import * as Help from "../../src/cli/Help.js"
import type { Env } from "../../src/config/Usage.js"
import { fails, ok } from "./parseKit.js"

describe("dcounter --role node", () => {
  it.effect("applies the contract defaults", () =>
    Effect.gen(function*() {
      const { config, logging } = yield* ok("Node", ["--role", "node"])
      expect(config.addr).toBe("127.0.0.1:9000")
      expect(config.httpAddr).toBe("127.0.0.1:8010")
      expect(config.dataDir).toBe("./data/127.0.0.1_9000")
      expect(Option.isNone(config.discovery)).toBe(true)
      expect(config.peers).toEqual([])
      expect(Duration.toMillis(config.syncInterval)).toBe(2000)
      expect(Duration.toMillis(config.fullSyncInterval)).toBe(20_000)
      expect(config.maxSyncPeers).toBe(2)
      expect(Duration.toMillis(config.heartbeatInterval)).toBe(1000)
      expect(config.maxFails).toBe(5)
      expect(Duration.toMillis(config.failureTimeout)).toBe(30_000)
      expect(Option.isNone(config.clusterKey)).toBe(true)
      expect(logging).toEqual({ level: "info", format: "pretty" })
    }))

  it.effect("reads every node flag", () =>
    Effect.gen(function*() {
      const { config, logging } = yield* ok("Node", [
        "--role=node",
        "--addr", "127.0.0.3:9003",
        "--http-addr", "127.0.0.3:7000",
        "--discovery", "127.0.0.1:8000",
        "--peers", "127.0.0.1:9001, 127.0.0.2:9002,",
        "--data-dir", "/tmp/x",
        "--sync-interval", "500ms",
        "--full-sync-interval", "1m",
        "--max-sync-peers", "3",
        "--heartbeat-interval", "250ms",
        "--max-fails", "7",
        "--failure-timeout", "1.5s",
        "--eager-push", "false",
        "--push-window", "5ms",
        "--cluster-key", "s3cret",
        "--log-level", "debug",
        "--log-format", "json"
      ])
      expect(config.addr).toBe("127.0.0.3:9003")
      expect(config.httpAddr).toBe("127.0.0.3:7000")
      expect(config.discovery).toEqual(Option.some("127.0.0.1:8000"))
      expect(config.peers).toEqual(["127.0.0.1:9001", "127.0.0.2:9002"])
      expect(config.dataDir).toBe("/tmp/x")
      expect(Duration.toMillis(config.syncInterval)).toBe(500)
      expect(Duration.toMillis(config.fullSyncInterval)).toBe(60_000)
      expect(config.maxSyncPeers).toBe(3)
      expect(Duration.toMillis(config.heartbeatInterval)).toBe(250)
      expect(config.maxFails).toBe(7)
      expect(Duration.toMillis(config.failureTimeout)).toBe(1500)
      expect(config.eagerPush).toBe(false)
      expect(Duration.toMillis(config.pushWindow)).toBe(5)
      expect(Option.map(config.clusterKey, Redacted.value)).toEqual(Option.some("s3cret"))
      expect(logging).toEqual({ level: "debug", format: "json" })
    }))

  it.effect("derives --http-addr, --data-dir and --full-sync-interval from --addr and --sync-interval", () =>
    Effect.gen(function*() {
      const { config } = yield* ok("Node", ["--role", "node", "--addr", "10.0.0.5:9004", "--sync-interval", "3s"])
      expect(config.httpAddr).toBe("10.0.0.5:8014")
      expect(config.dataDir).toBe("./data/10.0.0.5_9004")
      expect(Duration.toMillis(config.fullSyncInterval)).toBe(30_000)
    }))

  it.effect("reads every option from its DCOUNTER_ variable, and a flag beats the variable", () =>
    Effect.gen(function*() {
      const env: Env = {
        DCOUNTER_ROLE: "node",
        DCOUNTER_ADDR: "127.0.0.1:9002",
        DCOUNTER_HTTP_ADDR: "127.0.0.1:7002",
        DCOUNTER_DISCOVERY: "127.0.0.1:8000",
        DCOUNTER_PEERS: "127.0.0.1:9001",
        DCOUNTER_DATA_DIR: "/var/lib/dcounter",
        DCOUNTER_SYNC_INTERVAL: "1s",
        DCOUNTER_FULL_SYNC_INTERVAL: "4s",
        DCOUNTER_MAX_SYNC_PEERS: "4",
        DCOUNTER_HEARTBEAT_INTERVAL: "2s",
        DCOUNTER_MAX_FAILS: "9",
        DCOUNTER_FAILURE_TIMEOUT: "1m",
        DCOUNTER_EAGER_PUSH: "no",
        DCOUNTER_PUSH_WINDOW: "1ms",
        DCOUNTER_CLUSTER_KEY: "k",
        DCOUNTER_LOG_LEVEL: "warn",
        DCOUNTER_LOG_FORMAT: "json"
      }
      const fromEnv = yield* ok("Node", [], env)
      expect(fromEnv.config.addr).toBe("127.0.0.1:9002")
      expect(fromEnv.config.httpAddr).toBe("127.0.0.1:7002")
      expect(fromEnv.config.discovery).toEqual(Option.some("127.0.0.1:8000"))
      expect(fromEnv.config.peers).toEqual(["127.0.0.1:9001"])
      expect(fromEnv.config.dataDir).toBe("/var/lib/dcounter")
      expect(Duration.toMillis(fromEnv.config.syncInterval)).toBe(1000)
      expect(Duration.toMillis(fromEnv.config.fullSyncInterval)).toBe(4000)
      expect(fromEnv.config.maxSyncPeers).toBe(4)
      expect(Duration.toMillis(fromEnv.config.heartbeatInterval)).toBe(2000)
      expect(fromEnv.config.maxFails).toBe(9)
      expect(Duration.toMillis(fromEnv.config.failureTimeout)).toBe(60_000)
      expect(fromEnv.config.eagerPush).toBe(false)
      expect(Duration.toMillis(fromEnv.config.pushWindow)).toBe(1)
      expect(Option.map(fromEnv.config.clusterKey, Redacted.value)).toEqual(Option.some("k"))
      expect(fromEnv.logging).toEqual({ level: "warn", format: "json" })

      const flagWins = yield* ok("Node", ["--addr", "127.0.0.1:9005", "--sync-interval", "700ms", "--log-level", "error"], env)
      expect(flagWins.config.addr).toBe("127.0.0.1:9005")
      expect(Duration.toMillis(flagWins.config.syncInterval)).toBe(700)
      expect(flagWins.logging.level).toBe("error")
      // a variable set to the empty string counts as unset
      const empty = yield* ok("Node", ["--role", "node"], { DCOUNTER_PEERS: "", DCOUNTER_SYNC_INTERVAL: "" })
      expect(Duration.toMillis(empty.config.syncInterval)).toBe(2000)
    }))
})

describe("dcounter --role discovery and gateway", () => {
  it.effect("discovery defaults and flags", () =>
    Effect.gen(function*() {
      const defaults = yield* ok("Discovery", ["--role", "discovery"])
      expect(defaults.config.addr).toBe("127.0.0.1:8000")
      expect(Duration.toMillis(defaults.config.peerTtl)).toBe(5000)
      const given = yield* ok("Discovery", [
        "--role", "discovery", "--addr", "0.0.0.0:8100", "--peer-ttl", "10s", "--max-peers", "50", "--cluster-key", "k"
      ])
      expect(given.config.addr).toBe("0.0.0.0:8100")
      expect(Duration.toMillis(given.config.peerTtl)).toBe(10_000)
      expect(given.config.maxPeers).toBe(50)
      expect(Option.isSome(given.config.clusterKey)).toBe(true)
      const env = yield* ok("Discovery", [], { DCOUNTER_ROLE: "discovery", DCOUNTER_PEER_TTL: "2s", DCOUNTER_MAX_PEERS: "3" })
      expect(Duration.toMillis(env.config.peerTtl)).toBe(2000)
      expect(env.config.maxPeers).toBe(3)
    }))

  it.effect("gateway defaults and flags", () =>
    Effect.gen(function*() {
      const { config } = yield* ok("Gateway", [
        "--role", "gateway", "--discovery", "127.0.0.1:8000", "--nodes", "http://127.0.0.1:8010/,127.0.0.1:8011",
        "--refresh-interval", "500ms"
      ])
      expect(config.addr).toBe("127.0.0.1:8080")
      expect(config.discovery).toEqual(Option.some("127.0.0.1:8000"))
      expect(config.nodes).toEqual(["http://127.0.0.1:8010", "http://127.0.0.1:8011"])
      expect(Duration.toMillis(config.refreshInterval)).toBe(500)
      const env = yield* ok("Gateway", ["--role", "gateway"], {
        DCOUNTER_ADDR: "0.0.0.0:8081",
        DCOUNTER_NODES: "http://node1:8010",
        DCOUNTER_REFRESH_INTERVAL: "1m"
      })
      expect(env.config.addr).toBe("0.0.0.0:8081")
      expect(env.config.nodes).toEqual(["http://node1:8010"])
      expect(Duration.toMillis(env.config.refreshInterval)).toBe(60_000)
    }))
})

describe("options added with the one Config per role", () => {
  it.effect("node --refresh-interval and gateway --read-timeout/--write-timeout, each only on its role", () =>
    Effect.gen(function*() {
      const node = yield* ok("Node", ["--role", "node", "--refresh-interval", "10s", "--snapshot-interval", "1h"])
      expect(Option.map(node.config.refreshInterval ?? Option.none(), Duration.toMillis)).toEqual(Option.some(10_000))
      expect(Duration.toMillis(node.config.snapshotInterval!)).toBe(3_600_000)
      const gateway = yield* ok("Gateway", ["--role", "gateway", "--nodes", "http://a:1", "--write-timeout", "3s"])
      expect(Duration.toMillis(gateway.config.writeTimeout!)).toBe(3000)
      expect(yield* fails(["--role", "node", "--write-timeout", "3s"])).toBe(
        "--write-timeout does not apply to --role node (see dcounter --role node --help)"
      )
      expect(yield* fails(["--role", "discovery", "--refresh-interval", "3s"])).toMatch(/^--refresh-interval does not apply/)
    }))
})

describe("dcounter simulate and wal", () => {
  it.effect("simulate defaults and flags", () =>
    Effect.gen(function*() {
      const defaults = yield* ok("Simulate", ["simulate"])
      expect(defaults.options.nodeCount).toBe(10)
      expect(defaults.logging.level).toBe("error")
      expect(Option.isNone(defaults.options.seed)).toBe(true)
      const given = yield* ok("Simulate", [
        "simulate", "--node-count", "5", "--duration", "3s", "--rate", "100", "--partitions", "2", "--crashes", "1",
        "--seed", "42", "--sync-interval", "200ms", "--converge-timeout", "20s", "--drop", "0.1", "--delay", "0ms"
      ])
      expect(given.options.drop).toBe(0.1)
      expect(Duration.toMillis(given.options.delay)).toBe(0)
      expect(given.options).toMatchObject({ nodeCount: 5, rate: 100, partitions: 2, crashes: 1, seed: Option.some(42) })
      expect(Duration.toMillis(given.options.duration)).toBe(3000)
      expect(Duration.toMillis(given.options.syncInterval)).toBe(200)
      expect(Duration.toMillis(given.options.convergeTimeout)).toBe(20_000)
    }))

  it.effect("wal check|repair need --data-dir", () =>
    Effect.gen(function*() {
      const check = yield* ok("Wal", ["wal", "check", "--data-dir", "/tmp/d"])
      expect(check).toMatchObject({ action: "check", dataDir: "/tmp/d" })
      const repair = yield* ok("Wal", ["wal", "repair"], { DCOUNTER_DATA_DIR: "/tmp/e" })
      expect(repair).toMatchObject({ action: "repair", dataDir: "/tmp/e" })
      expect(yield* fails(["wal", "check"])).toMatch(/missing --data-dir/)
      expect(yield* fails(["wal", "fix", "--data-dir", "x"])).toMatch(/wal check/)
    }))
})

describe("invalid values: one line naming the option", () => {
  it.effect("durations", () =>
    Effect.gen(function*() {
      expect(yield* fails(["--role", "node", "--sync-interval", "abc"])).toBe(
        `invalid --sync-interval "abc": expected a duration like 500ms, 2s or 1m`
      )
      for (const bad of ["10", "0s", "-1s", "2 s", "1d", "ms"]) {
        expect(yield* fails(["--role", "node", "--heartbeat-interval", bad])).toContain("--heartbeat-interval")
      }
      expect(yield* fails(["--role", "node"], { DCOUNTER_FAILURE_TIMEOUT: "soon" })).toBe(
        `invalid DCOUNTER_FAILURE_TIMEOUT="soon" (--failure-timeout): expected a duration like 500ms, 2s or 1m`
      )
    }))

  it.effect("addresses", () =>
    Effect.gen(function*() {
      for (const bad of ["localhost", "1.2.3.4:0", "1.2.3.4:70000", ":9000", "a b:1", "host:port"]) {
        expect(yield* fails(["--role", "node", "--addr", bad])).toBe(
          `invalid --addr "${bad}": expected host:port, like 127.0.0.1:9000`
        )
      }
      expect(yield* fails(["--role", "node", "--peers", "a:1,b"])).toMatch(/^invalid --peers "a:1,b": "b" is not host:port/)
      expect(yield* fails(["--role", "gateway", "--nodes", "ftp://a:1"])).toMatch(/^invalid --nodes/)
      expect(yield* fails(["--role", "gateway", "--nodes", "http://a"])).toMatch(/^invalid --nodes/)
      expect(yield* fails(["--role", "gateway", "--discovery", "x"])).toMatch(/^invalid --discovery/)
      expect(yield* fails(["--role", "node", "--addr", "127.0.0.1:500"])).toMatch(/^invalid --addr .*give --http-addr/)
      expect(yield* fails(["--role", "node", "--addr", "127.0.0.1:9000", "--http-addr", "127.0.0.1:9000"])).toMatch(
        /^invalid --http-addr/
      )
    }))

  it.effect("numbers, words and roles", () =>
    Effect.gen(function*() {
      expect(yield* fails(["--role", "node", "--max-fails", "0"])).toBe(
        `invalid --max-fails "0": expected an integer from 1 to 1000`
      )
      expect(yield* fails(["--role", "node", "--max-sync-peers", "2.5"])).toMatch(/^invalid --max-sync-peers/)
      expect(yield* fails(["--role", "node", "--log-level", "verbose"])).toBe(
        `invalid --log-level "verbose": expected one of debug, info, warn, error`
      )
      expect(yield* fails(["--role", "node", "--log-format", "xml"])).toMatch(/^invalid --log-format/)
      expect(yield* fails(["--role", "node", "--eager-push", "maybe"])).toMatch(/^invalid --eager-push/)
      expect(yield* fails(["--role", "node", "--cluster-key", " "])).toMatch(/^invalid --cluster-key/)
      expect(yield* fails(["--role", "leader"])).toBe(`invalid --role "leader": expected one of discovery, node, gateway`)
      expect(yield* fails([], { DCOUNTER_ROLE: "x" })).toMatch(/^invalid DCOUNTER_ROLE="x" \(--role\)/)
      expect(yield* fails([])).toMatch(/^missing --role/)
      expect(yield* fails(["simulate", "--node-count", "0"])).toMatch(/^invalid --node-count/)
      expect(yield* fails(["simulate", "--seed", "x"])).toMatch(/^invalid --seed/)
      expect(yield* fails(["simulate", "--drop", "1.5"])).toMatch(/^invalid --drop/)
      expect(yield* fails(["simulate", "--delay", "-1ms"])).toMatch(/^invalid --delay/)
    }))

  it.effect("unknown, misplaced, repeated and missing options", () =>
    Effect.gen(function*() {
      expect(yield* fails(["--role", "node", "--bogus", "1"])).toMatch(/^unknown option --bogus/)
      expect(yield* fails(["--role", "node", "--sync-intervl", "1s"])).toMatch(/--sync-intervl/)
      expect(yield* fails(["--role", "gateway", "--nodes", "a:1", "--data-dir", "x"])).toBe(
        "--data-dir does not apply to --role gateway (see dcounter --role gateway --help)"
      )
      expect(yield* fails(["--role", "node", "--addr", "a:1", "--addr", "b:2"])).toBe("--addr is given more than once")
      expect(yield* fails(["--role", "node", "--addr"])).toMatch(/--addr/)
      expect(yield* fails(["--role", "node", "extra"])).toBe(`unexpected argument "extra"`)
      expect(yield* fails(["frobnicate"])).toMatch(/^unknown command "frobnicate"/)
      expect(yield* fails(["--role", "gateway"])).toMatch(/--discovery .* --nodes/)
    }))
})

describe("help", () => {
  it.effect("--help anywhere shows help; per role only that role's flags", () =>
    Effect.gen(function*() {
      const full = yield* ok("Help", ["--help"])
      for (const name of allFlagNames) expect(full.text).toContain(`--${name} `)
      for (const name of allFlagNames) expect(full.text).toContain(envName(name))
      const gateway = yield* ok("Help", ["--role", "gateway", "--help"])
      expect(gateway.text).toContain("--refresh-interval")
      expect(gateway.text).not.toContain("--sync-interval")
      const node = yield* ok("Help", ["--role", "node", "-h"])
      for (const name of flagNamesOf("node")) expect(node.text).toContain(`--${name} `)
      expect((yield* ok("Help", ["simulate", "--help"])).text).toContain("--node-count")
      expect((yield* ok("Help", ["wal", "--help"])).text).toContain("--data-dir")
    }))

  it("documents a default for every option but --role", () => {
    for (const section of Object.values(sections)) {
      for (const flag of section.flags) {
        if (flag.name !== "role") expect(flag.default, flag.name).toBeDefined()
      }
    }
    expect(Help.full().split("\n").every((line) => line.length <= 100)).toBe(true)
  })
})
