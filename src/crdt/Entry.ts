/**
 * The unit of PN-counter state: for one counter and one replica, the total of its
 * increments and the total of its decrements. Both only grow. A full state, a delta and a
 * WAL record are all lists of entries; merging is the pointwise maximum.
 */
import { Schema } from "effect"
import { CounterName } from "./CounterName.js"
import { ReplicaId } from "./ReplicaId.js"

/** A count: a non-negative safe integer. */
export const Count = Schema.Number.pipe(Schema.int(), Schema.between(0, Number.MAX_SAFE_INTEGER))

/** `[name, replica, incrementTotal, decrementTotal]`: compact on the wire and on disk. */
export const Entry = Schema.Tuple(CounterName, ReplicaId, Count, Count)
export type Entry = typeof Entry.Type

export const Entries = Schema.Array(Entry)
export type Entries = typeof Entries.Type
