/**
 * Offline tools for a node's data directory, behind `dcounter wal check|repair --data-dir D`.
 *
 * `check(dataDir)` reads everything and changes nothing: replica id, lock holder, snapshot,
 * segments, records, entries, every damaged place and the bytes `repair` would cut.
 *
 * `repair(dataDir)` takes the data directory lock (it refuses while a node runs on it) and
 * makes the WAL start-able again, losing as little as possible:
 * - a damaged segment is cut back to its last intact record (like `redis-check-aof --fix`);
 *   later segments are kept, because replay merges entries by pointwise maximum, so the
 *   intact records after a damaged one are still exactly right;
 * - a damaged snapshot is rewritten from its intact records;
 * - a missing segment is recreated empty;
 * - leftovers of an interrupted snapshot or compaction are deleted.
 * When anything other than a torn tail is cut, records this node acknowledged may be gone,
 * so its own entries could go backwards: `repair` then gives the node a NEW replica id
 * (its old entries stay in the state under the old id and are never written again), which
 * is what makes the repaired node safe to rejoin: nothing is counted twice, and whatever
 * peers already hold of the lost records comes back from them.
 *
 * Both return a `WalReport`; `render(report)` prints it, `exitCode(report)` is the CLI's
 * status (0 intact or only a torn tail, 1 damage that stops start-up).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Data, Effect, Either, Schema } from "effect"
import type { Entry } from "../crdt/Entry.js"
import { makeReplicaId, ReplicaId } from "../crdt/ReplicaId.js"
import * as DataDirFile from "./DataDirFile.js"
import { Fold } from "./internal/Fold.js"
import { errorMessage, fsyncDir, writeFileAtomic } from "./internal/fsync.js"
import { encodeEntries, encodeSnapshotEnd, MAGIC_BYTES, SEGMENT_MAGIC, SNAPSHOT_MAGIC } from "./internal/Record.js"
import * as WalDir from "./internal/WalDir.js"

export class WalToolError extends Data.TaggedError("WalToolError")<{
  readonly reason: "NotFound" | "Io"
  readonly path: string
  readonly message: string
  readonly cause?: unknown
}> {}

export type Damage = WalDir.Damage

export interface FileReport {
  readonly file: string
  readonly bytes: number
  readonly records: number
  readonly entries: number
  readonly damage: Damage | undefined
}

export interface WalReport {
  readonly mode: "check" | "repair"
  readonly dataDir: string
  readonly walDir: string
  /** The replica id in the data directory (after a repair: the new one, if it changed). */
  readonly replicaId: string | undefined
  /** `check` only: the pid holding the data directory lock, if that process is running. */
  readonly lockedBy: number | undefined
  readonly snapshot: (FileReport & { readonly coversBefore: number }) | undefined
  readonly segments: ReadonlyArray<FileReport>
  readonly missingSegments: ReadonlyArray<string>
  /** Temp files and files already covered by the snapshot (deleted at start or by repair). */
  readonly leftovers: ReadonlyArray<string>
  /** Records in the segments (the snapshot's entries are counted in `entries` only). */
  readonly records: number
  readonly entries: number
  readonly counters: number
  /** `ok`: intact; `torn-tail`: start-up cuts it off by itself; `corrupted`: start-up refuses. */
  readonly status: "ok" | "torn-tail" | "corrupted"
  /** Every damaged place, in file order. */
  readonly damage: ReadonlyArray<Damage>
  /** `check`: the bytes repair would cut; `repair`: the bytes it cut. */
  readonly bytesCut: number
  /** `check`: what repair would do; `repair`: what it did. */
  readonly actions: ReadonlyArray<string>
  /** `repair`: the replica id the node had before it was given a new one. */
  readonly previousReplicaId: string | undefined
}

const decodeReplicaId = Schema.decodeUnknownEither(ReplicaId)

const readReplicaId = (dir: string): string | undefined => {
  try {
    const text = fs.readFileSync(path.join(dir, DataDirFile.REPLICA_ID_FILE), "latin1").trim()
    return Either.isRight(decodeReplicaId(text)) ? text : `(invalid: ${JSON.stringify(text.slice(0, 40))})`
  } catch {
    return undefined
  }
}

interface Examined {
  readonly inspection: WalDir.Inspection
  readonly state: Fold
  readonly damage: ReadonlyArray<Damage>
  readonly status: WalReport["status"]
}

const examine = (walDir: string): Examined => {
  const state = new Fold()
  const inspection = WalDir.inspect(walDir, state.add)
  const damage: Array<Damage> = []
  if (inspection.snapshot?.damage !== undefined) damage.push(inspection.snapshot.damage)
  for (const s of inspection.segments) if (s.damage !== undefined) damage.push(s.damage)
  const status = WalDir.corruption(inspection) !== undefined ? "corrupted" : damage.length > 0 ? "torn-tail" : "ok"
  return { inspection, state, damage, status }
}

/** What `repair` does for an inspection, in words, and the bytes it cuts. */
const plan = (i: WalDir.Inspection): { readonly actions: Array<string>; readonly bytesCut: number } => {
  const actions: Array<string> = []
  let bytesCut = 0
  if (i.snapshot?.damage !== undefined) {
    const d = i.snapshot.damage
    actions.push(
      `rewrite ${d.file} from its ${i.snapshot.entries} intact entries, dropping ${d.bytes} bytes from offset ${d.offset}`
    )
    bytesCut += d.bytes
  }
  for (const s of i.segments) {
    if (s.damage === undefined) continue
    actions.push(`cut ${s.file} back to its last intact record: ${s.damage.bytes} bytes from offset ${s.damage.offset}`)
    bytesCut += s.damage.bytes
  }
  for (const m of i.missing) actions.push(`recreate missing segment ${WalDir.segmentFile(m)} empty`)
  const leftovers = [...i.temps, ...i.coveredSegments.map(WalDir.segmentFile), ...i.olderSnapshots.map(WalDir.snapshotFile)]
  if (leftovers.length > 0) actions.push(`delete ${leftovers.length} leftover files (${leftovers.join(", ")})`)
  if (WalDir.corruption(i) !== undefined) {
    actions.push("give the node a new replica id, so acknowledged writes that were cut can never be counted twice")
  }
  return { actions, bytesCut }
}

const report = (
  mode: WalReport["mode"],
  dataDir: string,
  walDir: string,
  examined: Examined,
  extra: {
    readonly replicaId: string | undefined
    readonly lockedBy: number | undefined
    readonly actions: ReadonlyArray<string>
    readonly bytesCut: number
    readonly previousReplicaId: string | undefined
    readonly damage: ReadonlyArray<Damage>
    readonly status: WalReport["status"]
  }
): WalReport => {
  const i = examined.inspection
  return {
    mode,
    dataDir,
    walDir,
    replicaId: extra.replicaId,
    lockedBy: extra.lockedBy,
    snapshot: i.snapshot === undefined ? undefined : {
      file: i.snapshot.file,
      bytes: i.snapshot.size,
      records: 0,
      entries: i.snapshot.entries,
      damage: i.snapshot.damage,
      coversBefore: i.snapshot.seq
    },
    segments: i.segments.map((s) => ({
      file: s.file,
      bytes: s.size,
      records: s.records,
      entries: s.entries,
      damage: s.damage
    })),
    missingSegments: i.missing.map(WalDir.segmentFile),
    leftovers: [...i.temps, ...i.coveredSegments.map(WalDir.segmentFile), ...i.olderSnapshots.map(WalDir.snapshotFile)],
    records: i.records,
    entries: i.entries,
    counters: examined.state.counters,
    status: extra.status,
    damage: extra.damage,
    bytesCut: extra.bytesCut,
    actions: extra.actions,
    previousReplicaId: extra.previousReplicaId
  }
}

const existingDir = (dataDir: string) =>
  Effect.suspend(() => {
    const dir = path.resolve(dataDir)
    return fs.existsSync(dir)
      ? Effect.succeed(dir)
      : Effect.fail(new WalToolError({ reason: "NotFound", path: dir, message: `no data directory at ${dir}` }))
  })

const ioError = (dir: string, what: string) => (e: unknown) =>
  new WalToolError({ reason: "Io", path: dir, message: `${what} in ${dir}: ${errorMessage(e)}`, cause: e })

/** Reads a data directory's WAL and reports its state. Changes nothing. */
export const check = Effect.fn("WalTool.check")(function*(dataDir: string) {
  const dir = yield* existingDir(dataDir)
  const walDir = path.join(dir, WalDir.WAL_SUBDIR)
  const examined = yield* Effect.try({ try: () => examine(walDir), catch: ioError(dir, "cannot read the WAL") })
  const { actions, bytesCut } = plan(examined.inspection)
  const owner = DataDirFile.lockOwner(dir)
  return report("check", dir, walDir, examined, {
    replicaId: readReplicaId(dir),
    lockedBy: owner?.running === true ? owner.pid : undefined,
    actions,
    bytesCut,
    previousReplicaId: undefined,
    damage: examined.damage,
    status: examined.status
  })
})

const truncateTo = (file: string, length: number): void => {
  const fd = fs.openSync(file, "r+")
  try {
    if (length < MAGIC_BYTES) {
      fs.ftruncateSync(fd, 0)
      fs.writeSync(fd, SEGMENT_MAGIC, 0, MAGIC_BYTES, 0)
    } else {
      fs.ftruncateSync(fd, length)
    }
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

const rewriteSnapshot = (walDir: string, seq: number, entries: ReadonlyArray<Entry>): void => {
  const body = entries.length === 0 ? Buffer.alloc(0) : encodeEntries(entries, 1024 * 1024)
  writeFileAtomic(
    path.join(walDir, WalDir.snapshotFile(seq)),
    Buffer.concat([SNAPSHOT_MAGIC, body, encodeSnapshotEnd(entries.length, seq)])
  )
}

/**
 * Cuts a data directory's WAL back to what is intact so that the node starts again (see the
 * module comment for exactly what it does). Takes the data directory lock: fails with
 * `DataDirError` reason `Locked` while a node runs on it.
 */
export const repair = Effect.fn("WalTool.repair")(function*(dataDir: string) {
  const dir = yield* existingDir(dataDir)
  const walDir = path.join(dir, WalDir.WAL_SUBDIR)
  return yield* Effect.scoped(
    Effect.gen(function*() {
      const held = yield* DataDirFile.make(dir)
      const before = yield* Effect.try({ try: () => examine(walDir), catch: ioError(dir, "cannot read the WAL") })
      const i = before.inspection
      const { actions, bytesCut } = plan(i)
      const mustRenew = WalDir.corruption(i) !== undefined
      const previousReplicaId = mustRenew ? held.replicaId : undefined
      yield* Effect.try({
        try: () => {
          if (i.snapshot?.damage !== undefined) {
            const salvaged = new Fold()
            WalDir.scanSnapshot(walDir, i.snapshot.seq, salvaged.add)
            rewriteSnapshot(walDir, i.snapshot.seq, salvaged.entries())
          }
          for (const s of i.segments) {
            if (s.damage !== undefined) truncateTo(path.join(walDir, s.file), s.validEnd)
          }
          for (const m of i.missing) {
            fs.writeFileSync(path.join(walDir, WalDir.segmentFile(m)), SEGMENT_MAGIC, { flush: true })
          }
          const leftovers = [
            ...i.temps,
            ...i.coveredSegments.map(WalDir.segmentFile),
            ...i.olderSnapshots.map(WalDir.snapshotFile)
          ]
          for (const name of leftovers) fs.rmSync(path.join(walDir, name), { force: true })
          if (fs.existsSync(walDir)) fsyncDir(walDir)
        },
        catch: ioError(dir, "cannot repair the WAL")
      })
      let replicaId: string = held.replicaId
      if (mustRenew) {
        const fresh = makeReplicaId()
        yield* Effect.try({
          try: () => writeFileAtomic(path.join(dir, DataDirFile.REPLICA_ID_FILE), `${fresh}\n`),
          catch: ioError(dir, "cannot write the new replica id")
        })
        replicaId = fresh
        yield* Effect.logWarning(`repaired ${dir}: the node is now replica ${fresh} (was ${held.replicaId})`)
      }
      const after = yield* Effect.try({ try: () => examine(walDir), catch: ioError(dir, "cannot read the repaired WAL") })
      if (after.status !== "ok") {
        return yield* Effect.fail(
          new WalToolError({
            reason: "Io",
            path: dir,
            message: `the WAL in ${walDir} is still damaged after repair (${after.damage.map((d) => `${d.file}@${d.offset}`).join(", ")})`
          })
        )
      }
      return report("repair", dir, walDir, after, {
        replicaId,
        lockedBy: undefined,
        actions: actions.length === 0 ? ["nothing to repair"] : actions,
        bytesCut,
        previousReplicaId,
        damage: before.damage,
        status: before.status
      })
    })
  )
})

const kib = (n: number) => (n < 1024 ? `${n} B` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`)

/** The report as text for a terminal. */
export const render = (r: WalReport): string => {
  const lines: Array<string> = []
  const row = (label: string, text: string) => lines.push(`${label.padEnd(14)}${text}`)
  row("data dir", r.dataDir)
  row("replica id", r.replicaId ?? "(none: the node will make one)")
  if (r.previousReplicaId !== undefined) row("", `(new; was ${r.previousReplicaId})`)
  if (r.lockedBy !== undefined) row("in use", `by running process ${r.lockedBy}: the log may be mid-write`)
  row(
    "snapshot",
    r.snapshot === undefined
      ? "none"
      : `${r.snapshot.file}: ${r.snapshot.entries} entries, ${kib(r.snapshot.bytes)}, state of segments < ${r.snapshot.coversBefore}`
  )
  const segBytes = r.segments.reduce((a, s) => a + s.bytes, 0)
  row(
    "segments",
    r.segments.length === 0
      ? "none"
      : `${r.segments.length} (${r.segments[0]!.file} .. ${r.segments.at(-1)!.file}), ${r.records} records, ${kib(segBytes)}`
  )
  if (r.missingSegments.length > 0) row("missing", r.missingSegments.join(", "))
  if (r.leftovers.length > 0) row("leftovers", r.leftovers.join(", "))
  row("state", `${r.counters} counters, ${r.entries} entries read`)
  if (r.damage.length === 0 && r.missingSegments.length === 0) row("damage", "none")
  for (const d of r.damage) {
    row(
      "damage",
      `${d.file} at offset ${d.offset}: ${d.why}; ${kib(d.bytes)} to the end of the file` +
        (d.tornTail ? " (a torn last write, never acknowledged)" : "")
    )
  }
  const verdict = {
    ok: "OK: intact",
    "torn-tail": "OK: a torn last write, which start-up cuts off by itself",
    corrupted: "CORRUPTED: the node refuses to start on this WAL"
  }[r.status]
  row(r.mode === "repair" ? "was" : "status", verdict)
  if (r.mode === "check") {
    if (r.actions.length > 0) {
      lines.push(`repair would (\`dcounter wal repair --data-dir ${r.dataDir}\`):`)
      for (const a of r.actions) lines.push(`  - ${a}`)
      lines.push(`  bytes cut: ${r.bytesCut}`)
    }
  } else {
    lines.push("repair did:")
    for (const a of r.actions) lines.push(`  - ${a}`)
    lines.push(`  bytes cut: ${r.bytesCut}`)
    lines.push("status        OK: the node can start")
  }
  return lines.join("\n")
}

/** The CLI exit status: 0 when the node can start on the WAL as it is (after repair: always), 1 otherwise. */
export const exitCode = (r: WalReport): number => (r.mode === "check" && r.status === "corrupted" ? 1 : 0)
