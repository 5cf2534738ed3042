/**
 * How a failed file operation of the WAL becomes a `WalError`: the reason from the errno
 * (a full disk, a read-only file system, any other I/O error) and a message that names
 * what was being done and where. Shared by the write path, recovery and snapshots.
 */
import { Effect } from "effect"
import { WalError } from "../Wal.js"
import { errorCode, errorMessage } from "./fsync.js"

export const reasonOf = (e: unknown): WalError["reason"] => {
  switch (errorCode(e)) {
    case "ENOSPC":
    case "EDQUOT":
      return "NoSpace"
    case "EROFS":
      return "ReadOnly"
    default:
      return "Io"
  }
}

/** The `WalError` of a failure while doing `what`. */
export const walError = (what: string) => (e: unknown): WalError =>
  new WalError({ reason: reasonOf(e), message: `${what}: ${errorMessage(e)}`, cause: e })

/** The WAL in `walDir` is closed: what every call answers after close. */
export const closedError = (walDir: string): WalError =>
  new WalError({ reason: "Closed", message: `the WAL in ${walDir} is closed` })

/** A Promise file operation on the WAL in `walDir` as an Effect failing with `WalError`. */
export const call = <A>(walDir: string, what: string, f: () => Promise<A>): Effect.Effect<A, WalError> =>
  Effect.tryPromise({ try: f, catch: walError(`${what} (${walDir})`) })

/** A synchronous file operation on the WAL in `walDir` as an Effect failing with `WalError`. */
export const callSync = <A>(walDir: string, what: string, f: () => A): Effect.Effect<A, WalError> =>
  Effect.try({ try: f, catch: walError(`${what} (${walDir})`) })
