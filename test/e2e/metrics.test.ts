/**
 * `/metrics` on every role, as Prometheus tooling reads it: `promtool check metrics`
 * (Debian's `prometheus` package) finds nothing to complain about, and the series users
 * alert on exist from start-up with HELP and TYPE, before any traffic.
 */
import { spawn, spawnSync } from "node:child_process"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Processes from "../../scripts/lib/Processes.js"
import * as LocalCluster from "./LocalCluster.js"

const hasPromtool = spawnSync("promtool", ["--version"], { stdio: "ignore" }).status === 0
if (!hasPromtool) console.warn("skipping the promtool checks: promtool not found (apt-get install prometheus)")

const promtool = (text: string) =>
  Effect.async<{ code: number | null; output: string }>((resume) => {
    const child = spawn("promtool", ["check", "metrics"], { stdio: ["pipe", "pipe", "pipe"] })
    let output = ""
    child.stdout.on("data", (c: Buffer) => (output += c.toString("utf8")))
    child.stderr.on("data", (c: Buffer) => (output += c.toString("utf8")))
    child.on("close", (code) => resume(Effect.succeed({ code, output })))
    child.stdin.end(text)
    return Effect.sync(() => child.kill("SIGKILL"))
  })

const scrape = (url: string) =>
  Effect.flatMap(Processes.httpGet(`${url}/metrics`), (answer) =>
    answer?.status === 200 ? Effect.succeed(answer.body) : Effect.die(new Error(`no metrics at ${url}: ${answer?.status}`)))

/** Every family must carry HELP and TYPE; returns the family names. */
const families = (text: string) => {
  const help = new Set([...text.matchAll(/^# HELP (\S+) /gm)].map((m) => m[1]!))
  const type = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!))
  return { help, type }
}

const everyRole = ["dcounter_build_info", "dcounter_http_requests_total", "dcounter_http_request_duration_seconds", "process_cpu_seconds_total"]
const nodeSeries = [
  "dcounter_counters",
  "dcounter_gossip_pushes_sent_total",
  "dcounter_gossip_pushes_received_total",
  "dcounter_bytes_in_total",
  "dcounter_bytes_out_total",
  "dcounter_frames_rejected_total",
  "dcounter_peers",
  "dcounter_wal_bytes_total",
  "dcounter_wal_segments",
  "dcounter_wal_disk_bytes",
  "dcounter_writes_total"
]

describe("/metrics", () => {
  it.scopedLive.skipIf(!hasPromtool)("promtool check metrics passes on every role; the series exist from start-up", () =>
    Effect.gen(function*() {
      const cluster = yield* LocalCluster.start({ nodes: 2 })
      const node = `http://${cluster.nodes[0]!.http}`
      const roles = { discovery: cluster.discovery, node, gateway: cluster.gateway }
      for (const [role, url] of Object.entries(roles)) {
        const text = yield* scrape(url)
        const check = yield* promtool(text)
        expect(check.output, `${role}: ${check.output}`).toBe("")
        expect(check.code, role).toBe(0)
        const { help, type } = families(text)
        expect([...type].filter((name) => !help.has(name)), role).toEqual([])
        expect(type.has("effect_fiber_active"), role).toBe(false)
        for (const name of everyRole) expect(type.has(name), `${role}: ${name}`).toBe(true)
        expect(text).toMatch(new RegExp(`^dcounter_build_info\\{version="\\d+\\.\\d+\\.\\d+",role="${role}",nodejs="v[^"]+"\\} 1$`, "m"))
      }
      const nodeText = yield* scrape(node)
      const { type } = families(nodeText)
      for (const name of nodeSeries) expect(type.has(name), name).toBe(true)
      for (const reason of ["too_large", "malformed", "unauthenticated", "undecodable", "handshake"]) {
        expect(nodeText).toContain(`dcounter_frames_rejected_total{reason="${reason}"} 0`)
      }
      for (const status of ["alive", "suspect", "dead"]) expect(nodeText).toContain(`dcounter_peers{status="${status}"}`)
      expect(nodeText).toMatch(/^dcounter_wal_segments [1-9]\d*$/m)

      // the count of counters follows writes
      expect(nodeText).toMatch(/^dcounter_counters 0$/m)
      yield* LocalCluster.post(`${node}/counters/a/increment`)
      yield* LocalCluster.post(`${node}/counters/b/increment`)
      expect(yield* scrape(node)).toMatch(/^dcounter_counters 2$/m)
      const after = yield* promtool(yield* scrape(cluster.gateway))
      expect(after.output).toBe("")
    }), { timeout: 180_000 })
})
