/**
 * `dcounter simulate`: an in-process cluster (MemoryCluster: memory disks, the in-process
 * MemoryNetwork) under random writes and optional faults, then a check that every node ends with
 * exactly the acknowledged total.
 *
 * - Writes: `rate` per second for `duration`, each an increment (60%) or decrement (40%)
 *   of 1..5 on the `default` counter of a random running node; only acknowledged writes
 *   count in the expected value. At most `MAX_IN_FLIGHT` writes are outstanding; past it
 *   the writer falls behind (the report shows the achieved rate).
 * - Partitions: each splits the nodes in two random halves for a while, then heals.
 * - Crashes: each stops a random node like kill -9 (its disk keeps only what was durable),
 *   then restarts it on that disk. A crash waits for the writes in flight on that node, so
 *   every write is either acknowledged or never sent, and the expected value is exact.
 * - Probes: ten times a second one write to its own counter (`probe-N`); the time until
 *   every running node shows it is the propagation time (p50/p99 in the report), which
 *   includes any partition or crash it met.
 * After the writes, the network heals and crashed nodes are back; the run waits (up to
 * `convergeTimeout`) until every node holds the same state with the expected value.
 * Random choices come from `seed`, so a run's faults and writes can be replayed (timing is
 * real, so the interleaving may differ).
 */
import type { Scope } from "effect"
import { Clock, Duration, Effect, Fiber, FiberSet, Option, Random, Ref } from "effect"
import type { CounterName } from "../crdt/CounterName.js"
import { DEFAULT_COUNTER } from "../crdt/CounterName.js"
import * as MemoryCluster from "../node/MemoryCluster.js"
import type { HostPort } from "../protocol/Message.js"
import * as NetworkModule from "../transport/MemoryNetwork.js"
import { MemoryNetwork, type MemoryNetworkStats } from "../transport/MemoryNetwork.js"
import type { SimulateOptions } from "./SimulateOptions.js"

/** Most writes outstanding at once. */
const MAX_IN_FLIGHT = 256
/** Probes per second. */
const PROBE_RATE = 10
/** How often convergence is checked. */
const CHECK_EVERY = Duration.millis(5)

export interface NodeOutcome {
  readonly index: number
  readonly addr: string
  /** writes this node acknowledged */
  readonly writes: number
  readonly crashes: number
  readonly value: number
}

export interface FaultLog {
  readonly partitions: number
  readonly partitionMillis: number
  readonly crashes: number
  readonly downMillis: number
}

/** Live figures for the progress bar. */
export interface Progress {
  readonly phase: "writing" | "converging" | "done"
  /** 0..1 of the writing phase */
  readonly fraction: number
  readonly elapsedMillis: number
  readonly acked: number
  readonly partitioned: boolean
  readonly down: ReadonlyArray<number>
}

export interface SimulationResult {
  readonly options: SimulateOptions
  readonly seed: number
  readonly acked: number
  readonly increments: number
  readonly decrements: number
  /** writes that failed (their outcome is not counted) */
  readonly failed: number
  /** writes skipped because their node went down before they were sent */
  readonly skipped: number
  readonly writeMillis: number
  readonly expected: number
  readonly nodes: ReadonlyArray<NodeOutcome>
  readonly faults: FaultLog
  readonly network: MemoryNetworkStats
  /** ms from the end of the writes (network healed, nodes back) to full agreement, none on timeout */
  readonly convergedAfterMillis: Option.Option<number>
  /** propagation time of each probe that reached every node, in ms */
  readonly probeMillis: ReadonlyArray<number>
  /** probes that had not reached every node when the run ended */
  readonly probesLost: number
  /** every node agrees and holds the expected value */
  readonly ok: boolean
}

interface Probe {
  readonly name: CounterName
  readonly at: number
}

const randomInt = (min: number, maxInclusive: number) => Random.nextIntBetween(min, maxInclusive + 1)

/** A random half of `items` (at least one, at most all but one). */
const randomSplit = <A>(items: ReadonlyArray<A>) =>
  Effect.gen(function*() {
    const shuffled = [...(yield* Random.shuffle(items))]
    const size = yield* randomInt(1, Math.max(1, items.length - 1))
    return [shuffled.slice(0, size), shuffled.slice(size)] as const
  })

export const run = (
  options: SimulateOptions,
  onProgress: (p: Progress) => void = () => undefined
): Effect.Effect<SimulationResult, never, Scope.Scope> =>
  Effect.suspend(() => {
    const seed = Option.getOrElse(options.seed, () => Math.floor(Math.random() * 2 ** 32))
    return runSeeded(options, seed, onProgress).pipe(Effect.withRandom(Random.make(seed)))
  }).pipe(Effect.withSpan("Simulation.run"))

const runSeeded = (
  options: SimulateOptions,
  seed: number,
  onProgress: (p: Progress) => void
): Effect.Effect<SimulationResult, never, Scope.Scope> =>
  Effect.gen(function*() {
    const network = yield* NetworkModule.make({
      seed,
      dropProbability: options.drop,
      delay: options.delay,
      jitter: options.delay
    })
    const cluster = yield* MemoryCluster.make({
      size: options.nodeCount,
      seeds: "all",
      config: { syncInterval: options.syncInterval, fullSyncInterval: Duration.times(options.syncInterval, 10) }
    }).pipe(Effect.provideService(MemoryNetwork, network))
    const n = options.nodeCount
    const addrs = cluster.nodes.map((node) => node.addr)

    // state shared by the fibers (all mutations happen on the Effect scheduler's single thread)
    const down = new Set<number>()
    const locks = yield* Effect.forEach(addrs, () => Effect.makeSemaphore(MAX_IN_FLIGHT))
    const writesPerNode = new Array<number>(n).fill(0)
    const crashesPerNode = new Array<number>(n).fill(0)
    const totals = { acked: 0, increments: 0, decrements: 0, failed: 0, skipped: 0, expected: 0, inFlight: 0 }
    const faults = { partitions: 0, partitionMillis: 0, crashes: 0, downMillis: 0, partitioned: false }
    const probes: Array<Probe> = []
    const probeMillis: Array<number> = []
    const writing = yield* Ref.make(true)
    const fibers = yield* FiberSet.make()

    const upNodes = () => Array.from({ length: n }, (_, i) => i).filter((i) => !down.has(i))
    const pickUp = Effect.gen(function*() {
      const up = upNodes()
      return up.length === 0 ? undefined : up[yield* randomInt(0, up.length - 1)]
    })

    const write = (i: number, kind: "inc" | "dec", by: number) =>
      locks[i]!.withPermits(1)(
        Effect.gen(function*() {
          if (down.has(i)) {
            totals.skipped++
            return
          }
          const result = yield* Effect.either(
            kind === "inc" ? cluster.increment(i, DEFAULT_COUNTER, by) : cluster.decrement(i, DEFAULT_COUNTER, by)
          )
          if (result._tag === "Left") {
            totals.failed++
            yield* Effect.logWarning(`simulate: write on node ${i} failed: ${result.left.message}`)
            return
          }
          totals.acked++
          writesPerNode[i]!++
          if (kind === "inc") {
            totals.increments++
            totals.expected += by
          } else {
            totals.decrements++
            totals.expected -= by
          }
        })
      ).pipe(Effect.ensuring(Effect.sync(() => totals.inFlight--)))

    const started = yield* Clock.currentTimeMillis
    const durationMs = Duration.toMillis(options.duration)

    // the writer: keeps the issued count on the rate line, within the in-flight bound
    const writer = Effect.gen(function*() {
      let issued = 0
      while (true) {
        const elapsed = (yield* Clock.currentTimeMillis) - started
        if (elapsed >= durationMs) return
        const due = Math.floor((elapsed * options.rate) / 1000) - issued
        for (let k = 0; k < due && totals.inFlight < MAX_IN_FLIGHT; k++) {
          issued++
          const i = yield* pickUp
          if (i === undefined) {
            totals.skipped++
            continue
          }
          const kind = (yield* Random.nextRange(0, 1)) < 0.6 ? "inc" : "dec"
          const by = yield* randomInt(1, 5)
          totals.inFlight++
          yield* FiberSet.run(fibers, write(i, kind, by))
        }
        yield* Effect.sleep(Duration.millis(5))
      }
    })

    // probes: one write to a fresh counter every 1/PROBE_RATE s
    const prober = Effect.gen(function*() {
      let k = 0
      while ((yield* Clock.currentTimeMillis) - started < durationMs) {
        const i = yield* pickUp
        if (i !== undefined) {
          const name = `probe-${k++}` as CounterName
          const ok = yield* locks[i]!.withPermits(1)(
            down.has(i) ? Effect.succeed(false) : Effect.as(Effect.either(cluster.increment(i, name, 1)), true)
          )
          if (ok) probes.push({ name, at: yield* Clock.currentTimeMillis })
        }
        yield* Effect.sleep(Duration.millis(1000 / PROBE_RATE))
      }
    })

    /** Moves probes that every running node shows to `probeMillis`. */
    const checkProbes = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      for (let p = probes.length - 1; p >= 0; p--) {
        const probe = probes[p]!
        const values = yield* cluster.values(probe.name)
        if (values.length === n - down.size && values.every((v) => v === 1)) {
          probeMillis.push(now - probe.at)
          probes.splice(p, 1)
        }
      }
    })
    const probeChecker = Effect.forever(Effect.zipRight(checkProbes, Effect.sleep(CHECK_EVERY)))

    /**
     * Faults spread evenly over the writing phase: `fault(length)` runs `count` times, each in
     * its own slot, starting in the slot's first 30% and lasting a random fraction of it
     * (between `shortest` and `longest`).
     */
    const inSlots = <E, R>(
      count: number,
      shortest: number,
      longest: number,
      fault: (lengthMillis: number) => Effect.Effect<void, E, R>
    ) =>
      Effect.gen(function*() {
        const slot = count === 0 ? 0 : durationMs / count
        for (let k = 0; k < count; k++) {
          const slotStart = started + k * slot
          const startAt = slotStart + (yield* Random.nextRange(0, slot * 0.3))
          const length = slot * (yield* Random.nextRange(shortest, longest))
          yield* Effect.sleep(Duration.millis(Math.max(0, startAt - (yield* Clock.currentTimeMillis))))
          yield* fault(length)
        }
      })
    const partitioner = inSlots(options.partitions, 0.3, 0.6, (length) =>
      Effect.gen(function*() {
        const [left, right] = yield* randomSplit(addrs)
        yield* network.partition([left as ReadonlyArray<HostPort>, right as ReadonlyArray<HostPort>])
        faults.partitioned = true
        faults.partitions++
        yield* Effect.sleep(Duration.millis(length))
        yield* network.heal
        faults.partitioned = false
        faults.partitionMillis += length
      }))
    const crasher = inSlots(options.crashes, 0.2, 0.5, (length) =>
      Effect.gen(function*() {
        const victim = yield* pickUp
        if (victim === undefined) return
        // no new write picks the victim; the crash waits for its writes in flight, so none is
        // left half-done (the queued ones see it down and are skipped)
        down.add(victim)
        yield* locks[victim]!.withPermits(MAX_IN_FLIGHT)(cluster.crash(victim))
        faults.crashes++
        crashesPerNode[victim]!++
        const wentDown = yield* Clock.currentTimeMillis
        yield* Effect.sleep(Duration.millis(length))
        yield* cluster.restart(victim)
        down.delete(victim)
        faults.downMillis += (yield* Clock.currentTimeMillis) - wentDown
      }))

    const reporter = Effect.gen(function*() {
      while (true) {
        const now = yield* Clock.currentTimeMillis
        const isWriting = yield* Ref.get(writing)
        onProgress({
          phase: isWriting ? "writing" : "converging",
          fraction: Math.min(1, (now - started) / durationMs),
          elapsedMillis: now - started,
          acked: totals.acked,
          partitioned: faults.partitioned,
          down: [...down]
        })
        yield* Effect.sleep(Duration.millis(100))
      }
    })

    const reporterFiber = yield* Effect.fork(reporter)
    const checkerFiber = yield* Effect.fork(probeChecker)
    const faultFibers = yield* Effect.all([Effect.fork(partitioner), Effect.fork(crasher)])
    yield* Effect.all([writer, prober], { concurrency: 2, discard: true })
    yield* FiberSet.awaitEmpty(fibers).pipe(Effect.timeout(Duration.seconds(30)), Effect.ignore)
    const writeMillis = (yield* Clock.currentTimeMillis) - started
    yield* Ref.set(writing, false)
    yield* Effect.forEach(faultFibers, Fiber.join, { discard: true })
    yield* network.heal

    // wait for agreement on the expected value, every probe included
    const healed = yield* Clock.currentTimeMillis
    const deadline = healed + Duration.toMillis(options.convergeTimeout)
    let convergedAfterMillis: Option.Option<number> = Option.none()
    while ((yield* Clock.currentTimeMillis) < deadline) {
      yield* checkProbes
      const values = yield* cluster.values(DEFAULT_COUNTER)
      if (probes.length === 0 && values.every((v) => v === totals.expected) && (yield* cluster.converged)) {
        convergedAfterMillis = Option.some((yield* Clock.currentTimeMillis) - healed)
        break
      }
      yield* Effect.sleep(CHECK_EVERY)
    }
    yield* Fiber.interrupt(checkerFiber)
    yield* Fiber.interrupt(reporterFiber)
    onProgress({
      phase: "done",
      fraction: 1,
      elapsedMillis: (yield* Clock.currentTimeMillis) - started,
      acked: totals.acked,
      partitioned: false,
      down: []
    })

    const finalValues = yield* cluster.values(DEFAULT_COUNTER)
    const nodes = addrs.map((addr, index): NodeOutcome => ({
      index,
      addr,
      writes: writesPerNode[index]!,
      crashes: crashesPerNode[index]!,
      value: finalValues[index]!
    }))
    return {
      options,
      seed,
      acked: totals.acked,
      increments: totals.increments,
      decrements: totals.decrements,
      failed: totals.failed,
      skipped: totals.skipped,
      writeMillis,
      expected: totals.expected,
      nodes,
      faults: {
        partitions: faults.partitions,
        partitionMillis: Math.round(faults.partitionMillis),
        crashes: faults.crashes,
        downMillis: faults.downMillis
      },
      network: yield* network.stats,
      convergedAfterMillis,
      probeMillis,
      probesLost: probes.length,
      ok: Option.isSome(convergedAfterMillis) && nodes.every((node) => node.value === totals.expected)
    }
  })
