/**
 * Small synchronous file helpers shared by the storage modules: atomic file replacement
 * (temp file, fsync, rename, fsync of the directory) and directory fsync.
 */
import * as fs from "node:fs"
import * as path from "node:path"

/** fsyncs a directory so that creations, renames and deletions in it are durable. */
export const fsyncDir = (dir: string): void => {
  const fd = fs.openSync(dir, "r")
  try {
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

/** Replaces `file` with `data` atomically: a reader sees the old or the new content, never a mix. */
export const writeFileAtomic = (file: string, data: Uint8Array | string): void => {
  const tmp = `${file}.tmp`
  const fd = fs.openSync(tmp, "w")
  try {
    fs.writeFileSync(fd, data)
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
  fs.renameSync(tmp, file)
  fsyncDir(path.dirname(file))
}

/** The `code` of a Node system error, if it is one. */
export const errorCode = (e: unknown): string | undefined =>
  typeof e === "object" && e !== null && "code" in e && typeof e.code === "string" ? e.code : undefined

export const errorMessage = (e: unknown): string => (e instanceof Error ? e.message : String(e))
