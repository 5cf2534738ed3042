/** The built `dcounter` program as a user runs it: exit statuses, one-line errors, help, signals. */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import * as Processes from "../../scripts/lib/Processes.js"
import { dcounter } from "./dcounterCli.js"

describe("dcounter (built)", () => {
  it.live("an invalid option exits 2 with one line on stderr naming it", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<[ReadonlyArray<string>, Record<string, string>, string]> = [
        [["--role", "node", "--sync-interval", "abc"], {}, `dcounter: invalid --sync-interval "abc": expected a duration like 500ms, 2s or 1m`],
        [["--role", "node", "--addr", "nowhere"], {}, `dcounter: invalid --addr "nowhere": expected host:port, like 127.0.0.1:9000`],
        [["--role", "gateway"], { DCOUNTER_NODES: "http://a:1", DCOUNTER_REFRESH_INTERVAL: "soon" }, `dcounter: invalid DCOUNTER_REFRESH_INTERVAL="soon"`],
        [["--role", "discovery", "--bogus"], {}, "dcounter: unknown option --bogus"],
        [[], {}, "dcounter: missing --role"]
      ]
      for (const [args, env, expected] of cases) {
        const result = yield* dcounter(args, env)
        expect(result.code, args.join(" ")).toBe(2)
        expect(result.stderr.trimEnd().split("\n"), args.join(" ")).toHaveLength(1)
        expect(result.stderr).toContain(expected)
        expect(result.stdout).toBe("")
      }
    }), { timeout: 120_000 })

  it.live("--help explains every role's options and exits 0", () =>
    Effect.gen(function*() {
      const help = yield* dcounter(["--help"])
      expect(help.code).toBe(0)
      for (const flag of ["--role", "--cluster-key", "--peer-ttl", "--http-addr", "--full-sync-interval", "--refresh-interval", "--node-count"]) {
        expect(help.stdout).toContain(flag)
      }
      const node = yield* dcounter(["--role", "node", "--help"])
      expect(node.code).toBe(0)
      expect(node.stdout).toContain("DCOUNTER_MAX_FAILS")
      expect(node.stdout).toContain("--refresh-interval") // the discovery refresh, since the node has one too
      expect(node.stdout).not.toContain("--peer-ttl")
    }), { timeout: 60_000 })

  it.scopedLive("a role prints where it listens and stops with exit 0 on SIGTERM", () =>
    Effect.gen(function*() {
      const addr = `127.0.0.1:${yield* Processes.freePort}`
      const child = yield* Processes.dcounter("discovery", ["--role", "discovery", "--addr", addr], { detached: false })
      yield* Processes.waitForHttp(`http://${addr}/health`, { timeout: Duration.seconds(60), child })
      expect(child.recentOutput().join("\n")).toContain(`listening on http://${addr}`)
      child.kill("SIGTERM")
      const exit = yield* child.exited
      expect(exit.code).toBe(0)
    }), { timeout: 90_000 })

  it.live("simulate prints a converged report", () =>
    Effect.gen(function*() {
      const result = yield* dcounter(["simulate", "--node-count", "3", "--duration", "1s", "--rate", "50", "--seed", "1", "--sync-interval", "200ms"])
      expect(result.code, result.stderr).toBe(0)
      expect(result.stdout).toContain("OK: every node holds every acknowledged write exactly once")
      expect(result.stdout).toMatch(/p50 .* p99 /)
    }), { timeout: 90_000 })
})
