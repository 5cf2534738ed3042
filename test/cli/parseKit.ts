/** `Invocation.parse` as the CLI tests call it: a success of an expected kind, or a one-line usage error. */
import { NodeContext } from "@effect/platform-node"
import { expect } from "@effect/vitest"
import { Effect, Either } from "effect"
import type { Invocation } from "../../src/cli/Invocation.js"
import { parse } from "../../src/cli/Invocation.js"
import type { Env } from "../../src/config/Usage.js"

export const run = (argv: ReadonlyArray<string>, env: Env = {}) =>
  parse(argv, env).pipe(Effect.either, Effect.provide(NodeContext.layer))

/** The invocation of kind `tag`; anything else fails the test. */
export const ok = <T extends Invocation["_tag"]>(tag: T, argv: ReadonlyArray<string>, env: Env = {}) =>
  Effect.gen(function*() {
    const result = yield* run(argv, env)
    if (Either.isLeft(result)) throw new Error(`expected success, got: ${result.left.message}`)
    expect(result.right._tag).toBe(tag)
    return result.right as Extract<Invocation, { _tag: T }>
  })

/** The one-line message of the usage error `argv` must give. */
export const fails = (argv: ReadonlyArray<string>, env: Env = {}) =>
  Effect.gen(function*() {
    const result = yield* run(argv, env)
    if (Either.isRight(result)) throw new Error(`expected a usage error for ${argv.join(" ")}`)
    expect(result.left._tag).toBe("UsageError")
    expect(result.left.message).not.toContain("\n")
    return result.left.message
  })
