/**
 * Last-resort cleanup for resources that outlive a JavaScript scope: firewall chains,
 * tmpfs mounts, child processes. Each resource registers a synchronous undo; the normal
 * path runs it from a `finally`, and process exit, SIGINT, SIGTERM and an uncaught
 * exception run whatever is still registered, so a failed or interrupted run leaves no
 * rules, mounts or processes behind.
 */
import * as fs from "node:fs"

/** Set in the environment of every process the harness starts (not a DCOUNTER_ variable). */
export const HARNESS_ENV = "CHAOS_HARNESS_RUN"

type Undo = () => void

const pending = new Map<number, { readonly label: string; readonly undo: Undo }>()
let nextId = 1
let installed = false

const runAll = (why: string): void => {
  const entries = [...pending.entries()].reverse()
  pending.clear()
  for (const [, { label, undo }] of entries) {
    try {
      undo()
    } catch (e) {
      process.stderr.write(`chaos cleanup (${why}) of ${label} failed: ${String(e)}\n`)
    }
  }
}

const install = (): void => {
  if (installed) return
  installed = true
  process.on("exit", () => runAll("exit"))
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      runAll(signal)
      // other listeners (the test runner's) would keep the process alive, and the runner
      // turns process.exit into an error: end this process for sure
      process.kill(process.pid, "SIGKILL")
    })
  }
  process.on("uncaughtException", (e) => {
    process.stderr.write(`chaos: uncaught exception, cleaning up: ${String(e)}\n`)
    runAll("uncaughtException")
  })
}

/** Registers an undo; the returned function runs it at most once and unregisters it. */
export const registerCleanup = (label: string, undo: Undo): (() => void) => {
  install()
  const id = nextId++
  pending.set(id, { label, undo })
  return () => {
    const entry = pending.get(id)
    if (entry === undefined) return
    pending.delete(id)
    entry.undo()
  }
}

/** Runs every registered undo now (used by afterAll). */
export const cleanupAll = (): void => runAll("cleanupAll")

/**
 * Kills dcounter processes left by an earlier chaos run that died without cleaning up
 * (SIGKILL): processes running `bin/dcounter.js` with the harness's marker variable in
 * their environment whose parent is gone (re-parented to init). Each is killed by its pid.
 */
export const killOrphans = (): Array<number> => {
  const killed: Array<number> = []
  let pids: Array<string>
  try {
    pids = fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d))
  } catch {
    return killed
  }
  for (const pid of pids) {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")
      if (!cmd.some((a) => a.endsWith("bin/dcounter.js"))) continue
      const env = fs.readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")
      if (!env.some((e) => e.startsWith(`${HARNESS_ENV}=`))) continue
      const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])
      if (ppid !== 1) continue
      process.kill(Number(pid), "SIGKILL")
      killed.push(Number(pid))
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return killed
}
