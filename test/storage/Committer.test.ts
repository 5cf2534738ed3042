/**
 * The WAL's committer on its own, over a segment in memory whose fdatasyncs the test
 * completes by hand: appends handed over while a batch is in flight become the next
 * batch (one record, coalesced), callers are answered in the order they were handed
 * over, and a failed fdatasync fails its batch and every append queued behind it, gives
 * the batch's lazy state back and cuts the segment back before the next write.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Logger, Option } from "effect"
import type { Entry } from "../../src/crdt/Entry.js"
import { CounterMap } from "../../src/crdt/CounterMap.js"
import type { CounterName } from "../../src/crdt/CounterName.js"
import type { ReplicaId } from "../../src/crdt/ReplicaId.js"
import { Coalescer } from "../../src/storage/internal/Coalescer.js"
import * as Committer from "../../src/storage/internal/Committer.js"
import type { FileIo } from "../../src/storage/internal/FileIo.js"
import { decodeEntries, isRecord, MAGIC_BYTES, readRecord } from "../../src/storage/internal/Record.js"
import * as SegmentWriter from "../../src/storage/internal/SegmentWriter.js"
import type { Snapshotter } from "../../src/storage/internal/Snapshotter.js"
import * as WalTally from "../../src/storage/internal/WalTally.js"
import { WalError } from "../../src/storage/Wal.js"

const silent = Logger.replace(Logger.defaultLogger, Logger.none)

const entry = (name: string, replica: string, inc: number, dec = 0): Entry =>
  [name as CounterName, replica as ReplicaId, inc, dec] as const

type Outcome = Exit.Exit<void, WalError>

/** One file in memory; every fdatasync waits until the test settles it. */
const memoryFile = () => {
  let bytes = Buffer.alloc(64 * 1024)
  let length = MAGIC_BYTES
  const syncs: Array<{ readonly resolve: () => void; readonly reject: (e: unknown) => void }> = []
  const waiting: Array<() => void> = []
  const io: FileIo = {
    open: () => Promise.resolve(3),
    write: (_fd, buf, position) => {
      if (position + buf.length > bytes.length) {
        const grown = Buffer.alloc(2 * (position + buf.length))
        bytes.copy(grown)
        bytes = grown
      }
      bytes.set(buf, position)
      length = Math.max(length, position + buf.length)
    },
    datasync: () =>
      new Promise<void>((resolve, reject) => {
        syncs.push({ resolve, reject })
        for (const wake of waiting.splice(0)) wake()
      }),
    fsync: () => Promise.resolve(),
    truncate: (_fd, to) => {
      bytes.fill(0, to, length)
      length = to
      return Promise.resolve()
    },
    close: () => Promise.resolve(),
    rename: () => Promise.resolve(),
    unlink: () => Promise.resolve(),
    syncDir: () => Promise.resolve()
  }
  /** Waits until an fdatasync is pending and takes it. */
  const nextSync = Effect.async<{ readonly resolve: () => void; readonly reject: (e: unknown) => void }>((resume) => {
    const take = () => resume(Effect.succeed(syncs.shift()!))
    if (syncs.length > 0) take()
    else waiting.push(take)
  })
  /** The entries of each record in the file, in order. */
  const records = (): Array<Array<Entry>> => {
    const out: Array<Array<Entry>> = []
    for (let at = MAGIC_BYTES; at < length;) {
      const r = readRecord(bytes, at, length)
      if (!isRecord(r)) break
      const got: Array<Entry> = []
      decodeEntries(bytes, r.payloadStart, r.end, (name, replica, inc, dec) => got.push([name, replica, inc, dec]))
      out.push(got)
      at = r.end
    }
    return out
  }
  return { io, nextSync, records, length: () => length }
}

const neverDue: Snapshotter = { dueNow: () => false, maybeSnapshot: Effect.void, running: () => undefined }

const setup = Effect.gen(function*() {
  const file = memoryFile()
  const tally = WalTally.make()
  const writer = SegmentWriter.make(
    { walDir: "/memory", io: file.io, segmentBytes: 1 << 30, maxRecordBytes: 1 << 20, zeros: Buffer.alloc(0) },
    tally,
    { seq: 1, fd: 3, size: MAGIC_BYTES, allocated: MAGIC_BYTES }
  )
  const fold = new CounterMap()
  const lazy = new Coalescer()
  const committer = yield* Committer.make(
    { maxPendingAppends: 1024, closedError: () => new WalError({ reason: "Closed", message: "closed" }) },
    { fold, writer, snapshotter: neverDue, lazy, tally }
  )
  const outcomes: Array<[string, Outcome]> = []
  const offer = (label: string, entries: ReadonlyArray<Entry>) =>
    committer.batcher.offer({ entries, appends: 1 }, (exit) => outcomes.push([label, exit]))
  return { file, tally, fold, lazy, offer, outcomes }
})

const reasonOf = (exit: Outcome): string =>
  Exit.isSuccess(exit) ? "ok" : Option.match(Cause.failureOption(exit.cause), {
    onNone: () => "defect",
    onSome: (e) => e.reason
  })

describe("Committer", () => {
  it.scopedLive("appends queued behind a batch in flight are the next batch: one record, coalesced, answered in order", () =>
    Effect.gen(function*() {
      const { file, fold, offer, outcomes, tally } = yield* setup
      offer("a", [entry("x", "r1", 1)])
      const first = yield* file.nextSync
      offer("b", [entry("x", "r1", 3)])
      offer("c", [entry("x", "r1", 2), entry("y", "r2", 5)])
      offer("d", [entry("y", "r2", 4, 1)])
      expect(outcomes).toEqual([])
      first.resolve()
      const second = yield* file.nextSync
      // the next batch was written before the first one's caller was answered, then "a" was answered
      expect(file.records()).toHaveLength(2)
      expect(outcomes.map(([label]) => label)).toEqual(["a"])
      second.resolve()
      yield* Effect.yieldNow()
      yield* Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
      expect(outcomes.map(([label, exit]) => `${label}:${reasonOf(exit)}`)).toEqual(["a:ok", "b:ok", "c:ok", "d:ok"])
      const [one, two] = file.records()
      expect(one).toEqual([entry("x", "r1", 1)])
      // coalesced by (name, replica): the maximum of each total
      expect([...two!].sort()).toEqual([entry("x", "r1", 3), entry("y", "r2", 5, 1)].sort())
      expect(fold.entries().sort()).toEqual([entry("x", "r1", 3), entry("y", "r2", 5, 1)].sort())
      expect(tally.appends).toBe(4)
      expect(tally.records).toBe(2)
    }).pipe(Effect.provide(silent)))

  it.scopedLive("a failed fdatasync fails its batch and everything queued behind it; the segment is cut back before the next write", () =>
    Effect.gen(function*() {
      const { file, fold, lazy, offer, outcomes } = yield* setup
      offer("ok", [entry("kept", "r1", 1)])
      ;(yield* file.nextSync).resolve()
      const durableEnd = yield* Effect.promise(async () => {
        await new Promise<void>((resolve) => setImmediate(resolve))
        return file.length()
      })
      lazy.add([entry("merged", "r9", 7)])
      offer("lost", [entry("lost", "r1", 1)])
      const failing = yield* file.nextSync
      offer("behind-1", [entry("behind", "r1", 2)])
      offer("behind-2", [entry("behind", "r2", 2)])
      failing.reject(Object.assign(new Error("EIO: simulated"), { code: "EIO" }))
      // the cut-back: truncate, then its own fdatasync
      ;(yield* file.nextSync).resolve()
      yield* Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
      expect(outcomes.map(([label, exit]) => `${label}:${reasonOf(exit)}`)).toEqual([
        "ok:ok",
        "lost:Io",
        "behind-1:Io",
        "behind-2:Io"
      ])
      expect(file.length()).toBe(durableEnd)
      expect(fold.entries()).toEqual([entry("kept", "r1", 1)])
      // the lazy state the failed batch carried is pending again, and goes with the next batch
      expect(lazy.size).toBe(1)
      offer("after", [entry("after", "r1", 1)])
      ;(yield* file.nextSync).resolve()
      yield* Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
      expect(outcomes.at(-1)?.[0]).toBe("after")
      expect(reasonOf(outcomes.at(-1)![1])).toBe("ok")
      expect(file.records().map((r) => r.map((e) => e[0]).sort())).toEqual([["kept"], ["after", "merged"]])
    }).pipe(Effect.provide(silent)))
})
