import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "../support/vitest.js"
import { Context, Effect, Layer } from "effect"
import { DataDir } from "../../src/storage/DataDir.js"
import * as DataDirFile from "../../src/storage/DataDirFile.js"

const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "dcounter-datadir-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

const open = (dir: string) => Effect.map(Layer.build(DataDirFile.layer(dir)), (ctx) => Context.get(ctx, DataDir))

const startTime = (pid: number) => {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "latin1")
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]
}

describe("DataDirFile", () => {
  it.scopedLive("creates the directory and a replica id once, and keeps it", () =>
    Effect.gen(function*() {
      const root = yield* tempDir
      const dir = path.join(root, "a", "b")
      const first = yield* open(dir).pipe(Effect.scoped)
      expect(first.fresh).toBe(true)
      expect(first.path).toBe(dir)
      expect(fs.readFileSync(path.join(dir, "replica-id"), "latin1")).toBe(`${first.replicaId}\n`)
      expect(fs.existsSync(path.join(dir, "LOCK"))).toBe(false)
      const second = yield* open(dir).pipe(Effect.scoped)
      expect(second.fresh).toBe(false)
      expect(second.replicaId).toBe(first.replicaId)
      // a lost data directory: a fresh id, never the old one
      fs.rmSync(dir, { recursive: true })
      const third = yield* open(dir).pipe(Effect.scoped)
      expect(third.fresh).toBe(true)
      expect(third.replicaId).not.toBe(first.replicaId)
    }))

  it.scopedLive("refuses a second opener in the same process while the first holds it", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      yield* Effect.scoped(Effect.gen(function*() {
        yield* open(dir)
        const err = yield* open(dir).pipe(Effect.scoped, Effect.flip)
        expect(err._tag).toBe("DataDirError")
        expect(err.reason).toBe("Locked")
        expect(err.message).toContain("in use by another dcounter process")
      }))
      yield* open(dir).pipe(Effect.scoped)
    }))

  it.scopedLive("refuses while another live process owns the lock", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const child = yield* Effect.acquireRelease(
        Effect.sync(() => spawn("sleep", ["30"], { stdio: "ignore" })),
        (c) => Effect.sync(() => c.kill("SIGKILL"))
      )
      const pid = child.pid!
      fs.writeFileSync(path.join(dir, "LOCK"), `${pid} ${startTime(pid)}\n`)
      const err = yield* open(dir).pipe(Effect.scoped, Effect.flip)
      expect(err.reason).toBe("Locked")
      expect(err.message).toContain(`pid ${pid}`)
      // the same pid with another start time is a reused pid: the lock is stale
      fs.writeFileSync(path.join(dir, "LOCK"), `${pid} 1\n`)
      const ok = yield* open(dir).pipe(Effect.scoped)
      expect(ok.fresh).toBe(true)
    }))

  it.scopedLive("breaks the stale lock of a dead process or of an earlier run with our pid", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const child = spawn("true", [], { stdio: "ignore" })
      const deadPid = child.pid!
      yield* Effect.async<void>((resume) => {
        child.on("exit", () => resume(Effect.void))
      })
      fs.writeFileSync(path.join(dir, "LOCK"), `${deadPid} 12345\n`)
      yield* open(dir).pipe(Effect.scoped)
      fs.writeFileSync(path.join(dir, "LOCK"), `${process.pid} ${startTime(process.pid)}\n`)
      yield* open(dir).pipe(Effect.scoped)
      expect(fs.readdirSync(dir).sort()).toEqual(["replica-id"])
    }))

  it.scopedLive("breaks the lock of a killed process its parent has not reaped yet (a zombie)", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      // sh starts `sleep 30` in the background, prints its pid, then becomes `sleep 60`,
      // which never waits for children: once killed, the background sleep stays a zombie.
      const parent = yield* Effect.acquireRelease(
        Effect.sync(() => spawn("sh", ["-c", "sleep 30 & echo $!; exec sleep 60"], { stdio: ["ignore", "pipe", "ignore"] })),
        (c) => Effect.sync(() => c.kill("SIGKILL"))
      )
      const pid = yield* Effect.async<number>((resume) => {
        parent.stdout!.once("data", (chunk: Buffer) => resume(Effect.succeed(Number(chunk.toString("latin1").trim()))))
      })
      fs.writeFileSync(path.join(dir, "LOCK"), `${pid} ${startTime(pid)}\n`)
      const held = yield* open(dir).pipe(Effect.scoped, Effect.flip)
      expect(held.reason).toBe("Locked")
      process.kill(pid, "SIGKILL")
      const state = () => {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, "latin1")
        return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0]
      }
      yield* Effect.gen(function*() {
        while (state() !== "Z") yield* Effect.sleep("10 millis")
      }).pipe(Effect.timeout("5 seconds"))
      expect(state()).toBe("Z")
      const ok = yield* open(dir).pipe(Effect.scoped)
      expect(ok.fresh).toBe(true)
      expect(DataDirFile.lockOwner(dir)).toBeUndefined()
    }))

  it.scopedLive("refuses a lock file or replica id it does not understand", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      fs.writeFileSync(path.join(dir, "LOCK"), "hello")
      const err = yield* open(dir).pipe(Effect.scoped, Effect.flip)
      expect(err.reason).toBe("Invalid")
      fs.rmSync(path.join(dir, "LOCK"))
      fs.writeFileSync(path.join(dir, "replica-id"), "not a valid id!\n")
      const err2 = yield* open(dir).pipe(Effect.scoped, Effect.flip)
      expect(err2.reason).toBe("Invalid")
      expect(err2.message).toContain("replica-id")
      expect(fs.existsSync(path.join(dir, "LOCK"))).toBe(false)
    }))
})
