/**
 * `DataDir` on a real directory.
 *
 * - The directory is created if missing.
 * - It is locked for the life of the layer by a `LOCK` file holding `<pid> <start time>`
 *   (the start time from /proc, so a pid reused by an unrelated process after a reboot or a
 *   container restart is not mistaken for the owner). The file is made complete in a temp
 *   file and then hard-linked into place, which fails atomically if a lock exists: there is
 *   never a half-written lock. A lock whose owner is dead (or a zombie) is stale and is broken (renamed
 *   away, re-checked, removed); a live owner makes the layer fail with `DataDirError`
 *   reason `Locked`. Node has no flock(2); this is the portable equivalent.
 * - The replica id lives in `replica-id`, written atomically (temp, fsync, rename, fsync
 *   of the directory). A directory without it (new, emptied or lost) gets a fresh random
 *   id and `fresh: true`, so a node never reuses an id whose entries peers may hold with
 *   higher values.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Either, Layer, Schema } from "effect"
import { makeReplicaId, ReplicaId } from "../crdt/ReplicaId.js"
import { DataDir, DataDirError } from "./DataDir.js"
import { errorCode, errorMessage, fsyncDir, writeFileAtomic } from "./internal/fsync.js"

export const LOCK_FILE = "LOCK"
export const REPLICA_ID_FILE = "replica-id"

/** Directories locked by this process: a second opener in the same process is refused too. */
const lockedHere = new Set<string>()

/** The start time of a process (clock ticks since boot, /proc/<pid>/stat field 22), if known. */
const startTimeOf = (pid: number): string | undefined => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "latin1")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return fields[19]
  } catch {
    return undefined
  }
}

/**
 * Whether a process has ended but not yet been reaped by its parent (state Z, zombie, or X,
 * dead; /proc/<pid>/stat field 3). It holds no file, port or lock any more, yet signal 0
 * still reaches it: a node killed with SIGKILL under a parent that has not waited for it
 * yet must not block its own restart.
 */
const isDeadOrZombie = (pid: number): boolean => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "latin1")
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3)
    return state === "Z" || state === "X"
  } catch {
    return false
  }
}

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return errorCode(e) === "EPERM"
  }
}

interface LockOwner {
  readonly pid: number
  readonly start: string | undefined
}

const parseLock = (text: string): LockOwner | undefined => {
  const m = /^(\d+) (\S+)\n?$/.exec(text)
  if (m === null) return undefined
  return { pid: Number(m[1]), start: m[2] === "-" ? undefined : m[2] }
}

/** Whether the process that wrote this lock is still running. */
const ownerIsRunning = (owner: LockOwner, dir: string): boolean => {
  if (owner.pid === process.pid) return lockedHere.has(dir)
  if (!isAlive(owner.pid) || isDeadOrZombie(owner.pid)) return false
  const start = startTimeOf(owner.pid)
  return owner.start === undefined || start === undefined || start === owner.start
}

/**
 * Who holds the lock on `dataDir`, read-only (for `dcounter wal check`): the pid written in
 * the lock file and whether that process is still running; undefined when there is no lock.
 */
export const lockOwner = (dataDir: string): { readonly pid: number; readonly running: boolean } | undefined => {
  const dir = path.resolve(dataDir)
  let text: string
  try {
    text = fs.readFileSync(path.join(dir, LOCK_FILE), "latin1")
  } catch {
    return undefined
  }
  const owner = parseLock(text)
  return owner === undefined ? undefined : { pid: owner.pid, running: ownerIsRunning(owner, dir) }
}

const ioError = (dir: string, what: string) => (e: unknown) =>
  new DataDirError({ reason: "Io", path: dir, message: `${what} in ${dir}: ${errorMessage(e)}`, cause: e })

const acquireLock = (dir: string): Effect.Effect<void, DataDirError> =>
  Effect.gen(function*() {
    const lockPath = path.join(dir, LOCK_FILE)
    const content = `${process.pid} ${startTimeOf(process.pid) ?? "-"}\n`
    for (let attempt = 0; attempt < 3; attempt++) {
      const created = yield* Effect.try({
        try: () => {
          const tmp = `${lockPath}.${process.pid}.${Math.random().toString(36).slice(2)}`
          fs.writeFileSync(tmp, content)
          try {
            fs.linkSync(tmp, lockPath)
            return true
          } catch (e) {
            if (errorCode(e) === "EEXIST") return false
            throw e
          } finally {
            fs.unlinkSync(tmp)
          }
        },
        catch: ioError(dir, "cannot create the lock file")
      })
      if (created) {
        lockedHere.add(dir)
        return
      }
      const existing = yield* Effect.try({
        try: () => fs.readFileSync(lockPath, "latin1"),
        catch: (e) => e
      }).pipe(Effect.either)
      if (Either.isLeft(existing)) {
        if (errorCode(existing.left) === "ENOENT") continue
        return yield* Effect.fail(ioError(dir, "cannot read the lock file")(existing.left))
      }
      const owner = parseLock(existing.right)
      if (owner === undefined) {
        return yield* Effect.fail(
          new DataDirError({
            reason: "Invalid",
            path: dir,
            message: `the lock file ${lockPath} is not a dcounter lock (${JSON.stringify(existing.right.slice(0, 40))}); ` +
              `if no dcounter node uses ${dir}, delete it and start again`
          })
        )
      }
      if (ownerIsRunning(owner, dir)) {
        return yield* Effect.fail(
          new DataDirError({
            reason: "Locked",
            path: dir,
            message: `data directory ${dir} is in use by another dcounter process (pid ${owner.pid}); ` +
              `stop it or give this node its own --data-dir`
          })
        )
      }
      // Stale: break it. Rename it away (only one breaker can win), check it is the lock we
      // judged, then remove it; if a live lock got there meanwhile, put it back.
      const broken = yield* Effect.try({
        try: () => {
          const aside = `${lockPath}.stale.${process.pid}.${Math.random().toString(36).slice(2)}`
          try {
            fs.renameSync(lockPath, aside)
          } catch (e) {
            if (errorCode(e) === "ENOENT") return true
            throw e
          }
          if (fs.readFileSync(aside, "latin1") === existing.right) {
            fs.unlinkSync(aside)
            return true
          }
          try {
            fs.linkSync(aside, lockPath)
          } finally {
            fs.unlinkSync(aside)
          }
          return false
        },
        catch: ioError(dir, "cannot break a stale lock")
      })
      if (broken) {
        yield* Effect.logWarning(`broke the stale lock of process ${owner.pid} (no longer running) on ${dir}`)
      }
    }
    return yield* Effect.fail(
      new DataDirError({ reason: "Locked", path: dir, message: `could not lock data directory ${dir}: it keeps changing` })
    )
  })

const releaseLock = (dir: string): Effect.Effect<void> =>
  Effect.suspend(() => {
    lockedHere.delete(dir)
    const lockPath = path.join(dir, LOCK_FILE)
    try {
      const owner = parseLock(fs.readFileSync(lockPath, "latin1"))
      if (owner?.pid === process.pid) fs.unlinkSync(lockPath)
      return Effect.void
    } catch (e) {
      return Effect.logWarning(`could not remove the lock file ${lockPath}: ${errorMessage(e)}`)
    }
  })

const decodeReplicaId = Schema.decodeUnknownEither(ReplicaId)

const readOrCreateReplicaId = (dir: string): Effect.Effect<{ replicaId: ReplicaId; fresh: boolean }, DataDirError> =>
  Effect.gen(function*() {
    const file = path.join(dir, REPLICA_ID_FILE)
    const text = yield* Effect.try({
      try: () => {
        try {
          return fs.readFileSync(file, "latin1")
        } catch (e) {
          if (errorCode(e) === "ENOENT") return undefined
          throw e
        }
      },
      catch: ioError(dir, "cannot read the replica id")
    })
    if (text !== undefined) {
      const decoded = decodeReplicaId(text.trim())
      if (Either.isRight(decoded)) return { replicaId: decoded.right, fresh: false }
      return yield* Effect.fail(
        new DataDirError({
          reason: "Invalid",
          path: dir,
          message: `${file} does not hold a replica id (${JSON.stringify(text.slice(0, 70))}); ` +
            `delete it to start this node as a new replica`
        })
      )
    }
    const replicaId = makeReplicaId()
    yield* Effect.try({
      try: () => writeFileAtomic(file, `${replicaId}\n`),
      catch: ioError(dir, "cannot write the replica id")
    })
    return { replicaId, fresh: true }
  })

export const make = Effect.fn("DataDirFile.make")(function*(dataDir: string) {
  const dir = path.resolve(dataDir)
  yield* Effect.try({
    try: () => {
      if (!fs.existsSync(dir)) {
        fs.mkdirSync(dir, { recursive: true })
        fsyncDir(path.dirname(dir))
      }
    },
    catch: ioError(dir, "cannot create the data directory")
  })
  yield* Effect.acquireRelease(acquireLock(dir), () => releaseLock(dir))
  const { fresh, replicaId } = yield* readOrCreateReplicaId(dir)
  if (fresh) yield* Effect.logInfo(`data directory ${dir} had no replica id: this node is new replica ${replicaId}`)
  return DataDir.of({ path: dir, replicaId, fresh })
})

/** The node's data directory at `dataDir`, locked while the layer lives. */
export const layer = (dataDir: string): Layer.Layer<DataDir, DataDirError> => Layer.scoped(DataDir, make(dataDir))
