/**
 * The unit of PN-counter state: for one counter and one replica, the total of its
 * increments and the total of its decrements. Both only grow. A full state, a delta and a
 * WAL record are all lists of entries; merging is the pointwise maximum.
 */
import { Data, Either, Schema } from "effect"
import { CounterName } from "./CounterName.js"
import { ReplicaId } from "./ReplicaId.js"

/** A count: a non-negative safe integer. */
export const Count = Schema.Number.pipe(Schema.int(), Schema.between(0, Number.MAX_SAFE_INTEGER))

/** `[name, replica, incrementTotal, decrementTotal]`: compact on the wire and on disk. */
export const Entry = Schema.Tuple(CounterName, ReplicaId, Count, Count)
export type Entry = typeof Entry.Type

export const Entries = Schema.Array(Entry)
export type Entries = typeof Entries.Type

/** A value that is not a list of valid entries; `index` is the first bad entry (-1: not a list). */
export class InvalidEntries extends Data.TaggedError("InvalidEntries")<{
  readonly index: number
  readonly message: string
}> {}

const charTable = (chars: string): Uint8Array => {
  const t = new Uint8Array(128)
  for (let i = 0; i < chars.length; i++) t[chars.charCodeAt(i)] = 1
  return t
}
const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
const NAME_CHARS = charTable(ALNUM + "._:-")
const REPLICA_CHARS = charTable(ALNUM + "_-")

/** `COUNTER_NAME_PATTERN` / `REPLICA_ID_PATTERN` as a table lookup: the same answer, faster. */
const matches = (u: unknown, table: Uint8Array, max: number): boolean => {
  if (typeof u !== "string") return false
  const n = u.length
  if (n < 1 || n > max) return false
  for (let i = 0; i < n; i++) {
    const c = u.charCodeAt(i)
    if (c >= 128 || table[c] === 0) return false
  }
  return true
}

export const isCount = (u: unknown): u is number =>
  typeof u === "number" && Number.isSafeInteger(u) && u >= 0

/** Why `u` is not a valid `Entry`, or undefined when it is one. */
export const entryProblem = (u: unknown): string | undefined => {
  if (!Array.isArray(u)) return "an entry is a [name, replica, inc, dec] array"
  if (u.length !== 4) return `an entry has 4 elements, got ${u.length}`
  const [name, replica, inc, dec] = u as [unknown, unknown, unknown, unknown]
  if (!matches(name, NAME_CHARS, 128)) {
    return "a counter name is 1 to 128 characters of [A-Za-z0-9._:-]"
  }
  if (!matches(replica, REPLICA_CHARS, 64)) {
    return "a replica id is 1 to 64 characters of [A-Za-z0-9_-]"
  }
  if (!isCount(inc)) return "the increment total is a non-negative safe integer"
  if (!isCount(dec)) return "the decrement total is a non-negative safe integer"
  return undefined
}

/**
 * Validates an unknown value as `Entries`: accepts and rejects exactly what
 * `Schema.decodeUnknownEither(Entries)` does, but without its per-element allocations,
 * which dominate the cost of checking a full state. Returns the input itself, not a copy.
 */
export const validateEntries = (u: unknown): Either.Either<Entries, InvalidEntries> => {
  if (!Array.isArray(u)) return Either.left(new InvalidEntries({ index: -1, message: "entries must be an array" }))
  for (let i = 0; i < u.length; i++) {
    const problem = entryProblem(u[i])
    if (problem !== undefined) return Either.left(new InvalidEntries({ index: i, message: `entries[${i}]: ${problem}` }))
  }
  return Either.right(u as Entries)
}
