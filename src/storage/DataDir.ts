/**
 * The node's data directory: exclusively locked, holding the replica id made at first
 * start. `fresh` is true when the id was just made (an empty or lost directory), so the
 * node knows it must not assume anything about its own past.
 */
import { Context, Data } from "effect"
import type { ReplicaId } from "../crdt/ReplicaId.js"

export class DataDirError extends Data.TaggedError("DataDirError")<{
  readonly reason: "Locked" | "Io" | "Invalid"
  readonly path: string
  readonly message: string
  readonly cause?: unknown
}> {}

export class DataDir extends Context.Tag("dcounter/DataDir")<
  DataDir,
  {
    readonly path: string
    readonly replicaId: ReplicaId
    readonly fresh: boolean
  }
>() {}
