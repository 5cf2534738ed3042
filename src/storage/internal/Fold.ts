/**
 * The pointwise-maximum fold of entries as they are decoded, without allocating per
 * entry: a tool's replay feeds it millions of `(name, replica, inc, dec)` and it merges
 * each into a compact `CounterMap` (`applyOne`). `entries()` is the folded state.
 */
import { CounterMap } from "../../crdt/CounterMap.js"
import type { CounterName } from "../../crdt/CounterName.js"
import type { Entry } from "../../crdt/Entry.js"
import type { ReplicaId } from "../../crdt/ReplicaId.js"

/** Receives decoded entries one by one. */
export type EntrySink = (name: CounterName, replica: ReplicaId, inc: number, dec: number) => void

export class Fold {
  private readonly map = new CounterMap()

  /** The number of distinct counter names. */
  get counters(): number {
    return this.map.size
  }

  readonly add: EntrySink = (name, replica, inc, dec) => {
    this.map.applyOne(name, replica, inc, dec)
  }

  entries(): Array<Entry> {
    return this.map.entries()
  }
}
