/**
 * Replica identity: an opaque id persisted in a node's data directory. It is never the
 * node's address, so a node that moves keeps its id and a node that lost its data gets a
 * new one (see storage/DataDir).
 */
import { randomBytes } from "node:crypto"
import { Schema } from "effect"

/** 1 to 64 characters of `[A-Za-z0-9_-]` (base64url). */
export const REPLICA_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/

export const ReplicaId = Schema.String.pipe(
  Schema.pattern(REPLICA_ID_PATTERN),
  Schema.brand("ReplicaId")
)
export type ReplicaId = typeof ReplicaId.Type

export const isReplicaId = (s: string): s is ReplicaId => REPLICA_ID_PATTERN.test(s)

/** A fresh random replica id: 16 random bytes, base64url (22 characters). */
export const makeReplicaId = (): ReplicaId => randomBytes(16).toString("base64url") as ReplicaId
