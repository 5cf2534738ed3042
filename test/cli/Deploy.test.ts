/**
 * The options added for running beyond one machine: advertised addresses (a wildcard bind
 * is never advertised), DNS discovery, `--dns-server` and `--cluster-key-file`. Bad values
 * are one line naming the option; `Cli.program` turns them into exit status 2.
 */
import { NodeContext } from "@effect/platform-node"
import { afterEach, describe, expect, it, vi } from "../support/vitest.js"
import { Effect, Option, Redacted } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Cli from "../../src/cli/Cli.js"
import { fails, ok } from "./parseKit.js"
import { advertisedAddr, advertisedHttpAddr } from "../../src/config/NodeConfig.js"

const node = (...args: Array<string>) => ["--role", "node", ...args]
const gateway = (...args: Array<string>) => ["--role", "gateway", ...args]

const withKeyFile = (content: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dcounter-key-"))
      const file = path.join(dir, "cluster-key")
      fs.writeFileSync(file, content)
      return { dir, file }
    }),
    ({ dir }) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  )

describe("advertised addresses", () => {
  it.effect("default to the bound addresses", () =>
    Effect.gen(function*() {
      const { config } = yield* ok("Node", node("--addr", "127.0.0.2:9000"))
      expect(advertisedAddr(config)).toBe("127.0.0.2:9000")
      expect(advertisedHttpAddr(config)).toBe("127.0.0.2:8010")
    }))

  it.effect("are read from the flags and from DCOUNTER_ADVERTISE_ADDR / DCOUNTER_ADVERTISE_HTTP_ADDR", () =>
    Effect.gen(function*() {
      const flags = yield* ok(
        "Node",
        node("--addr", "127.0.0.1:9000", "--advertise-addr", "10.0.0.5:19000", "--advertise-http-addr", "10.0.0.5:18010")
      )
      expect(flags.config.addr).toBe("127.0.0.1:9000")
      expect(advertisedAddr(flags.config)).toBe("10.0.0.5:19000")
      expect(advertisedHttpAddr(flags.config)).toBe("10.0.0.5:18010")
      const env = yield* ok("Node", node(), {
        DCOUNTER_ADVERTISE_ADDR: "10.0.0.6:9000",
        DCOUNTER_ADVERTISE_HTTP_ADDR: "10.0.0.6:8010"
      })
      expect(advertisedAddr(env.config)).toBe("10.0.0.6:9000")
      expect(advertisedHttpAddr(env.config)).toBe("10.0.0.6:8010")
      const beaten = yield* ok("Node", node("--advertise-addr", "10.0.0.7:9000"), { DCOUNTER_ADVERTISE_ADDR: "10.0.0.6:9000" })
      expect(advertisedAddr(beaten.config)).toBe("10.0.0.7:9000")
    }))

  it.effect("a wildcard bind needs --advertise-addr; the wildcard HTTP bind takes its host", () =>
    Effect.gen(function*() {
      for (const addr of ["0.0.0.0:9000", "[::]:9000"]) {
        const message = yield* fails(node("--addr", addr))
        expect(message).toMatch(/^missing --advertise-addr: --addr ".*" binds every interface/)
      }
      const { config } = yield* ok("Node", node("--addr", "0.0.0.0:9000", "--advertise-addr", "10.1.2.3:9000"))
      expect(config.addr).toBe("0.0.0.0:9000")
      expect(config.httpAddr).toBe("0.0.0.0:8010")
      expect(advertisedAddr(config)).toBe("10.1.2.3:9000")
      expect(advertisedHttpAddr(config)).toBe("10.1.2.3:8010")
      const v6 = yield* ok("Node", node("--addr", "[::]:9000", "--advertise-addr", "[fd00::5]:9000"))
      expect(advertisedHttpAddr(v6.config)).toBe("[fd00::5]:8010")
    }))

  it.effect("a wildcard or malformed advertised address is refused, naming the option", () =>
    Effect.gen(function*() {
      expect(yield* fails(node("--advertise-addr", "0.0.0.0:9000"))).toMatch(
        /^invalid --advertise-addr "0.0.0.0:9000": a wildcard address/
      )
      expect(yield* fails(node("--advertise-http-addr", "[::]:8010"))).toMatch(/^invalid --advertise-http-addr/)
      expect(yield* fails(node("--advertise-addr", "nope"))).toMatch(/^invalid --advertise-addr "nope"/)
      expect(yield* fails(node(), { DCOUNTER_ADVERTISE_ADDR: "x:0" })).toMatch(
        /^invalid DCOUNTER_ADVERTISE_ADDR="x:0" \(--advertise-addr\)/
      )
      expect(yield* fails(gateway("--nodes", "http://a:1", "--advertise-addr", "a:1"))).toMatch(
        /^--advertise-addr does not apply to --role gateway/
      )
    }))
})

describe("DNS discovery", () => {
  it.effect("node --discovery dns:NAME, dns:NAME:PORT, dns+srv:NAME and --dns-server", () =>
    Effect.gen(function*() {
      const a = yield* ok("Node", node("--discovery", "dns:dcounter.default.svc.cluster.local", "--dns-server", "127.0.0.1:5353"))
      expect(Option.isNone(a.config.discovery)).toBe(true)
      expect(a.config.discoveryDns).toEqual(
        Option.some({ kind: "A", name: "dcounter.default.svc.cluster.local", port: undefined })
      )
      expect(a.config.dnsServer).toEqual(Option.some("127.0.0.1:5353"))
      const withPort = yield* ok("Node", node("--discovery", "dns:nodes.local:9100"))
      expect(withPort.config.discoveryDns).toEqual(Option.some({ kind: "A", name: "nodes.local", port: 9100 }))
      const srv = yield* ok("Node", node(), { DCOUNTER_DISCOVERY: "dns+srv:_gossip._tcp.nodes.local" })
      expect(srv.config.discoveryDns).toEqual(Option.some({ kind: "SRV", name: "_gossip._tcp.nodes.local", port: undefined }))
      const server = yield* ok("Node", node("--discovery", "127.0.0.1:8000"))
      expect(server.config.discovery).toEqual(Option.some("127.0.0.1:8000"))
      expect(Option.isNone(server.config.discoveryDns ?? Option.none())).toBe(true)
    }))

  it.effect("gateway --nodes dns:NAME:HTTP_PORT, alone or with URLs", () =>
    Effect.gen(function*() {
      const only = yield* ok("Gateway", gateway("--nodes", "dns:dcounter-nodes:8010", "--dns-server", "127.0.0.1:53"))
      expect(only.config.nodes).toEqual([])
      expect(only.config.nodesDns).toEqual([{ kind: "A", name: "dcounter-nodes", port: 8010 }])
      expect(only.config.dnsServer).toEqual(Option.some("127.0.0.1:53"))
      const mixed = yield* ok("Gateway", gateway("--nodes", "http://127.0.0.1:8010,dns:more.local:8011"))
      expect(mixed.config.nodes).toEqual(["http://127.0.0.1:8010"])
      expect(mixed.config.nodesDns).toEqual([{ kind: "A", name: "more.local", port: 8011 }])
    }))

  it.effect("bad DNS values: one line naming the option", () =>
    Effect.gen(function*() {
      expect(yield* fails(node("--discovery", "dns:"))).toMatch(/^invalid --discovery "dns:": .*the name is missing/)
      expect(yield* fails(node("--discovery", "dns+srv:"))).toMatch(/^invalid --discovery "dns\+srv:": .*name is missing/)
      expect(yield* fails(node("--discovery", "dns:a.b:99999"))).toMatch(/^invalid --discovery "dns:a.b:99999": .*port/)
      expect(yield* fails(node("--discovery", "dns:a.b:x"))).toMatch(/^invalid --discovery "dns:a.b:x": .*port "x"/)
      expect(yield* fails(node("--discovery", "dns:bad name"))).toMatch(/^invalid --discovery .*not a DNS name/)
      expect(yield* fails(node("--discovery", "dns+srv:a.b:9000"))).toMatch(/^invalid --discovery .*takes no port/)
      expect(yield* fails(node("--dns-server", "nowhere"))).toMatch(/^invalid --dns-server "nowhere"/)
      expect(yield* fails(gateway("--nodes", "dns:a:8010", "--dns-server", "kube-dns:53"))).toMatch(
        /^invalid --dns-server "kube-dns:53": expected the IP address of a DNS server/
      )
      expect(yield* fails(gateway("--nodes", "dns:nodes.local"))).toMatch(/^invalid --nodes .*HTTP port is missing/)
      expect(yield* fails(gateway("--nodes", "dns:"))).toMatch(/^invalid --nodes .*name is missing/)
      expect(yield* fails(gateway("--nodes", "dns:a:0"))).toMatch(/^invalid --nodes .*port "0"/)
    }))
})

describe("--cluster-key-file", () => {
  it.scopedLive("reads the key from a file on every role (trimmed), and DCOUNTER_CLUSTER_KEY_FILE", () =>
    Effect.gen(function*() {
      const { file } = yield* withKeyFile("s3cret\n")
      const n = yield* ok("Node", node("--cluster-key-file", file))
      expect(Option.map(n.config.clusterKey, Redacted.value)).toEqual(Option.some("s3cret"))
      const d = yield* ok("Discovery", ["--role", "discovery"], { DCOUNTER_CLUSTER_KEY_FILE: file })
      expect(Option.map(d.config.clusterKey, Redacted.value)).toEqual(Option.some("s3cret"))
      const g = yield* ok("Gateway", gateway("--nodes", "http://a:1", "--cluster-key-file", file))
      expect(Option.map(g.config.clusterKey, Redacted.value)).toEqual(Option.some("s3cret"))
    }))

  it.scopedLive("missing, empty, or given with --cluster-key: one line naming the option", () =>
    Effect.gen(function*() {
      const { dir, file } = yield* withKeyFile("  \n")
      expect(yield* fails(node("--cluster-key-file", file))).toBe(`invalid --cluster-key-file "${file}": the file is empty`)
      const missing = path.join(dir, "absent")
      expect(yield* fails(node("--cluster-key-file", missing))).toMatch(
        new RegExp(`^invalid --cluster-key-file "${missing}": cannot read it`)
      )
      expect(yield* fails(node("--cluster-key-file", dir))).toMatch(/^invalid --cluster-key-file .*cannot read it/)
      expect(yield* fails(node("--cluster-key", "k", "--cluster-key-file", file))).toMatch(
        /^--cluster-key-file and --cluster-key exclude each other/
      )
    }))
})

describe("exit status", () => {
  afterEach(() => {
    vi.restoreAllMocks()
  })

  it.effect("bad DNS, advertise and key-file values exit 2 with one line", () =>
    Effect.gen(function*() {
      const written: Array<string> = []
      vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
        written.push(String(chunk))
        return true
      })
      const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
        [node("--discovery", "dns:"), "--discovery"],
        [node("--discovery", "dns:a:70000"), "--discovery"],
        [node("--addr", "0.0.0.0:9000"), "--advertise-addr"],
        [node("--cluster-key-file", "/nonexistent/dcounter/key"), "--cluster-key-file"],
        [gateway("--nodes", "dns:x"), "--nodes"]
      ]
      for (const [argv, option] of cases) {
        written.length = 0
        const exit = yield* Cli.program(argv, {}).pipe(Effect.provide(NodeContext.layer), Effect.exit)
        let code = -1
        Cli.teardown(exit, (c) => {
          code = c
        })
        expect(code, argv.join(" ")).toBe(2)
        expect(written.join("").trim().split("\n"), argv.join(" ")).toHaveLength(1)
        expect(written.join(""), argv.join(" ")).toContain(option)
      }
    }))
})
