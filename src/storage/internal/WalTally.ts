/**
 * The file WAL's running counts, kept as plain mutable numbers by the modules that do the
 * work (the segment writer counts records, fdatasyncs and bytes; the committer appends;
 * the snapshotter snapshots) and read as `WalStats`.
 */
import type { WalStats } from "../Wal.js"
import * as WalMetrics from "../WalMetrics.js"

export interface WalTally {
  appends: number
  records: number
  syncs: number
  bytesWritten: number
  snapshots: number
  /** a ring of the last `WalMetrics.SYNC_SECONDS_KEPT` fdatasync durations */
  readonly syncSeconds: Array<number>
  syncIndex: number
}

export const make = (): WalTally => ({
  appends: 0,
  records: 0,
  syncs: 0,
  bytesWritten: 0,
  snapshots: 0,
  syncSeconds: [],
  syncIndex: 0
})

/** Counts an fdatasync that took `seconds` and succeeded. */
export const synced = (tally: WalTally, seconds: number): void => {
  tally.syncs++
  if (tally.syncSeconds.length < WalMetrics.SYNC_SECONDS_KEPT) tally.syncSeconds.push(seconds)
  else tally.syncSeconds[tally.syncIndex++ % WalMetrics.SYNC_SECONDS_KEPT] = seconds
  WalMetrics.fsyncSeconds.unsafeUpdate(seconds, [])
}

/** A copy of the counts, for `Wal.stats`. */
export const stats = (tally: WalTally): WalStats => ({
  appends: tally.appends,
  records: tally.records,
  syncs: tally.syncs,
  bytesWritten: tally.bytesWritten,
  snapshots: tally.snapshots,
  syncSeconds: [...tally.syncSeconds]
})
