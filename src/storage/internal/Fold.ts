/**
 * The pointwise-maximum fold of entries as they are decoded, without allocating per
 * entry: replay feeds it millions of `(name, replica, inc, dec)` and it keeps one mutable
 * slot per distinct pair (names and replica ids come interned from the decoder, so the
 * map lookups reuse cached string hashes). `entries()` is the folded state.
 */
import type { CounterName } from "../../crdt/CounterName.js"
import type { Entry } from "../../crdt/Entry.js"
import type { ReplicaId } from "../../crdt/ReplicaId.js"

/** Receives decoded entries one by one. */
export type EntrySink = (name: CounterName, replica: ReplicaId, inc: number, dec: number) => void

interface Slot {
  inc: number
  dec: number
}

export class Fold {
  private readonly byName = new Map<CounterName, Map<ReplicaId, Slot>>()

  /** The number of distinct counter names. */
  get counters(): number {
    return this.byName.size
  }

  readonly add: EntrySink = (name, replica, inc, dec) => {
    let replicas = this.byName.get(name)
    if (replicas === undefined) {
      replicas = new Map()
      this.byName.set(name, replicas)
    }
    const slot = replicas.get(replica)
    if (slot === undefined) replicas.set(replica, { inc, dec })
    else {
      if (inc > slot.inc) slot.inc = inc
      if (dec > slot.dec) slot.dec = dec
    }
  }

  entries(): Array<Entry> {
    const out: Array<Entry> = []
    for (const [name, replicas] of this.byName) {
      for (const [replica, s] of replicas) out.push([name, replica, s.inc, s.dec])
    }
    return out
  }
}
