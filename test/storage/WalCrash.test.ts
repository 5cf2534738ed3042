/**
 * Crash test with real processes: a child appends as fast as it can and prints every
 * append that resolved; it is killed with SIGKILL at random moments (sometimes while it is
 * still recovering); after every kill the WAL is recovered and must hold every append the
 * child saw resolve, and nothing that was never appended.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "../support/vitest.js"
import { build } from "esbuild"
import { Effect, Logger, LogLevel } from "effect"
import { Fold } from "../../src/storage/internal/Fold.js"
import * as WalDir from "../../src/storage/internal/WalDir.js"
import { OPTIONS, WRITERS } from "./fixtures/walCrashOptions.js"
import { tempDir, withWal } from "./walTestKit.js"

const ROUNDS = 22
const here = path.dirname(fileURLToPath(import.meta.url))

/**
 * The child as one self-contained ES module, bundled from its TypeScript source by esbuild
 * (a vitest dependency): a plain `node` start loads one file instead of hundreds (about
 * 3x faster than vite-node), which is what lets 20+ kill cycles fit in the time budget.
 */
const bundleChild = Effect.promise(async () => {
  const outfile = path.join(os.tmpdir(), `dcounter-walCrashChild-${process.pid}.mjs`)
  await build({
    entryPoints: [path.join(here, "fixtures", "walCrashChild.ts")],
    bundle: true,
    platform: "node",
    format: "esm",
    outfile,
    logLevel: "error"
  })
  return outfile
})

interface Round {
  readonly replicaId: string | undefined
  readonly acked: Map<number, number>
  readonly lazyFlushed: number
  readonly lines: number
  readonly stderr: string
}

/** Runs the child until SIGKILL after `killAfterMs` (counted from `ready` if `afterReady`). */
const runChild = (script: string, dir: string, killAfterMs: number, afterReady: boolean) =>
  Effect.async<Round>((resume) => {
    const child: ChildProcess = spawn(process.execPath, [script, dir], { stdio: ["ignore", "pipe", "pipe"] })
    const acked = new Map<number, number>()
    let lazyFlushed = 0
    let replicaId: string | undefined
    let buffered = ""
    let lines = 0
    let stderr = ""
    let timer: NodeJS.Timeout | undefined
    const kill = () => child.kill("SIGKILL")
    const guard = setTimeout(kill, 15_000)
    if (!afterReady) timer = setTimeout(kill, killAfterMs)
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()))
    child.stdout!.on("data", (d: Buffer) => {
      buffered += d.toString("latin1")
      const parts = buffered.split("\n")
      buffered = parts.pop()!
      for (const line of parts) {
        const [tag, a, b] = line.split(" ")
        if (tag === "a") {
          lines++
          acked.set(Number(a), Math.max(acked.get(Number(a)) ?? 0, Number(b)))
        } else if (tag === "l") {
          lazyFlushed = Math.max(lazyFlushed, Number(a))
        } else if (tag === "ready") {
          replicaId = a
          if (afterReady) timer = setTimeout(kill, killAfterMs)
        }
      }
    })
    child.on("exit", () => {
      clearTimeout(guard)
      if (timer !== undefined) clearTimeout(timer)
      resume(Effect.succeed({ replicaId, acked, lazyFlushed, lines, stderr }))
    })
    return Effect.sync(kill)
  })

describe("WAL crash test", () => {
  it.scopedLive(`keeps every resolved append and invents nothing across ${ROUNDS} SIGKILLs`, () =>
    Effect.gen(function*() {
      const script = yield* Effect.acquireRelease(bundleChild, (f) => Effect.sync(() => fs.rmSync(f, { force: true })))
      const dir = yield* tempDir
      /** The highest total each writer ever saw acknowledged, and what the WAL held after the last kill. */
      const floor = new Map<number, number>()
      const previous = new Map<number, number>()
      let lazyFloor = 0
      let lazyPrevious = 0
      let replicaId: string | undefined
      let productive = 0
      const started = performance.now()
      let total = 0
      for (let round = 0; round < ROUNDS; round++) {
        // most kills land while appending; every fourth one at any moment, recovery included
        const afterReady = round % 4 !== 3
        const killAfterMs = afterReady ? 20 + Math.floor(Math.random() * 250) : Math.floor(Math.random() * 500)
        const r = yield* runChild(script, dir, killAfterMs, afterReady)
        expect(r.stderr).toBe("")
        if (r.replicaId !== undefined) {
          replicaId ??= r.replicaId
          expect(r.replicaId).toBe(replicaId)
        }
        if (r.lines > 0) productive++
        total += r.lines
        for (const [k, n] of r.acked) floor.set(k, Math.max(floor.get(k) ?? 0, n))
        lazyFloor = Math.max(lazyFloor, r.lazyFlushed)

        // what the next start recovers: read-only here (recovery = this inspection, then it cuts a
        // torn tail); the last round opens the WAL for real below
        const fold = new Fold()
        const inspection = WalDir.inspect(path.join(dir, "wal"), fold.add)
        expect(WalDir.corruption(inspection)).toBeUndefined()
        const recovered = fold.entries()
        const now = new Map<number, number>()
        let lazyNow = 0
        for (const [name, replica, inc, dec] of recovered) {
          expect(dec).toBe(0)
          if (name === "lazy") {
            expect(replica).toBe("peer")
            lazyNow = inc
            continue
          }
          expect(replica).toBe(replicaId)
          const m = /^w(\d+)$/.exec(name)
          expect(m).not.toBeNull()
          const k = Number(m![1])
          expect(k).toBeLessThan(WRITERS)
          now.set(k, inc)
        }
        for (let k = 0; k < WRITERS; k++) {
          const got = now.get(k) ?? 0
          // every append that resolved is there...
          expect(got).toBeGreaterThanOrEqual(floor.get(k) ?? 0)
          // ...and nothing beyond the one append each writer may have had in flight
          expect(got).toBeLessThanOrEqual(Math.max(previous.get(k) ?? 0, r.acked.get(k) ?? 0) + 1)
          previous.set(k, got)
        }
        expect(lazyNow).toBeGreaterThanOrEqual(lazyFloor)
        expect(lazyNow).toBeLessThanOrEqual(Math.max(lazyPrevious, r.lazyFlushed) + 5)
        lazyPrevious = lazyNow
      }
      const final = yield* withWal(dir, (wal) => Effect.succeed(wal.recovered), OPTIONS).pipe(
        Logger.withMinimumLogLevel(LogLevel.Error)
      )
      for (const [name, replica, inc] of final) {
        if (name === "lazy") expect(inc).toBe(lazyPrevious)
        else expect([replica, inc]).toEqual([replicaId, previous.get(Number(name.slice(1)))])
      }
      expect(productive).toBeGreaterThanOrEqual(ROUNDS / 2)
      expect(total).toBeGreaterThan(1000)
      const files = fs.readdirSync(path.join(dir, "wal"))
      yield* Effect.logInfo(
        `crash test: ${ROUNDS} kills, ${total} acknowledged appends, ${Math.round(performance.now() - started)} ms, ` +
          `files now: ${files.join(" ")}`
      )
    }), { timeout: 60_000 })
})
