/** The node's Redis-protocol options: --resp-addr, --resp-password, --resp-password-file. */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Redacted } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { Env } from "../../src/config/Usage.js"
import { fails, ok } from "./parseKit.js"

const config = (argv: ReadonlyArray<string>, env: Env = {}) =>
  Effect.map(ok("Node", ["--role", "node", ...argv], env), (node) => node.config)

const usage = (argv: ReadonlyArray<string>, env: Env = {}) => fails(["--role", "node", ...argv], env)


const password = (c: { readonly respPassword: Option.Option<Redacted.Redacted<string>> }) =>
  Option.map(c.respPassword, Redacted.value)

describe("dcounter --role node: RESP options", () => {
  it.effect("off by default; --resp-addr and DCOUNTER_RESP_ADDR (a flag beats it)", () =>
    Effect.gen(function*() {
      const d = yield* config([])
      expect(Option.isNone(d.respAddr)).toBe(true)
      expect(Option.isNone(d.respPassword)).toBe(true)
      expect((yield* config(["--resp-addr", "127.0.0.1:6379"])).respAddr).toEqual(Option.some("127.0.0.1:6379"))
      expect((yield* config([], { DCOUNTER_RESP_ADDR: "127.0.0.1:6380" })).respAddr).toEqual(Option.some("127.0.0.1:6380"))
      expect((yield* config(["--resp-addr", "127.0.0.1:6381"], { DCOUNTER_RESP_ADDR: "127.0.0.1:6380" })).respAddr).toEqual(
        Option.some("127.0.0.1:6381")
      )
    }))

  it.effect("bad values exit with one line naming the option", () =>
    Effect.gen(function*() {
      expect(yield* usage(["--resp-addr", "nope"])).toMatch(/^invalid --resp-addr "nope"/)
      expect(yield* usage([], { DCOUNTER_RESP_ADDR: "nope" })).toMatch(/^invalid DCOUNTER_RESP_ADDR="nope" \(--resp-addr\)/)
      expect(yield* usage(["--resp-addr", "127.0.0.1:9000"])).toMatch(/^invalid --resp-addr .*must differ/)
      expect(yield* usage(["--resp-password", "a", "--resp-password-file", "/x"])).toMatch(/exclusive/)
      expect(yield* usage(["--resp-password-file", "/nonexistent/dcounter-pw"])).toMatch(
        /^invalid --resp-password-file "\/nonexistent\/dcounter-pw": cannot read it/
      )
    }))

  it.effect("the password from the flag, the variable or a file (one trailing newline dropped)", () =>
    Effect.gen(function*() {
      expect(password(yield* config(["--resp-password", "pw"]))).toEqual(Option.some("pw"))
      expect(password(yield* config([], { DCOUNTER_RESP_PASSWORD: "env" }))).toEqual(Option.some("env"))
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dcounter-resp-pw-"))
      try {
        const file = path.join(dir, "pw")
        fs.writeFileSync(file, "from file\n")
        expect(password(yield* config(["--resp-password-file", file]))).toEqual(Option.some("from file"))
        fs.writeFileSync(file, "\n")
        expect(yield* usage(["--resp-password-file", file])).toMatch(/it is empty/)
      } finally {
        fs.rmSync(dir, { recursive: true, force: true })
      }
    }))
})
