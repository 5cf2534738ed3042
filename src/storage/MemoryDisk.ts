/**
 * A simulated disk for `WalMemory` and `DataDirMemory`: it outlives the layers built on
 * it, so closing a node's scope and building the layers again on the same disk is a node
 * restart. `crash()` is a kill -9: the process incarnation that had it open dies at once
 * (its lazily appended but unflushed data is lost, its finalizers write nothing, its lock
 * is gone). A brand-new disk (`make()`) is a lost data directory. `failWith(reason)` makes
 * every append fail as a broken disk would, until `failWith(undefined)`.
 */
import { CounterMap } from "../crdt/CounterMap.js"
import type { Entry } from "../crdt/Entry.js"
import type { ReplicaId } from "../crdt/ReplicaId.js"
import type { WalError } from "./Wal.js"

export type DiskFault = Exclude<WalError["reason"], "Closed">

let nextDiskNumber = 1

export class MemoryDisk {
  /** A name for messages, like a data directory's path. */
  readonly path: string = `memory:disk-${nextDiskNumber++}`
  /** Everything made durable, folded (replaying records is a fold, so this is exact). */
  readonly state = new CounterMap()
  /** The replica id stored on the disk; undefined until a `DataDirMemory` made one. */
  replicaId: ReplicaId | undefined = undefined
  /** Durable records written so far (one per non-empty append or flush). */
  records = 0
  /** The current process incarnation; `crash()` starts a new one. */
  generation = 0
  /** The incarnation holding the data directory lock, if any. */
  lockHolder: number | undefined = undefined
  /** When set, appends fail with this reason. */
  fault: DiskFault | undefined = undefined

  /** kill -9 of the process using this disk: unflushed lazy data is lost, the lock freed. */
  crash(): void {
    this.generation++
    this.lockHolder = undefined
  }

  /** Makes appends fail with `reason` (a full, broken or read-only disk); `undefined` heals. */
  failWith(reason: DiskFault | undefined): void {
    this.fault = reason
  }

  /** The durable entries, as a restart would recover them. */
  entries(): Array<Entry> {
    return this.state.entries()
  }
}

/** A new, empty disk: a node that starts on it has a lost (or never used) data directory. */
export const make = (): MemoryDisk => new MemoryDisk()
