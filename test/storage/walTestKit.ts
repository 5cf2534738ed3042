/** Helpers for the file WAL tests: temp data directories and opening a node's storage. */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Context, Effect, Exit, Layer, Logger, Scope } from "effect"
import type { CounterName } from "../../src/crdt/CounterName.js"
import { fromEntries } from "../../src/crdt/CounterMap.js"
import type { Entry } from "../../src/crdt/Entry.js"
import type { ReplicaId } from "../../src/crdt/ReplicaId.js"
import { DataDir } from "../../src/storage/DataDir.js"
import * as Record from "../../src/storage/internal/Record.js"
import * as DataDirFile from "../../src/storage/DataDirFile.js"
import { Wal } from "../../src/storage/Wal.js"
import * as WalFile from "../../src/storage/WalFile.js"

export const entry = (name: string, replica: string, inc: number, dec = 0): Entry =>
  [name as CounterName, replica as ReplicaId, inc, dec]

/** The digest of a state given as entries: equal states, equal digests. */
export const digest = (entries: ReadonlyArray<Entry>) => fromEntries(entries).digest()

/** A temp directory removed when the scope closes. */
export const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "dcounter-wal-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

export const storageLayer = (dir: string, options: WalFile.WalFileOptions = {}) =>
  WalFile.layer(options).pipe(Layer.provideMerge(DataDirFile.layer(dir)))

/** Opens storage on `dir` in its own scope: close it with `close` (a clean shutdown). */
export const open = (dir: string, options: WalFile.WalFileOptions = {}) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const ctx = yield* Layer.buildWithScope(storageLayer(dir, options), scope).pipe(
      Effect.onError(() => Scope.close(scope, Exit.void))
    )
    return { wal: Context.get(ctx, Wal), dataDir: Context.get(ctx, DataDir), scope }
  })

export const close = (opened: { readonly scope: Scope.CloseableScope }) => Scope.close(opened.scope, Exit.void)

/** Opens, runs `f`, closes. */
export const withWal = <A, E>(
  dir: string,
  f: (wal: Wal["Type"], dataDir: DataDir["Type"]) => Effect.Effect<A, E>,
  options: WalFile.WalFileOptions = {}
) =>
  Effect.acquireUseRelease(open(dir, options), (o) => f(o.wal, o.dataDir), close)

export const walDir = (dir: string) => path.join(dir, "wal")

export const walFiles = (dir: string) => fs.readdirSync(walDir(dir)).sort()

/** The start offsets of the records in a segment file's bytes. */
export const recordStarts = (bytes: Buffer): Array<number> => {
  const starts: Array<number> = []
  let offset = Record.MAGIC_BYTES
  while (offset < bytes.length) {
    const r = Record.readRecord(bytes, offset)
    // zeros to the end: the space WalFile preallocates after its records
    if (!Record.isRecord(r) && bytes.subarray(offset).every((b) => b === 0)) break
    if (!Record.isRecord(r)) throw new Error(`not a record at ${offset}: ${r.why}`)
    starts.push(offset)
    offset = r.end
  }
  return starts
}

/** The end of the last record of a segment file: where the zeros preallocated after it begin. */
export const recordsEnd = (file: string): number => {
  const bytes = fs.readFileSync(file)
  const last = recordStarts(bytes).at(-1)
  if (last === undefined) return Record.MAGIC_BYTES
  const r = Record.readRecord(bytes, last)
  if (!Record.isRecord(r)) throw new Error(`not a record at ${last}`)
  return r.end
}

/** Runs an effect collecting its log messages (at every level). */
export const collectLogs = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const logger = Logger.make(({ logLevel, message }) => {
      lines.push(`${logLevel.label} ${Array.isArray(message) ? message.join(" ") : String(message)}`)
    })
    const a = yield* effect.pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
    return [a, lines] as const
  })
