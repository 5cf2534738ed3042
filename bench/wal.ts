/**
 * WAL benchmark, all on the same disk in the same run:
 *   - baseline: a plain loop of write(~40 B record) + fdatasync, one after the other;
 *   - `WalFile.append` with 1, 8 and 64 concurrent writers (each writer appends its next
 *     total of its own counter and waits for it to be durable, like an HTTP increment):
 *     durable appends/s, latency, appends per fdatasync, bytes on disk per append;
 *   - recovery of 1,000,000 records (one entry each, as a single writer would leave them):
 *     the time to build the WAL layer, i.e. read, check and fold every record;
 *   - the record payload codec (hand-written, see src/storage/internal/Record.ts) next to
 *     msgpackr on the same entries: why the WAL does not use msgpack.
 *
 *     npx tsc -p tsconfig.build.json && node dist/bench/wal.js [--quick] [--dir D]
 *
 * `--dir D` puts the files under D (default: the OS temp dir, which here is on the same
 * disk as the project). Goals: 64 writers >= 10x the plain loop; replay <= 1 s.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Context, Effect, Layer, Logger, LogLevel, Scope, Exit } from "effect"
import { Packr } from "msgpackr"
import type { CounterName } from "../src/crdt/CounterName.js"
import type { Entry } from "../src/crdt/Entry.js"
import type { ReplicaId } from "../src/crdt/ReplicaId.js"
import * as DataDirFile from "../src/storage/DataDirFile.js"
import * as Record from "../src/storage/internal/Record.js"
import * as WalDir from "../src/storage/internal/WalDir.js"
import type { DataDirError } from "../src/storage/DataDir.js"
import { Wal, type WalCorrupted, type WalError } from "../src/storage/Wal.js"
import * as WalFile from "../src/storage/WalFile.js"
import type { BenchOptions, BenchResult } from "./BenchResult.js"
import { figure, isMain, main, ratioOf } from "./BenchResult.js"

const REPLICA = "Jm3w0zq9T2u8b1XkPq7VfA" as ReplicaId

const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!

const dirArg = (): string | undefined => {
  const i = process.argv.indexOf("--dir")
  return i >= 0 ? process.argv[i + 1] : undefined
}

/**
 * A plain write + fdatasync loop of 40-byte records (the size of one WAL record) on one file:
 * write, then fdatasync through the thread pool and wait for it, one at a time. (The fully
 * synchronous `fdatasyncSync` loop measured about 2x slower on this machine, so the faster
 * one is the baseline.)
 */
class PlainLoop {
  private readonly fd: number
  private position = 0
  private readonly record = Buffer.alloc(40, 7)
  ops = 0
  seconds = 0
  readonly latencies: Array<number> = []

  constructor(private readonly file: string) {
    this.fd = fs.openSync(file, "w")
  }

  /** Runs the loop for `seconds`. */
  async slice(seconds: number): Promise<void> {
    const started = performance.now()
    const end = started + seconds * 1000
    let now = started
    while (now < end) {
      fs.writeSync(this.fd, this.record, 0, this.record.length, this.position)
      await new Promise<void>((resolve, reject) => fs.fdatasync(this.fd, (e) => (e === null ? resolve() : reject(e))))
      this.position += this.record.length
      this.ops++
      const after = performance.now()
      this.latencies.push(after - now)
      now = after
    }
    this.seconds += (now - started) / 1000
  }

  close(): void {
    fs.closeSync(this.fd)
    fs.rmSync(this.file, { force: true })
  }
}

const quiet = Logger.withMinimumLogLevel(LogLevel.Warning)

const storage = (dir: string, options: WalFile.WalFileOptions = {}) =>
  WalFile.layer(options).pipe(Layer.provideMerge(DataDirFile.layer(dir)))

interface WalRunResult {
  readonly appendsPerSecond: number
  readonly p50: number
  readonly p99: number
  readonly perSync: number
  readonly fsyncP50: number
  readonly fsyncMean: number
  readonly bytesPerAppend: number
  /** The plain loop, measured in slices alternating with the WAL's. */
  readonly plainOpsPerSecond: number
}

/**
 * `writers` concurrent appenders on a fresh data directory, in `slices` slices that
 * alternate with slices of the plain loop, so that both see the same (shared, noisy)
 * machine: the ratio compares like with like.
 */
const walRun = (
  root: string,
  writers: number,
  seconds: number,
  slices: number,
  plain: PlainLoop
): Effect.Effect<WalRunResult, DataDirError | WalCorrupted | WalError> =>
  Effect.gen(function*() {
    const dir = path.join(root, `wal-${writers}`)
    const scope = yield* Scope.make()
    const wal = Context.get(yield* Layer.buildWithScope(storage(dir), scope), Wal)
    const latencies: Array<number> = []
    const plainBefore = { ops: plain.ops, seconds: plain.seconds }
    let appends = 0
    let elapsed = 0
    const next = Array.from({ length: writers }, () => 0)
    const names = Array.from({ length: writers }, (_, k) => `bench-${k}` as CounterName)
    for (let slice = 0; slice < slices; slice++) {
      yield* Effect.promise(() => plain.slice(seconds / slices / 2))
      const started = performance.now()
      const end = started + (seconds / slices / 2) * 1000
      const writer = (k: number) =>
        Effect.gen(function*() {
          while (performance.now() < end) {
            const n = ++next[k]!
            const t0 = performance.now()
            yield* wal.append([[names[k]!, REPLICA, n, 0]])
            latencies.push(performance.now() - t0)
            appends++
          }
        })
      yield* Effect.all(Array.from({ length: writers }, (_, k) => writer(k)), { concurrency: "unbounded", discard: true })
      elapsed += (performance.now() - started) / 1000
    }
    const stats = yield* wal.stats
    const syncs = [...stats.syncSeconds].sort((a, b) => a - b)
    yield* Scope.close(scope, Exit.void)
    const walDir = path.join(dir, WalDir.WAL_SUBDIR)
    const onDisk = fs.readdirSync(walDir).reduce((a, f) => a + fs.statSync(path.join(walDir, f)).size, 0)
    fs.rmSync(dir, { recursive: true, force: true })
    latencies.sort((a, b) => a - b)
    return {
      appendsPerSecond: appends / elapsed,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      perSync: stats.appends / Math.max(1, stats.syncs),
      fsyncP50: percentile(syncs, 50) * 1000,
      fsyncMean: (syncs.reduce((x, y) => x + y, 0) / Math.max(1, syncs.length)) * 1000,
      bytesPerAppend: onDisk / Math.max(1, stats.appends),
      plainOpsPerSecond: (plain.ops - plainBefore.ops) / (plain.seconds - plainBefore.seconds)
    }
  }).pipe(quiet)

/** Writes `count` one-entry records straight into segment files, then times recovery. */
const replayRun = (root: string, count: number) =>
  Effect.gen(function*() {
    const dir = path.join(root, "replay")
    const walDir = path.join(dir, WalDir.WAL_SUBDIR)
    fs.mkdirSync(walDir, { recursive: true })
    const names = Array.from({ length: 1000 }, (_, i) => `counter-${i}` as CounterName)
    const totals = new Array<number>(names.length).fill(0)
    const perSegment = 1_000_000
    let bytes = 0
    for (let seq = 1, done = 0; done < count; seq++) {
      const n = Math.min(perSegment, count - done)
      const parts: Array<Buffer> = [Record.SEGMENT_MAGIC]
      for (let i = 0; i < n; i++) {
        const c = (done + i) % names.length
        totals[c]! += 1 + (i % 3)
        const e: Entry = [names[c]!, REPLICA, totals[c]!, i % 5]
        parts.push(Record.encodeEntries([e], 1 << 20))
      }
      const buf = Buffer.concat(parts)
      fs.writeFileSync(path.join(walDir, WalDir.segmentFile(seq)), buf)
      bytes += buf.length
      done += n
    }
    // best of three: the machine is shared, and the best run is the one least disturbed
    const runs: Array<{ readonly seconds: number; readonly cpuSeconds: number }> = []
    for (let i = 0; i < 3; i++) {
      const scope = yield* Scope.make()
      const cpu0 = process.cpuUsage()
      const started = performance.now()
      const wal = Context.get(yield* Layer.buildWithScope(storage(dir), scope), Wal)
      const seconds = (performance.now() - started) / 1000
      const cpu = process.cpuUsage(cpu0)
      const recovered = wal.recovered.length
      yield* Scope.close(scope, Exit.void)
      if (recovered !== names.length) throw new Error(`replay recovered ${recovered} entries, expected ${names.length}`)
      runs.push({ seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 })
    }
    fs.rmSync(dir, { recursive: true, force: true })
    runs.sort((a, b) => a.seconds - b.seconds)
    return { best: runs[0]!, worst: runs[2]!, bytes }
  }).pipe(quiet)

/** Encode + decode of the same entries: the hand-written record codec and msgpackr. */
const codecRun = (rounds: number) => {
  const entries: Array<Entry> = Array.from(
    { length: 10_000 },
    (_, i) => [`counter-${i % 1000}` as CounterName, (i % 2 === 0 ? REPLICA : `r${i % 7}`) as ReplicaId, 1000 + i * 37, i]
  )
  const packr = new Packr({ useRecords: false, moreTypes: false, int64AsType: "number" })
  let decoded = 0
  const sink = () => void decoded++
  const record = Record.encodeEntries(entries, Record.MAX_PAYLOAD_BYTES)
  const packed = packr.pack(entries)
  const cases = {
    handEncode: () => void Record.encodeEntries(entries, Record.MAX_PAYLOAD_BYTES),
    msgpackEncode: () => void packr.pack(entries),
    handDecode: () => {
      const r = Record.readRecord(record, 0)
      if (!Record.isRecord(r)) throw new Error("bad record")
      Record.decodeEntries(record, r.payloadStart, r.end, sink)
    },
    msgpackDecode: () => void packr.unpack(packed)
  }
  // rounds of all four cases interleaved, median per case: the machine is shared and noisy
  const samples = { handEncode: [] as Array<number>, msgpackEncode: [] as Array<number>, handDecode: [] as Array<number>, msgpackDecode: [] as Array<number> }
  for (let r = 0; r < rounds; r++) {
    for (const key of Object.keys(cases) as Array<keyof typeof cases>) {
      const t0 = performance.now()
      cases[key]()
      samples[key].push(performance.now() - t0)
    }
  }
  const median = (xs: Array<number>) => (percentile(xs.sort((a, b) => a - b), 50) * 1e6) / entries.length // ns per entry
  const hand = {
    encode: median(samples.handEncode),
    decode: median(samples.handDecode),
    bytes: (record.length - Record.HEADER_BYTES - 1) / entries.length
  }
  const msgpack = {
    encode: median(samples.msgpackEncode),
    decode: median(samples.msgpackDecode),
    bytes: packed.length / entries.length
  }
  return { hand, msgpack }
}

export const run = async (options: BenchOptions = {}): Promise<ReadonlyArray<BenchResult>> => {
  const log = options.log ?? ((line: string) => process.stderr.write(line + "\n"))
  const quick = options.quick === true
  const seconds = quick ? 1.5 : 5
  const replayRecords = 1_000_000
  const root = fs.mkdtempSync(path.join(dirArg() ?? os.tmpdir(), "dcounter-bench-wal-"))
  const results: Array<BenchResult> = []
  try {
    log(`wal: files under ${root}`)
    const slices = quick ? 3 : 10
    const plain = new PlainLoop(path.join(root, "plain.log"))
    const walRuns: Array<[number, WalRunResult]> = []
    try {
      for (const writers of [1, 8, 64]) {
        log(`wal: WalFile.append with ${writers} writers vs the plain loop, ${slices} alternating slices, ${seconds} s`)
        walRuns.push([writers, await Effect.runPromise(walRun(root, writers, seconds, slices, plain))])
      }
    } finally {
      plain.close()
    }
    const plainLatencies = plain.latencies.sort((a, b) => a - b)
    results.push({
      bench: "wal",
      name: "plain write+fdatasync loop (baseline)",
      figures: [
        figure("durable ops/s", plain.ops / plain.seconds, "ops/s", "higher"),
        figure("p50", percentile(plainLatencies, 50), "ms", "lower"),
        figure("p99", percentile(plainLatencies, 99), "ms", "lower")
      ],
      notes: "40-byte writes at the end of one file, fdatasync after each, one at a time, in slices alternating " +
        `with the WAL runs (per run: ${walRuns.map(([w, r]) => `${Math.round(r.plainOpsPerSecond)} ops/s beside ${w}`).join(", ")})`
    })
    for (const [writers, r] of walRuns) {
      const ratio = ratioOf(r.appendsPerSecond, r.plainOpsPerSecond)
      results.push({
        bench: "wal",
        name: `WalFile.append, ${writers} concurrent writer${writers === 1 ? "" : "s"}`,
        figures: [
          figure("durable appends/s", r.appendsPerSecond, "appends/s", "higher"),
          figure("p50", r.p50, "ms", "lower"),
          figure("p99", r.p99, "ms", "lower"),
          figure("appends per fdatasync", r.perSync, "appends"),
          figure("fdatasync p50", r.fsyncP50, "ms", "lower"),
          figure("fdatasync mean", r.fsyncMean, "ms", "lower"),
          figure("on disk", r.bytesPerAppend, "B/append", "lower")
        ],
        baseline: "plain write+fdatasync loop (baseline)",
        ...(ratio === undefined ? {} : { ratio }),
        ...(writers === 64 ? { goal: ">= 10x the plain loop", met: (ratio ?? 0) >= 10 } : {}),
        notes: `each writer appends its own counter's next total and waits until it is durable; ratio against the ` +
          `plain loop's slices beside this run (${Math.round(r.plainOpsPerSecond)} ops/s)`
      })
    }
    log(`wal: writing ${replayRecords.toLocaleString("en-US")} records, then recovering them`)
    const replay = await Effect.runPromise(replayRun(root, replayRecords))
    results.push({
      bench: "wal",
      name: `recovery of ${replayRecords.toLocaleString("en-US")} one-entry records`,
      figures: [
        figure("replay time", replay.best.seconds, "s", "lower"),
        figure("cpu time", replay.best.cpuSeconds, "s", "lower"),
        figure("slowest of 3", replay.worst.seconds, "s", "lower"),
        figure("records/s", replayRecords / replay.best.seconds, "records/s", "higher"),
        figure("log size", replay.bytes / 1048576, "MiB"),
        figure("on disk", replay.bytes / replayRecords, "B/record", "lower")
      ],
      goal: "<= 1 s",
      met: replay.best.seconds <= 1,
      notes: "building the WAL layer: read, CRC-check, decode and fold every record (1,000 counters); best of 3"
    })
    log("wal: record codec vs msgpackr")
    const codec = codecRun(quick ? 30 : 100)
    results.push({
      bench: "wal",
      name: "record payload codec: hand-written (Record.ts), 10,000 entries",
      figures: [
        figure("encode", codec.hand.encode, "ns/entry", "lower"),
        figure("decode + validate", codec.hand.decode, "ns/entry", "lower"),
        figure("size", codec.hand.bytes, "B/entry", "lower")
      ],
      baseline: "record payload codec: msgpackr",
      ...(ratioOf(codec.hand.encode, codec.msgpack.encode) === undefined
        ? {}
        : { ratio: ratioOf(codec.hand.encode, codec.msgpack.encode)! }),
      notes: "ratio: encode time / msgpackr's; decoding also validates names, ids and totals"
    })
    results.push({
      bench: "wal",
      name: "record payload codec: msgpackr",
      figures: [
        figure("encode", codec.msgpack.encode, "ns/entry", "lower"),
        figure("decode (no validation)", codec.msgpack.decode, "ns/entry", "lower"),
        figure("size", codec.msgpack.bytes, "B/entry", "lower")
      ]
    })
  } finally {
    fs.rmSync(root, { recursive: true, force: true })
  }
  return results
}

if (isMain(import.meta.url)) void main(run)
