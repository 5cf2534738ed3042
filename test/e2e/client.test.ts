/**
 * The shell client (`dcounter get|inc|dec|list|status`) against a live cluster (discovery,
 * 2 nodes, gateway), as a script would use it: what it prints and each exit status.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import * as Processes from "../../scripts/lib/Processes.js"
import * as LocalCluster from "./LocalCluster.js"
import { dcounter } from "./dcounterCli.js"

describe("dcounter get|inc|dec|list|status", () => {
  it.scopedLive("talks to a gateway and a node; exit 0, 1, 2 and 3", () =>
    Effect.gen(function*() {
      const cluster = yield* LocalCluster.start({ nodes: 2 })
      const url = ["--url", cluster.gateway]
      const ok = (result: { code: number; stdout: string; stderr: string }) => {
        expect(result.code, result.stderr).toBe(0)
        expect(result.stderr).toBe("")
        return result.stdout
      }

      expect(ok(yield* dcounter(["get", ...url]))).toBe("0\n")
      expect(ok(yield* dcounter(["inc", ...url, "--by", "5"]))).toBe("5\n")
      expect(ok(yield* dcounter(["dec", ...url]))).toBe("4\n")
      // DCOUNTER_URL is the default; a flag beats it
      expect(ok(yield* dcounter(["get"], { DCOUNTER_URL: cluster.gateway }))).toBe("4\n")
      expect(ok(yield* dcounter(["get", ...url], { DCOUNTER_URL: "http://127.0.0.1:1" }))).toBe("4\n")

      expect(ok(yield* dcounter(["inc", "likes:a", ...url, "--by=7"]))).toBe("7\n")
      expect(ok(yield* dcounter(["dec", "likes:a", ...url, "--by", "2"]))).toBe("5\n")
      expect(ok(yield* dcounter(["inc", "views", ...url]))).toBe("1\n")
      const json = JSON.parse(ok(yield* dcounter(["get", "likes:a", ...url, "--json"])))
      expect(json).toMatchObject({ name: "likes:a", value: 5 })

      expect(ok(yield* dcounter(["list", ...url]))).toBe("default  4\nlikes:a  5\nviews    1\n")
      expect(JSON.parse(ok(yield* dcounter(["list", ...url, "--prefix", "likes", "--json"])))).toEqual({
        counters: [{ name: "likes:a", value: 5 }]
      })

      // status through the gateway (its view) and through a node (each node asked)
      yield* LocalCluster.waitUntil(
        Effect.map(dcounter(["status", ...url, "--json"]), (r) => r.code === 0 && JSON.parse(r.stdout).agree === true),
        Duration.seconds(30),
        "the gateway sees both nodes agree"
      )
      const status = ok(yield* dcounter(["status", ...url]))
      expect(status).toContain("2 of 2 nodes up: they agree on 4")
      for (const node of cluster.nodes) expect(status).toContain(node.http)
      const viaNode = JSON.parse(ok(yield* dcounter(["status", "--url", `http://${cluster.nodes[0]!.http}`, "--json"])))
      expect(viaNode).toMatchObject({ role: "node", agree: true, value: 4 })
      expect(viaNode.nodes).toHaveLength(2)

      // a node down: shown down, the live one still answers
      cluster.nodes[1]!.child.kill("SIGKILL")
      yield* cluster.nodes[1]!.child.exited
      const down = JSON.parse(ok(yield* dcounter(["status", "--url", `http://${cluster.nodes[0]!.http}`, "--json"])))
      expect(down.nodes.map((n: { status: string }) => n.status).sort()).toEqual(["down", "up"])
      expect(down).toMatchObject({ agree: true, value: 4 })

      // 1: refused by the server (discovery has no /counter: 404), the server's message shown
      const refused = yield* dcounter(["get", "--url", cluster.discovery])
      expect(refused.code).toBe(1)
      expect(refused.stdout).toBe("")
      expect(refused.stderr).toMatch(/^dcounter: GET .*\/counter: 404 not_found: .+\n$/)

      // 2: usage, one line naming what is wrong, nothing sent
      for (
        const [args, text] of [
          [["inc", "--by", "0", ...url], `invalid --by "0"`],
          [["inc", "--by", "9007199254740992", ...url], "9007199254740991"],
          [["get", "a b", ...url], `invalid counter name "a b"`],
          [["list", "extra", ...url], `unexpected argument "extra"`],
          [["get", "--by", "2", ...url], `--by does not apply to "dcounter get"`],
          [["status", "--url", "ftp://x"], `invalid --url "ftp://x"`],
          [["get", "--frobnicate"], "unknown option --frobnicate"]
        ] as const
      ) {
        const result = yield* dcounter(args)
        expect(result.code, args.join(" ")).toBe(2)
        expect(result.stderr.trimEnd().split("\n")).toHaveLength(1)
        expect(result.stderr).toContain(text)
      }
      expect(ok(yield* dcounter(["get", ...url]))).toBe("4\n")

      // 3: nothing answers at the url
      const port = yield* Processes.freePort
      const unreachable = yield* dcounter(["inc", "--url", `http://127.0.0.1:${port}`])
      expect(unreachable.code).toBe(3)
      expect(unreachable.stderr).toContain(`nothing answered at http://127.0.0.1:${port}/increment`)

      const help = yield* dcounter(["get", "--help"])
      expect(help.code).toBe(0)
      expect(help.stdout).toContain("DCOUNTER_URL")
    }), { timeout: 240_000 })
})
