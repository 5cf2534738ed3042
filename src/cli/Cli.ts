/**
 * The program behind `dcounter`: parse the command line into a validated invocation, then
 * run it. A `UsageError` is printed as one line and exits with status 2; any other failure
 * is printed as one line and exits with status 1; SIGINT/SIGTERM interrupt the role, whose
 * finalizers shut it down gracefully, and exit 0.
 */
import type * as CliApp from "@effect/cli/CliApp"
import type { Teardown } from "@effect/platform/Runtime"
import { Cause, Effect, Exit, Option } from "effect"
import { ClientError } from "../client/ClientError.js"
import { type Env, UsageError } from "../config/Usage.js"
import { parse } from "./Invocation.js"
import * as Run from "./Run.js"

/** `dcounter <argv>`: runs until the role stops (interrupted by a signal) or fails. */
export const program = (argv: ReadonlyArray<string>, env: Env): Effect.Effect<void, unknown, CliApp.CliApp.Environment> =>
  (isClientCommand(argv[0]) ? client(argv, env) : parse(argv, env).pipe(Effect.flatMap(Run.run))).pipe(
    Effect.tapErrorCause((cause) => Cause.isInterruptedOnly(cause) ? Effect.void : Effect.sync(() => report(cause)))
  )

/** The shell client commands (`get`, `inc`, `dec`, `list`, `status`), loaded only when used. */
const clientCommandNames: ReadonlyArray<string> = ["get", "inc", "dec", "list", "status"]
const isClientCommand = (word: string | undefined) => word !== undefined && clientCommandNames.includes(word)
const client = (argv: ReadonlyArray<string>, env: Env) =>
  Effect.flatMap(
    Effect.promise(() => Promise.all([import("../client/ClientCommand.js"), import("../client/ClientRun.js")])),
    ([ClientCommand, ClientRun]) => Effect.flatMap(ClientCommand.parse(argv, env), ClientRun.run)
  )

const report = (cause: Cause.Cause<unknown>): void => {
  const failure = Cause.failureOption(cause)
  const line = Option.isSome(failure) ? describe(failure.value) : undefined
  process.stderr.write(line === undefined ? `dcounter: ${Cause.pretty(cause)}\n` : `dcounter: ${line}\n`)
}

/** One line for a typed failure: its message (and reason), without a stack. */
const describe = (error: unknown): string | undefined => {
  if (typeof error !== "object" || error === null) return undefined
  const message = "message" in error && typeof error.message === "string" ? error.message : undefined
  if (message === undefined || message === "") return undefined
  return message.replace(/\s+/g, " ").trim()
}

/**
 * Exit status: 0 on success or a signal, 2 for a usage error, 3 when the shell client found
 * nothing answering, 1 for anything else.
 */
export const teardown: Teardown = (exit, onExit) => {
  if (Exit.isSuccess(exit) || Cause.isInterruptedOnly(exit.cause)) return onExit(0)
  const failure = Cause.failureOption(exit.cause)
  if (Option.isSome(failure) && failure.value instanceof ClientError) return onExit(failure.value.exitCode)
  onExit(Option.isSome(failure) && failure.value instanceof UsageError ? 2 : 1)
}
