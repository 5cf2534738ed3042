/**
 * The WAL's Prometheus metrics, shared by every `Wal` implementation:
 * `dcounter_wal_fsync_seconds` (histogram of fdatasync durations),
 * `dcounter_wal_appends_total` (appends made durable) and `dcounter_wal_bytes_total`
 * (bytes written to segments and snapshots), `dcounter_commit_batch_size` (appends per
 * write + fdatasync).
 */
import { Metric, MetricBoundaries } from "effect"
import * as Prometheus from "../observability/Prometheus.js"

/** Kept under the name it had when the node batched its writes itself. */
export const groupCommitSize = Metric.histogram(
  "dcounter_commit_batch_size",
  MetricBoundaries.fromIterable([1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]),
  "Appends (each local write is one) made durable by one write + fdatasync (group commit)"
)

export const fsyncSeconds = Metric.histogram(
  "dcounter_wal_fsync_seconds",
  MetricBoundaries.fromIterable([0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]),
  "Duration of WAL fdatasync calls, in seconds"
)

export const appendsTotal = Metric.counter("dcounter_wal_appends_total", {
  description: "WAL appends made durable",
  incremental: true
})

export const bytesTotal = Metric.counter("dcounter_wal_bytes_total", {
  description: "Bytes written to WAL segments and snapshots",
  incremental: true
})
for (const m of [groupCommitSize, fsyncSeconds, appendsTotal, bytesTotal]) Prometheus.declared(m)

/** How many recent fdatasync durations `WalStats.syncSeconds` keeps (a ring, not unbounded). */
export const SYNC_SECONDS_KEPT = 1024
