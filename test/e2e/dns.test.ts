/**
 * DNS discovery against a real DNS server: Debian's dnsmasq, started here on a loopback
 * port. Nodes sit on distinct loopback addresses (127.0.0.x), as pods on their own IPs,
 * and know nothing but `--discovery dns:...` and `--dns-server`. They find each other and
 * converge; a record added while they run (the hosts file changed, dnsmasq reloaded with
 * SIGHUP) brings a new node in; a gateway with `--nodes dns:NAME:HTTP_PORT` serves writes.
 * The same with SRV records (`dns+srv:`), whose ports differ per node.
 */
import { describe, expect, it } from "@effect/vitest"
import type { Scope } from "effect"
import { Duration, Effect } from "effect"
import { spawn, spawnSync } from "node:child_process"
import * as Dns from "node:dns"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Processes from "../../scripts/lib/Processes.js"
import * as LocalCluster from "./LocalCluster.js"

const DNSMASQ = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"].find((p) => fs.existsSync(p)) ??
  (spawnSync("sh", ["-c", "command -v dnsmasq"], { encoding: "utf8" }).stdout.trim() || undefined)

const START_TIMEOUT = Duration.seconds(30)
const quiet = ["--log-level", "warn"]

interface DnsServer {
  readonly addr: string
  /** rewrites the hosts file and has dnsmasq read it again (SIGHUP) */
  readonly setHosts: (lines: ReadonlyArray<string>) => Effect.Effect<void>
}

/** dnsmasq on 127.0.0.1:port, answering for `*.test` from a hosts file and the given records. */
const dnsmasq = (dir: string, records: ReadonlyArray<string>): Effect.Effect<DnsServer, Error, Scope.Scope> =>
  Effect.gen(function*() {
    const port = yield* Processes.freePort
    const hosts = path.join(dir, "hosts")
    fs.writeFileSync(hosts, "")
    // dnsmasq reads the hosts file again after dropping privileges: let it
    fs.chmodSync(dir, 0o755)
    fs.chmodSync(hosts, 0o644)
    const args = [
      "--no-daemon", `--port=${port}`, "--listen-address=127.0.0.1", "--bind-interfaces",
      "--no-resolv", "--no-hosts", "--local=/test/", `--addn-hosts=${hosts}`, "--pid-file=",
      `--user=${os.userInfo().username}`, "--log-facility=-", "--cache-size=0", ...records
    ]
    const output: Array<string> = []
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => spawn(DNSMASQ!, args, { stdio: ["ignore", "pipe", "pipe"] })),
      (child) =>
        Effect.async<void>((resume) => {
          if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
          child.once("exit", () => resume(Effect.void))
          child.kill("SIGTERM")
        }).pipe(Effect.timeout("5 seconds"), Effect.ignore)
    )
    child.stdout.on("data", (b: Buffer) => output.push(b.toString()))
    child.stderr.on("data", (b: Buffer) => output.push(b.toString()))
    const addr = `127.0.0.1:${port}`
    const resolver = new Dns.promises.Resolver({ timeout: 200, tries: 1 })
    resolver.setServers([addr])
    yield* LocalCluster.waitUntil(
      Effect.promise(() => resolver.resolve4("probe.test").then(() => true, (e: { code?: string }) => e.code === "ENOTFOUND")),
      Duration.seconds(10),
      "dnsmasq to answer"
    ).pipe(Effect.catchAllDefect(() => Effect.fail(new Error(`dnsmasq did not start: ${output.join("")}`))))
    return {
      addr,
      setHosts: (lines) =>
        Effect.sync(() => {
          fs.writeFileSync(hosts, lines.map((l) => `${l}\n`).join(""))
          child.kill("SIGHUP")
        })
    }
  })

interface Member {
  readonly gossip: string
  readonly http: string
}

const startNode = (dir: string, dns: DnsServer, member: Member, discovery: string) =>
  Effect.gen(function*() {
    const child = yield* Processes.dcounter(`node ${member.gossip}`, [
      "--role", "node",
      "--addr", member.gossip,
      "--http-addr", member.http,
      "--discovery", discovery,
      "--dns-server", dns.addr,
      "--data-dir", path.join(dir, member.gossip.replaceAll(":", "_")),
      "--sync-interval", "300ms",
      "--heartbeat-interval", "300ms",
      ...quiet
    ])
    yield* Processes.waitForHttp(`http://${member.http}/health`, { timeout: START_TIMEOUT, child })
    return child
  })

interface PeerEntry {
  readonly addr: string
  readonly status: string
  readonly sources: ReadonlyArray<string>
}

const peersOf = (member: Member) =>
  Effect.map(LocalCluster.json(`http://${member.http}/peers`), (body) =>
    (body as { peers?: ReadonlyArray<PeerEntry> } | undefined)?.peers ?? [])

/** Every member lists every other as alive, learned from DNS. */
const meshed = (members: ReadonlyArray<Member>, what: string) =>
  LocalCluster.waitUntil(
    Effect.map(Effect.forEach(members, peersOf), (lists) =>
      lists.every((peers, i) =>
        members.every((other, j) =>
          i === j ||
          peers.some((p) => p.addr === other.gossip && p.status === "alive" && p.sources.includes("discovery"))
        )
      )),
    START_TIMEOUT,
    what
  )

const valuesOf = (members: ReadonlyArray<Member>) =>
  LocalCluster.converged(members.map((m) => ({ name: m.http, addr: m.gossip, http: m.http, dataDir: "", child: undefined as never })))

const suite = DNSMASQ === undefined
  ? "DNS discovery with a real DNS server (skipped: dnsmasq is not installed; apt-get install dnsmasq)"
  : "DNS discovery with a real DNS server (dnsmasq)"

describe.skipIf(DNSMASQ === undefined)(suite, () => {
  it.scopedLive("dns:NAME: nodes find each other, a new record brings a node in, the gateway serves writes", () =>
    Effect.gen(function*() {
      const dir = yield* LocalCluster.tempDir("dcounter-dns-")
      const dns = yield* dnsmasq(dir, [])
      const gossipPort = yield* Processes.freePort
      const httpPort = yield* Processes.freePort
      const member = (i: number): Member => ({ gossip: `127.0.0.${i}:${gossipPort}`, http: `127.0.0.${i}:${httpPort}` })
      const first = [member(2), member(3)]
      yield* dns.setHosts(first.map((m) => `${m.gossip.split(":")[0]} nodes.test`))
      yield* Effect.forEach(first, (m) => startNode(dir, dns, m, "dns:nodes.test"), { concurrency: "unbounded" })
      yield* meshed(first, "the two nodes to find each other through DNS")

      for (let i = 0; i < 5; i++) {
        expect((yield* LocalCluster.post(`http://${first[i % 2]!.http}/increment`, 2)).status).toBe(200)
      }
      expect(yield* valuesOf(first)).toBe(10)

      // a record added while running: the running nodes list the new node from DNS
      const all = [...first, member(4)]
      yield* dns.setHosts(all.map((m) => `${m.gossip.split(":")[0]} nodes.test`))
      yield* startNode(dir, dns, all[2]!, "dns:nodes.test")
      yield* meshed(all, "the new node to be listed from DNS by every node")
      expect(yield* valuesOf(all)).toBe(10)

      // the gateway's nodes come from the same name, on the HTTP port
      const gatewayAddr = `127.0.0.1:${yield* Processes.freePort}`
      const gateway = yield* Processes.dcounter("gateway", [
        "--role", "gateway", "--addr", gatewayAddr,
        "--nodes", `dns:nodes.test:${httpPort}`, "--dns-server", dns.addr,
        "--refresh-interval", "300ms", ...quiet
      ])
      yield* Processes.waitForHttp(`http://${gatewayAddr}/health`, { timeout: START_TIMEOUT, child: gateway })
      yield* LocalCluster.waitUntil(
        Effect.map(LocalCluster.json(`http://${gatewayAddr}/nodes`), (body) => {
          const nodes = (body as { nodes?: ReadonlyArray<{ httpAddr: string; healthy: boolean }> } | undefined)?.nodes ?? []
          return all.every((m) => nodes.some((n) => n.httpAddr === m.http && n.healthy))
        }),
        START_TIMEOUT,
        "the gateway to check every node found by DNS"
      )
      const served = new Set<unknown>()
      for (let i = 0; i < 6; i++) {
        const res = yield* LocalCluster.post(`http://${gatewayAddr}/increment`, 1)
        expect(res.status, JSON.stringify(res.body)).toBe(200)
        served.add(res.body["node"])
      }
      expect(served.size).toBeGreaterThan(1)
      expect(yield* valuesOf(all)).toBe(16)
    }), { timeout: 120_000 })

  it.scopedLive("dns+srv:NAME: SRV records give each node's host and port; a target added while running joins", () =>
    Effect.gen(function*() {
      const dir = yield* LocalCluster.tempDir("dcounter-srv-")
      const ports = [yield* Processes.freePort, yield* Processes.freePort, yield* Processes.freePort]
      const httpPort = yield* Processes.freePort
      const members: ReadonlyArray<Member> = ports.map((port, i) => ({
        gossip: `127.0.0.${10 + i}:${port}`,
        http: `127.0.0.${10 + i}:${httpPort}`
      }))
      // the SRV records name all three targets from the start; the third has no address yet
      const dns = yield* dnsmasq(
        dir,
        members.map((m, i) => `--srv-host=_gossip._tcp.srv.test,n${i}.srv.test,${m.gossip.split(":")[1]}`)
      )
      const hostsFor = (n: number) => members.slice(0, n).map((m, i) => `${m.gossip.split(":")[0]} n${i}.srv.test`)
      yield* dns.setHosts(hostsFor(2))
      const first = members.slice(0, 2)
      yield* Effect.forEach(first, (m) => startNode(dir, dns, m, "dns+srv:_gossip._tcp.srv.test"), {
        concurrency: "unbounded"
      })
      yield* meshed(first, "the two nodes to find each other through SRV records")
      expect((yield* LocalCluster.post(`http://${first[0]!.http}/increment`, 5)).status).toBe(200)
      expect(yield* valuesOf(first)).toBe(5)

      yield* dns.setHosts(hostsFor(3))
      yield* startNode(dir, dns, members[2]!, "dns+srv:_gossip._tcp.srv.test")
      yield* meshed(members, "the third SRV target to be listed by every node")
      expect((yield* LocalCluster.post(`http://${members[2]!.http}/decrement`, 2)).status).toBe(200)
      expect(yield* valuesOf(members)).toBe(3)
    }), { timeout: 120_000 })
})
