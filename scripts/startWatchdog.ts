/**
 * The watchdog of `npm start` (scripts/start.ts): a small process of its own (its own
 * session, so neither Ctrl-C nor a closing terminal reaches it) that stops the cluster's
 * processes when the start script dies without stopping them: a SIGKILL, which no handler
 * can see, or a crash.
 *
 * The start script writes the pid of each process it starts on the watchdog's stdin, one
 * per line, and `done` once it has stopped them itself. When stdin ends without `done`, the
 * start script is gone (the kernel closed its end of the pipe): the watchdog sends SIGTERM
 * to every process group it was told of, SIGKILL to what is left after a grace, and exits.
 * Before signalling a pid it checks that the pid still runs a dcounter role (its command
 * line has `--role`), so a pid the system gave to another program since is left alone.
 *
 * Plain Node (no Effect runtime): it has one pipe to read and a few signals to send.
 */
import * as fs from "node:fs"

/** SIGTERM, then SIGKILL after this long: the whole stop within 5 s. */
const GRACE_MILLIS = 3000
const POLL_MILLIS = 100

const pids = new Set<number>()
let done = false
let pending = ""

/** Whether `pid` still runs a dcounter role. */
const isDcounter = (pid: number): boolean => {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "latin1").split("\0").includes("--role")
  } catch {
    return false
  }
}

/** Signals the process group of `pid` (the children run in groups of their own), else the pid. */
const signal = (pid: number, sig: NodeJS.Signals): void => {
  try {
    process.kill(-pid, sig)
  } catch {
    try {
      process.kill(pid, sig)
    } catch {
      // already gone
    }
  }
}

const stopAll = (): void => {
  const alive = () => [...pids].filter(isDcounter)
  for (const pid of alive()) signal(pid, "SIGTERM")
  const deadline = Date.now() + GRACE_MILLIS
  const check = setInterval(() => {
    const left = alive()
    if (left.length > 0 && Date.now() < deadline) return
    for (const pid of left) signal(pid, "SIGKILL")
    clearInterval(check)
    process.exit(0)
  }, POLL_MILLIS)
}

process.stdin.setEncoding("utf8")
process.stdin.on("data", (chunk: string) => {
  pending += chunk
  const lines = pending.split("\n")
  pending = lines.pop()!
  for (const line of lines) {
    if (line === "done") done = true
    else if (/^\d+$/.test(line)) pids.add(Number(line))
  }
})
process.stdin.on("end", () => (done ? process.exit(0) : stopAll()))
process.stdin.on("error", () => (done ? process.exit(0) : stopAll()))
for (const sig of ["SIGINT", "SIGHUP"] as const) process.on(sig, () => undefined)
