/**
 * Last-resort cleanup for resources that outlive a JavaScript scope: firewall chains,
 * tmpfs mounts, child processes. Each resource registers a synchronous undo; the normal
 * path runs it from a `finally`, and process exit, SIGINT, SIGTERM and an uncaught
 * exception run whatever is still registered, so a failed or interrupted run leaves no
 * rules, mounts or processes behind.
 */

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
      process.kill(process.pid, signal)
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
