/**
 * JSON logs as a log pipeline reads them: every line of a role carries its role and
 * addresses (and a node's id) as fields, a line about an HTTP request its request id (the
 * client's `X-Request-Id`, echoed, or one made for the line and sent back), normal
 * operation logs no warning, and the small
 * commands (`-V`, `wal check --log-format json`) answer as documented.
 */
import { execFile } from "node:child_process"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Processes from "../../scripts/lib/Processes.js"
import { tempDir } from "./LocalCluster.js"

interface Line {
  readonly level: string
  readonly message: string
  readonly annotations: Record<string, unknown>
}

const run = (args: ReadonlyArray<string>) =>
  Effect.async<{ code: number; stdout: string; stderr: string }>((resume) => {
    const child = execFile(process.execPath, [Processes.dcounterBin, ...args], { timeout: 60_000 }, (error, stdout, stderr) =>
      resume(Effect.succeed({ code: error === null ? 0 : typeof error.code === "number" ? error.code : -1, stdout, stderr })))
    return Effect.sync(() => child.kill())
  })

describe("logs", () => {
  it.scopedLive("JSON lines carry role, addresses and node id as fields; no warning in normal operation", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("dcounter-logs-")
      const lines: Record<string, Array<string>> = { discovery: [], node: [], gateway: [] }
      const json = ["--log-format", "json", "--log-level", "info"]
      const collect = (role: string) => ({ onLine: (l: string) => lines[role]!.push(l) })
      const discoveryAddr = `127.0.0.1:${yield* Processes.freePort}`
      const addr = `127.0.0.1:${yield* Processes.freePort}`
      const httpAddr = `127.0.0.1:${yield* Processes.freePort}`
      const gatewayAddr = `127.0.0.1:${yield* Processes.freePort}`
      const discovery = yield* Processes.dcounter("discovery", ["--role", "discovery", "--addr", discoveryAddr, ...json], collect("discovery"))
      yield* Processes.waitForHttp(`http://${discoveryAddr}/health`, { timeout: "60 seconds", child: discovery })
      const node = yield* Processes.dcounter("node", [
        "--role", "node", "--addr", addr, "--http-addr", httpAddr, "--discovery", discoveryAddr,
        "--data-dir", path.join(dir, "node"), ...json
      ], collect("node"))
      yield* Processes.waitForHttp(`http://${httpAddr}/health`, { timeout: "60 seconds", child: node })
      // the gateway at debug: a refused request is a line there, with its request id
      const gateway = yield* Processes.dcounter("gateway", [
        "--role", "gateway", "--addr", gatewayAddr, "--discovery", discoveryAddr, "--log-format", "json", "--log-level", "debug"
      ], collect("gateway"))
      yield* Processes.waitForHttp(`http://${gatewayAddr}/health`, { timeout: "60 seconds", child: gateway })
      yield* Effect.promise(() => fetch(`http://${gatewayAddr}/increment`, { method: "POST" }))
      const refused = yield* Effect.promise(() =>
        fetch(`http://${gatewayAddr}/counters?limit=0`, { headers: { "x-request-id": "e2e-req-1" }, signal: AbortSignal.timeout(10_000) }))
      expect(refused.status).toBe(400)
      expect(refused.headers.get("x-request-id")).toBe("e2e-req-1")
      const unnamed = yield* Effect.promise(() => fetch(`http://${gatewayAddr}/counters/a%20b`, { signal: AbortSignal.timeout(10_000) }))
      expect(unnamed.status).toBe(400)
      const madeId = unnamed.headers.get("x-request-id")
      expect(madeId).toMatch(/^[0-9a-f-]{36}$/)
      // at info (the node), nothing is logged about a refusal, so no id is made
      const quiet = yield* Effect.promise(() => fetch(`http://${httpAddr}/counters?limit=0`, { signal: AbortSignal.timeout(10_000) }))
      expect(quiet.status).toBe(400)
      expect(quiet.headers.get("x-request-id")).toBe(null)
      yield* Effect.forEach([gateway, node, discovery], (c) => Processes.stop(c), { discard: true })

      const parsed = (role: string) => lines[role]!.map((l) => JSON.parse(l) as Line)
      for (const [role, own] of [["discovery", { addr: discoveryAddr }], ["node", { addr, httpAddr }], ["gateway", { addr: gatewayAddr }]] as const) {
        const all = parsed(role)
        expect(all.length, role).toBeGreaterThan(2)
        for (const line of all) {
          expect(line.annotations, `${role}: ${line.message}`).toMatchObject({ role, ...own })
          expect(line.level, `${role}: ${line.message}`).not.toMatch(/warn|error/)
        }
      }
      const withId = (id: string) => parsed("gateway").find((l) => l.annotations["requestId"] === id)
      expect(withId("e2e-req-1")).toMatchObject({ level: "debug", annotations: { status: 400, role: "gateway" } })
      expect(withId("e2e-req-1")!.message).toContain("limit must be")
      expect(withId(madeId!)).toMatchObject({ level: "debug", annotations: { status: 400 } })
      expect(parsed("node").some((l) => l.annotations["requestId"] !== undefined)).toBe(false)

      const up = parsed("node").find((l) => / up: gossip on /.test(l.message))
      expect(up).toBeDefined()
      const id = /^node (\S+) /.exec(up!.message)![1]
      expect(up!.annotations["nodeId"]).toBe(id)
      // every line from the moment the replica id is known carries it
      const from = parsed("node").findIndex((l) => l.annotations["nodeId"] !== undefined)
      expect(parsed("node").slice(from).every((l) => l.annotations["nodeId"] === id)).toBe(true)

      // the small commands
      for (const flag of ["-V", "--version"]) {
        const version = yield* run([flag])
        expect(version.code).toBe(0)
        expect(version.stdout).toMatch(/^dcounter \d+\.\d+\.\d+\n$/)
      }
      const check = yield* run(["wal", "check", "--data-dir", path.join(dir, "node"), "--log-format", "json"])
      expect(check.code, check.stderr).toBe(0)
      expect(JSON.parse(check.stdout)).toMatchObject({ mode: "check", status: "ok", replicaId: id })
    }), { timeout: 180_000 })
})
