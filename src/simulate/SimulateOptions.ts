/** Settings of `dcounter simulate`, as parsed from its flags (defaults and validation: cli/SimulateSettings.ts). */
import type { Duration, Option } from "effect"

export interface SimulateOptions {
  readonly nodeCount: number
  /** how long random writes run */
  readonly duration: Duration.Duration
  /** writes per second over the whole cluster */
  readonly rate: number
  readonly partitions: number
  readonly crashes: number
  /** none: a random seed, printed so the run can be replayed */
  readonly seed: Option.Option<number>
  readonly syncInterval: Duration.Duration
  readonly convergeTimeout: Duration.Duration
  /** probability in [0, 1] that the network loses a message */
  readonly drop: number
  /** latency of every message on the simulated network (plus up to as much jitter) */
  readonly delay: Duration.Duration
}
