/**
 * Coalesces entries by `(name, replica)`, keeping the pointwise maximum: a buffer of
 * pending CRDT state whose size is bounded by the number of distinct entries, however many
 * times they are written. Used for lazily appended remote state and for group-commit
 * batches (one record per batch holds each entry once).
 */
import type { Entry } from "../../crdt/Entry.js"

export class Coalescer {
  private readonly byKey = new Map<string, Entry>()

  get size(): number {
    return this.byKey.size
  }

  add(entries: Iterable<Entry>): void {
    for (const e of entries) {
      const key = `${e[0]}\u0000${e[1]}`
      const old = this.byKey.get(key)
      if (old === undefined) this.byKey.set(key, e)
      else if (old[2] < e[2] || old[3] < e[3]) {
        this.byKey.set(key, [e[0], e[1], Math.max(old[2], e[2]), Math.max(old[3], e[3])])
      }
    }
  }

  /** Everything added so far; empties the buffer. */
  take(): Array<Entry> {
    const out = [...this.byKey.values()]
    this.byKey.clear()
    return out
  }
}

/** The entries coalesced by `(name, replica)`. */
export const coalesce = (entries: Iterable<Entry>): Array<Entry> => {
  const c = new Coalescer()
  c.add(entries)
  return c.take()
}
