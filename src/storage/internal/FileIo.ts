/**
 * The file operations the WAL's write path uses, over file descriptors: Promise functions,
 * but for the synchronous `write`. `WalFile` takes overrides (`WalFileOptions.io`) so tests can inject disk
 * failures (ENOSPC on write, EIO on fdatasync, EROFS on open) into a real WAL.
 */
import * as fs from "node:fs"

export interface FileIo {
  readonly open: (file: string, flags: string) => Promise<number>
  /** Writes all of `buf` at `position` (loops over short writes); synchronous, throws on failure. */
  readonly write: (fd: number, buf: Uint8Array, position: number) => void
  readonly datasync: (fd: number) => Promise<void>
  readonly fsync: (fd: number) => Promise<void>
  readonly truncate: (fd: number, length: number) => Promise<void>
  readonly close: (fd: number) => Promise<void>
  readonly rename: (from: string, to: string) => Promise<void>
  readonly unlink: (file: string) => Promise<void>
  /** fsync of a directory: makes creations, renames and deletions in it durable. */
  readonly syncDir: (dir: string) => Promise<void>
}

const done = (resolve: () => void, reject: (e: unknown) => void) => (err: NodeJS.ErrnoException | null) =>
  err === null ? resolve() : reject(err)

/**
 * A synchronous write: it only copies into the page cache, which costs less than the two
 * thread-pool hand-offs of an asynchronous write (on a busy machine each hand-off waits for
 * a CPU), and the committer can start the fdatasync right after it, in the same turn. The
 * fdatasync, which waits for the disk, stays asynchronous.
 */
const writeAll = (fd: number, buf: Uint8Array, position: number): void => {
  for (let offset = 0; offset < buf.length; ) {
    offset += fs.writeSync(fd, buf, offset, buf.length - offset, position + offset)
  }
}

const open = (file: string, flags: string): Promise<number> =>
  new Promise((resolve, reject) => fs.open(file, flags, 0o644, (err, fd) => (err === null ? resolve(fd) : reject(err))))

const close = (fd: number): Promise<void> => new Promise((resolve, reject) => fs.close(fd, done(resolve, reject)))

const fsync = (fd: number): Promise<void> => new Promise((resolve, reject) => fs.fsync(fd, done(resolve, reject)))

export const nodeIo: FileIo = {
  open,
  write: writeAll,
  datasync: (fd) => new Promise((resolve, reject) => fs.fdatasync(fd, done(resolve, reject))),
  fsync,
  truncate: (fd, length) => new Promise((resolve, reject) => fs.ftruncate(fd, length, done(resolve, reject))),
  close,
  rename: (from, to) => new Promise((resolve, reject) => fs.rename(from, to, done(resolve, reject))),
  unlink: (file) => new Promise((resolve, reject) => fs.unlink(file, done(resolve, reject))),
  syncDir: async (dir) => {
    const fd = await open(dir, "r")
    try {
      await fsync(fd)
    } finally {
      await close(fd)
    }
  }
}
