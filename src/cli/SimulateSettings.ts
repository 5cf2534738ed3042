/**
 * The options of `dcounter simulate` (an in-process cluster under faults), declared once
 * (see config/Setting.ts), and the `Config` that reads them into `SimulateOptions`.
 */
import { Config, Duration, Either } from "effect"
import * as Setting from "../config/Setting.js"
import * as Values from "../config/Values.js"
import type { SimulateOptions } from "../simulate/SimulateOptions.js"

export const defaults = {
  nodeCount: 10,
  duration: Duration.seconds(10),
  rate: 500,
  partitions: 0,
  crashes: 0,
  syncInterval: Duration.seconds(1),
  convergeTimeout: Duration.seconds(30),
  drop: 0,
  delay: Duration.millis(1),
  logLevel: "error"
} as const

const nodeCount = Setting.withDefault(
  {
    name: "node-count",
    value: "count",
    description: "Nodes in the in-process cluster (memory network, memory WAL).",
    default: String(defaults.nodeCount)
  },
  Values.integer(1, 200),
  defaults.nodeCount
)

const duration = Setting.withDefault(
  {
    name: "duration",
    value: "duration",
    description: "How long random writes run.",
    default: Values.formatDuration(defaults.duration)
  },
  Values.duration,
  defaults.duration
)

const rate = Setting.withDefault(
  {
    name: "rate",
    value: "writes/s",
    description: "Random increments and decrements per second, over the whole cluster.",
    default: String(defaults.rate)
  },
  Values.integer(1, 1_000_000),
  defaults.rate
)

const partitions = Setting.withDefault(
  {
    name: "partitions",
    value: "count",
    description: "Network partitions during the run: each splits the cluster in two random halves for a while.",
    default: String(defaults.partitions)
  },
  Values.integer(0, 1000),
  defaults.partitions
)

const crashes = Setting.withDefault(
  {
    name: "crashes",
    value: "count",
    description: "Node crashes during the run: each stops a random node abruptly and restarts it on its data.",
    default: String(defaults.crashes)
  },
  Values.integer(0, 1000),
  defaults.crashes
)

const seed = Setting.optional(
  { name: "seed", value: "integer", description: "Seed of the random choices, to replay a run.", default: "random (printed)" },
  Values.integer(0, 2 ** 32 - 1)
)

const syncInterval = Setting.withDefault(
  {
    name: "sync-interval",
    value: "duration",
    description: "Anti-entropy interval of the simulated nodes.",
    default: Values.formatDuration(defaults.syncInterval)
  },
  Values.duration,
  defaults.syncInterval
)

const convergeTimeout = Setting.withDefault(
  {
    name: "converge-timeout",
    value: "duration",
    description: "How long to wait, after writes stop and the network heals, for every node to agree.",
    default: Values.formatDuration(defaults.convergeTimeout)
  },
  Values.duration,
  defaults.convergeTimeout
)

const drop = Setting.withDefault(
  {
    name: "drop",
    value: "probability",
    description: "Probability that the simulated network loses a message (0 to 1).",
    default: String(defaults.drop)
  },
  Values.decimal(0, 1),
  defaults.drop
)

const delay = Setting.withDefault(
  {
    name: "delay",
    value: "duration",
    description: "Latency of every message on the simulated network, plus a random jitter up to as much.",
    default: Values.formatDuration(defaults.delay)
  },
  Values.durationOrZero,
  defaults.delay
)

/** The command's options, in the order of the help. */
export const settings: ReadonlyArray<Setting.SettingDoc> = [
  nodeCount,
  duration,
  rate,
  partitions,
  crashes,
  seed,
  syncInterval,
  convergeTimeout,
  drop,
  delay
]

export const config: Config.Config<SimulateOptions> = Config.all({
  nodeCount: nodeCount.config,
  duration: duration.config,
  rate: rate.config,
  partitions: partitions.config,
  crashes: crashes.config,
  seed: seed.config,
  syncInterval: syncInterval.config,
  convergeTimeout: convergeTimeout.config,
  drop: drop.config,
  delay: delay.config
}).pipe(
  Config.mapOrFail((options) =>
    options.nodeCount < 2 && (options.partitions > 0 || options.crashes > 0)
      ? Either.left(Setting.fail("invalid --node-count: partitions and crashes need at least 2 nodes"))
      : Either.right(options)
  )
)
