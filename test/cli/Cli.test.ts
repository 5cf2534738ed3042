import { NodeContext } from "@effect/platform-node"
import { afterEach, describe, expect, it, vi } from "@effect/vitest"
import { Effect } from "effect"
import * as Cli from "../../src/cli/Cli.js"

const exitCodeOf = (argv: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const exit = yield* Cli.program(argv, env).pipe(Effect.provide(NodeContext.layer), Effect.exit)
    let code = -1
    Cli.teardown(exit, (c) => {
      code = c
    })
    return code
  })

describe("Cli.program exit status", () => {
  afterEach(() => {
    vi.restoreAllMocks()
  })

  it.effect("a bad value exits 2 with exactly one line on stderr", () =>
    Effect.gen(function*() {
      const written: Array<string> = []
      vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
        written.push(String(chunk))
        return true
      })
      expect(yield* exitCodeOf(["--role", "node", "--sync-interval", "abc"])).toBe(2)
      expect(written).toEqual([
        `dcounter: invalid --sync-interval "abc": expected a duration like 500ms, 2s or 1m\n`
      ])
      written.length = 0
      expect(yield* exitCodeOf(["--role", "gateway"], { DCOUNTER_REFRESH_INTERVAL: "x", DCOUNTER_NODES: "a:1" })).toBe(2)
      expect(written.join("").trim().split("\n")).toHaveLength(1)
      expect(written.join("")).toContain("DCOUNTER_REFRESH_INTERVAL")
    }))

  it.effect("help exits 0 and prints to stdout", () =>
    Effect.gen(function*() {
      const out: Array<string> = []
      vi.spyOn(console, "log").mockImplementation((...args: Array<unknown>) => {
        out.push(args.join(" "))
      })
      expect(yield* exitCodeOf(["--help"])).toBe(0)
      expect(out.join("\n")).toContain("--role discovery|node|gateway")
    }))
})
