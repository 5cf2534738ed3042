/**
 * Why a shell client command (`dcounter get|inc|dec|list|status`) failed, and the exit
 * status that tells a script: 1 when the server answered with a refusal (4xx/5xx) or with
 * something that is not a dcounter answer, 3 when nothing answered at `--url`.
 * (Usage errors exit 2, through the CLI's `UsageError`.)
 */
import { Data } from "effect"

export type ClientErrorReason = "Refused" | "Unreachable" | "BadAnswer"

export class ClientError extends Data.TaggedError("ClientError")<{
  readonly reason: ClientErrorReason
  readonly message: string
  /** the HTTP status, when the server answered */
  readonly status?: number
  readonly cause?: unknown
}> {
  get exitCode(): number {
    return this.reason === "Unreachable" ? 3 : 1
  }
}
