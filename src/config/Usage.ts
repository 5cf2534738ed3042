/**
 * What every command line reads and how it fails: the environment it reads and the
 * usage error (exit status 2, one line). Shared by the role commands (`cli/`) and the
 * shell client (`client/`), so neither folder imports the other's parser.
 */
import { Data } from "effect"

/** A bad command line or environment: exit status 2, `message` printed on one line. */
export class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string }> {}

/** The environment as `process.env` gives it. */
export type Env = Readonly<Record<string, string | undefined>>
