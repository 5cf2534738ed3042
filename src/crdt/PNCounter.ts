/**
 * PN-counter: per-replica increment and decrement totals. value = sum(inc) - sum(dec).
 * A pure immutable value; merging is the pointwise maximum, so it is commutative,
 * associative and idempotent.
 */
import { Data, Either } from "effect"
import type { ReplicaId } from "./ReplicaId.js"

export interface Totals {
  readonly inc: number
  readonly dec: number
}

export interface PNCounter {
  readonly replicas: ReadonlyMap<ReplicaId, Totals>
}

/** A write that would take an entry or a counter's value past 2^53-1. Nothing changed. */
export class Overflow extends Data.TaggedError("Overflow")<{
  readonly message: string
}> {}

export const empty: PNCounter = { replicas: new Map() }

export const sumInc = (c: PNCounter): number => {
  let s = 0
  for (const t of c.replicas.values()) s += t.inc
  return s
}

export const sumDec = (c: PNCounter): number => {
  let s = 0
  for (const t of c.replicas.values()) s += t.dec
  return s
}

/**
 * The counter's value. Exact while both sums stay within 2^53-1, which local writes
 * guarantee (see `add`); merged foreign totals that jointly exceed it are computed with
 * bigint and clamped to the safe range rather than silently rounded.
 */
export const value = (c: PNCounter): number => {
  const inc = sumInc(c)
  const dec = sumDec(c)
  if (inc <= Number.MAX_SAFE_INTEGER && dec <= Number.MAX_SAFE_INTEGER) return inc - dec
  let bi = 0n
  for (const t of c.replicas.values()) bi += BigInt(t.inc) - BigInt(t.dec)
  const max = BigInt(Number.MAX_SAFE_INTEGER)
  return Number(bi > max ? max : bi < -max ? -max : bi)
}

export const totals = (c: PNCounter, replica: ReplicaId): Totals =>
  c.replicas.get(replica) ?? { inc: 0, dec: 0 }

/**
 * Adds `by` (a positive safe integer) to the replica's increment (`kind = "inc"`) or
 * decrement total. Refuses with `Overflow` when the entry or the counter's sum would pass
 * 2^53-1.
 */
export const add = (
  c: PNCounter,
  replica: ReplicaId,
  kind: "inc" | "dec",
  by: number
): Either.Either<PNCounter, Overflow> => {
  const t = totals(c, replica)
  const current = kind === "inc" ? t.inc : t.dec
  const sum = kind === "inc" ? sumInc(c) : sumDec(c)
  if (!Number.isSafeInteger(by) || by <= 0) {
    return Either.left(new Overflow({ message: `by must be a positive safe integer, got ${by}` }))
  }
  if (current + by > Number.MAX_SAFE_INTEGER || sum + by > Number.MAX_SAFE_INTEGER) {
    return Either.left(
      new Overflow({ message: `${kind === "inc" ? "increment" : "decrement"} by ${by} would pass 2^53-1` })
    )
  }
  const next = new Map(c.replicas)
  next.set(replica, kind === "inc" ? { inc: t.inc + by, dec: t.dec } : { inc: t.inc, dec: t.dec + by })
  return Either.right({ replicas: next })
}

export const increment = (c: PNCounter, replica: ReplicaId, by = 1) => add(c, replica, "inc", by)
export const decrement = (c: PNCounter, replica: ReplicaId, by = 1) => add(c, replica, "dec", by)

/** Pointwise maximum of two totals. */
export const maxTotals = (a: Totals, b: Totals): Totals =>
  a.inc >= b.inc && a.dec >= b.dec ? a : b.inc >= a.inc && b.dec >= a.dec ? b : {
    inc: Math.max(a.inc, b.inc),
    dec: Math.max(a.dec, b.dec)
  }

export const merge = (a: PNCounter, b: PNCounter): PNCounter => {
  const next = new Map(a.replicas)
  for (const [r, tb] of b.replicas) {
    const ta = next.get(r)
    next.set(r, ta === undefined ? tb : maxTotals(ta, tb))
  }
  return { replicas: next }
}

export const equals = (a: PNCounter, b: PNCounter): boolean => {
  const nonZero = (c: PNCounter) => [...c.replicas].filter(([, t]) => t.inc !== 0 || t.dec !== 0)
  const ea = nonZero(a)
  const eb = nonZero(b)
  if (ea.length !== eb.length) return false
  for (const [r, t] of ea) {
    const u = b.replicas.get(r)
    if (u === undefined || u.inc !== t.inc || u.dec !== t.dec) return false
  }
  return true
}
