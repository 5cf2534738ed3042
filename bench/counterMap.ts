/**
 * CounterMap at scale: the in-memory state of a node holding N counters (default
 * 1,000,000), one replica entry each (names `c:0000001`, ...), in one process:
 *
 *   - build: the map filled by `apply` in batches of 1,000 entries (how merged state
 *     arrives), then the V8 heap it holds after a full GC, per counter, and the process RSS;
 *   - `digest()` right after the build, and again after 100 single-entry changes;
 *   - `deltaSince(version - 100)` (the eager push after a write), `entries()` (what a
 *     snapshot writes) and `clone()`;
 *   - restart: the same state written through the file WAL (one append, then a snapshot),
 *     the storage closed, then `WalFile` + `CounterStore` built again on that directory
 *     (snapshot replay to a serving store), timed, with the heap the node's state holds then.
 *
 * Heap figures need a full GC between phases: the module turns `--expose-gc` on itself.
 * The 1M case is never shrunk; `--quick` only skips the restart phase.
 *
 *     npx tsc -p tsconfig.build.json && node dist/bench/counterMap.js [--quick] [--counters N]
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { Context, Effect, Exit, Layer, Logger, LogLevel, Scope } from "effect"
import { CounterMap } from "../src/crdt/CounterMap.js"
import type { CounterName } from "../src/crdt/CounterName.js"
import type { Entry } from "../src/crdt/Entry.js"
import type { ReplicaId } from "../src/crdt/ReplicaId.js"
import { CounterStore } from "../src/node/CounterStore.js"
import * as CounterStoreModule from "../src/node/CounterStore.js"
import * as DataDirFile from "../src/storage/DataDirFile.js"
import { Wal } from "../src/storage/Wal.js"
import * as WalFile from "../src/storage/WalFile.js"
import type { BenchOptions, BenchResult } from "./BenchResult.js"
import { figure, isMain, main } from "./BenchResult.js"

setFlagsFromString("--expose-gc")
const gc = runInNewContext("gc") as () => void

const REPLICA = "Jm3w0zq9T2u8b1XkPq7VfA" as ReplicaId
const GOAL_BYTES = 250

const counterName = (i: number) => `c:${String(i).padStart(7, "0")}` as CounterName

/** The V8 heap in use plus the ArrayBuffers' memory (outside the heap), after a full GC. */
const heapUsed = (): number => {
  gc()
  gc()
  const m = process.memoryUsage()
  return m.heapUsed + m.arrayBuffers
}

const ms = (f: () => unknown): number => {
  const t0 = performance.now()
  f()
  return performance.now() - t0
}

/** CPU time (user + system) of this process in ms: steadier than wall time on a busy machine. */
const cpuMs = (): number => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

/** Wall and CPU time of `f`, in ms. */
const timed = (f: () => unknown): { readonly wall: number; readonly cpu: number } => {
  const c0 = cpuMs()
  const wall = ms(f)
  return { wall, cpu: cpuMs() - c0 }
}

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

const counterArg = (): number => {
  const i = process.argv.indexOf("--counters")
  const n = i < 0 ? Number.NaN : Number(process.argv[i + 1])
  return Number.isSafeInteger(n) && n > 0 ? n : 1_000_000
}

/** The map's phase: build, memory, digest, deltas, entries, clone. */
const inMemory = (n: number, log: (line: string) => void) => {
  const heap0 = heapUsed()
  const rss0 = process.memoryUsage().rss
  const map = new CounterMap()
  const build = timed(() => {
    const batch: Array<Entry> = []
    for (let i = 1; i <= n; i++) {
      batch.push([counterName(i), REPLICA, i, i % 7])
      if (batch.length === 1000 || i === n) {
        map.apply(batch)
        batch.length = 0
      }
    }
  })
  const firstDigest = timed(() => map.digest())
  const heapPerCounter = (heapUsed() - heap0) / n
  const rss = process.memoryUsage().rss
  log(`counterMap: built ${n} counters in ${build.wall.toFixed(0)} ms (${build.cpu.toFixed(0)} ms of CPU), ${heapPerCounter.toFixed(0)} B/counter of heap`)

  const changes = (k: number): void => {
    for (let j = 0; j < k; j++) {
      const i = 1 + ((j * 7919 + map.version) % n)
      const t = map.totals(counterName(i), REPLICA)
      map.apply([[counterName(i), REPLICA, t.inc + 1, t.dec]])
    }
  }
  const digestAfter100: Array<number> = []
  const delta100: Array<number> = []
  for (let round = 0; round < 9; round++) {
    changes(100)
    digestAfter100.push(ms(() => map.digest()))
    const v = map.version - 100
    delta100.push(ms(() => {
      if (map.deltaSince(v).length !== 100) throw new Error("deltaSince(version - 100) is not 100 entries")
    }))
  }
  const entries = timed(() => {
    if (map.entries().length !== n) throw new Error("entries() lost counters")
  })
  let copy: CounterMap | undefined
  const cloned = timed(() => (copy = map.clone()))
  if (copy?.digest() !== map.digest()) throw new Error("the clone differs")
  return {
    n,
    build,
    heapPerCounter,
    rssMB: rss / 1e6,
    rssPerCounter: (rss - rss0) / n,
    firstDigest,
    digestAfter100Ms: median(digestAfter100),
    delta100Ms: median(delta100),
    entries,
    cloned
  }
}

const silent = Logger.withMinimumLogLevel(LogLevel.None)

const storageLayer = (dir: string) =>
  WalFile.layer({ snapshotEveryRecords: 1 }).pipe(Layer.provideMerge(DataDirFile.layer(dir)))

/** Writes `n` counters through the file WAL (ending in a snapshot), then times a restart. */
const restart = (n: number, log: (line: string) => void) =>
  Effect.gen(function*() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dcounter-bench-cm-"))
    try {
      const c0write = cpuMs()
      const writeMs = yield* Effect.scoped(Effect.gen(function*() {
        const ctx = yield* Layer.build(storageLayer(dir))
        const wal = Context.get(ctx, Wal)
        const entries: Array<Entry> = []
        for (let i = 1; i <= n; i++) entries.push([counterName(i), REPLICA, i, i % 7])
        const t0 = performance.now()
        yield* wal.append(entries)
        // one more record: the snapshot starts after a record, the close waits for it
        yield* wal.append([[counterName(1), REPLICA, 2, 1]])
        return performance.now() - t0
      }))
      const writeCpuMs = cpuMs() - c0write
      const snapshot = fs.readdirSync(path.join(dir, "wal")).find((f) => f.endsWith(".snap"))
      const snapshotBytes = snapshot === undefined ? 0 : fs.statSync(path.join(dir, "wal", snapshot)).size
      log(`counterMap: wrote ${n} counters through the WAL in ${writeMs.toFixed(0)} ms, snapshot ${snapshotBytes} bytes`)
      const heap0 = heapUsed()
      const scope = yield* Scope.make()
      const t0 = performance.now()
      const c0 = cpuMs()
      const ctx = yield* Layer.buildWithScope(
        CounterStoreModule.layer().pipe(Layer.provideMerge(storageLayer(dir))),
        scope
      )
      const store = Context.get(ctx, CounterStore)
      const size = yield* store.size
      const restartMs = performance.now() - t0
      const restartCpuMs = cpuMs() - c0
      if (size !== n) return yield* Effect.dieMessage(`restart recovered ${size} entries, not ${n}`)
      const heapPerCounter = (heapUsed() - heap0) / n
      const rss = process.memoryUsage().rss
      yield* Scope.close(scope, Exit.void)
      return { snapshotBytes, writeMs, writeCpuMs, restartMs, restartCpuMs, heapPerCounter, rssMB: rss / 1e6 }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }).pipe(silent)

export const run = async (options?: BenchOptions): Promise<ReadonlyArray<BenchResult>> => {
  const log = options?.log ?? ((line: string) => process.stderr.write(line + "\n"))
  const n = counterArg()
  const m = inMemory(n, log)
  const label = `${n.toLocaleString("en-US")} counters, one replica entry each`
  const results: Array<BenchResult> = [
    {
      bench: "counterMap",
      name: `CounterMap, ${label}`,
      figures: [
        figure("heap", m.heapPerCounter, "B/counter", "lower"),
        figure("RSS", m.rssMB, "MB", "lower"),
        figure("build", m.build.wall, "ms", "lower"),
        figure("build CPU", m.build.cpu, "ms", "lower"),
        figure("first digest()", m.firstDigest.wall, "ms", "lower"),
        figure("first digest() CPU", m.firstDigest.cpu, "ms", "lower"),
        figure("digest() after 100 changes", m.digestAfter100Ms, "ms", "lower"),
        figure("deltaSince(version - 100)", m.delta100Ms, "ms", "lower"),
        figure("entries()", m.entries.wall, "ms", "lower"),
        figure("entries() CPU", m.entries.cpu, "ms", "lower"),
        figure("clone()", m.cloned.wall, "ms", "lower"),
        figure("clone() CPU", m.cloned.cpu, "ms", "lower")
      ],
      goal: `heap <= ${GOAL_BYTES} B/counter`,
      met: m.heapPerCounter <= GOAL_BYTES,
      notes: "CPU: user + system time of the process, steadier than wall time on a busy machine; built with apply() in batches of 1,000; heap: V8 heap + ArrayBuffers after a full GC; RSS of the whole bench process"
    }
  ]
  if (options?.quick !== true) {
    const r = await Effect.runPromise(restart(n, log))
    results.push({
      bench: "counterMap",
      name: `restart from a snapshot, ${label}`,
      figures: [
        figure("WalFile + CounterStore built", r.restartMs, "ms", "lower"),
        figure("built CPU", r.restartCpuMs, "ms", "lower"),
        figure("heap of the state", r.heapPerCounter, "B/counter", "lower"),
        figure("snapshot", r.snapshotBytes / 1e6, "MB", "lower"),
        figure("write + snapshot", r.writeMs, "ms", "lower"),
        figure("write + snapshot CPU", r.writeCpuMs, "ms", "lower")
      ],
      goal: "built <= 3000 ms",
      met: r.restartMs <= 3000,
      notes: "RSS " + r.rssMB.toFixed(0) + " MB (whole bench process); heap: the WAL's durable fold, the store's map and whatever recovery keeps, after a full GC"
    })
  }
  return results
}

if (isMain(import.meta.url)) void main(run)
