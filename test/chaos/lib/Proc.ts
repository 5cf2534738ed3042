/**
 * One product process (`node bin/dcounter.js ...`) under the harness: start, SIGKILL,
 * SIGTERM, restart, with stdout and stderr appended to one log file per process. An exit
 * the harness did not cause is recorded as a crash, with the tail of its log.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { HARNESS_ENV, registerCleanup } from "./Cleanup.js"

export const REPO_ROOT = path.resolve(import.meta.dirname, "../../..")
export const BIN = path.join(REPO_ROOT, "bin", "dcounter.js")

export interface Crash {
  readonly name: string
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly at: string
  readonly logTail: string
}

export interface ExitInfo {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  /** ms from the signal (or start, when nothing was sent) to the exit */
  readonly ms: number
}

/** Crashes across every process of the run. */
export const crashes: Array<Crash> = []

export const tailOf = (file: string, bytes = 4000): string => {
  try {
    const fd = fs.openSync(file, "r")
    try {
      const size = fs.fstatSync(fd).size
      const start = Math.max(0, size - bytes)
      const buf = Buffer.alloc(size - start)
      fs.readSync(fd, buf, 0, buf.length, start)
      return buf.toString("utf8")
    } finally {
      fs.closeSync(fd)
    }
  } catch {
    return ""
  }
}

/** Runs `dcounter <args>` to completion (bounded) and returns its exit code and output. */
export const runCli = (
  args: ReadonlyArray<string>,
  timeoutMs = 30_000
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()))
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()))
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
    child.once("exit", (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

export class ManagedProcess {
  private child: ChildProcess | undefined
  private exited: Promise<ExitInfo> | undefined
  private expectingExit = false
  private signalledAt = 0
  private startedAt = 0
  private unregister: (() => void) | undefined
  /** How many times this process was started. */
  starts = 0

  constructor(
    readonly name: string,
    readonly logFile: string,
    private args: ReadonlyArray<string>,
    private readonly env: NodeJS.ProcessEnv = {}
  ) {}

  get pid(): number | undefined {
    return this.child?.pid
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null
  }

  setArgs(args: ReadonlyArray<string>): void {
    this.args = args
  }

  get argv(): ReadonlyArray<string> {
    return this.args
  }

  private logOffset = 0

  /**
   * Spawns the process; an exit before `kill`/`term`/`expectExit` counts as a crash, unless
   * `mayExit` (a start that is allowed to be refused, e.g. on a corrupt data directory).
   */
  start(mayExit = false): void {
    if (this.running) throw new Error(`${this.name} is already running`)
    this.starts++
    fs.appendFileSync(
      this.logFile,
      `\n===== chaos: start #${this.starts} at ${new Date().toISOString()}: dcounter ${this.args.join(" ")}\n`
    )
    // what the process writes starts here (the banner above is ours, not its)
    this.logOffset = fs.statSync(this.logFile).size
    const fd = fs.openSync(this.logFile, "a")
    const child = spawn(process.execPath, [BIN, ...this.args], {
      cwd: REPO_ROOT,
      stdio: ["ignore", fd, fd],
      env: { ...process.env, ...this.env, NO_COLOR: "1", FORCE_COLOR: "0", [HARNESS_ENV]: this.logFile }
    })
    fs.closeSync(fd)
    this.child = child
    this.expectingExit = mayExit
    this.startedAt = Date.now()
    this.signalledAt = 0
    const pid = child.pid
    this.unregister = registerCleanup(`process ${this.name}`, () => {
      if (pid !== undefined) {
        try {
          process.kill(pid, "SIGKILL")
        } catch {
          // already gone
        }
      }
    })
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        const ms = Date.now() - (this.signalledAt || this.startedAt)
        this.unregister?.()
        this.unregister = undefined
        if (!this.expectingExit) {
          const crash: Crash = {
            name: this.name,
            code,
            signal,
            at: new Date().toISOString(),
            logTail: tailOf(this.logFile)
          }
          crashes.push(crash)
          process.stderr.write(
            `chaos: CRASH of ${this.name} (code ${code}, signal ${signal}); log ${this.logFile}:\n${crash.logTail}\n`
          )
        }
        resolve({ code, signal, ms })
      })
      child.once("error", (e) => {
        process.stderr.write(`chaos: cannot spawn ${this.name}: ${String(e)}\n`)
      })
    })
  }

  /** What the process wrote since its last start (without the harness's banner). */
  logSinceStart(): string {
    try {
      const buf = fs.readFileSync(this.logFile)
      return buf.subarray(this.logOffset).toString("utf8")
    } catch {
      return ""
    }
  }

  /** From now on an exit the harness did not cause is a crash again. */
  watchForCrash(): void {
    this.expectingExit = false
  }

  /** Declares that the process is expected to exit by itself (e.g. a refused start). */
  expectExit(): void {
    this.expectingExit = true
  }

  /** Waits for the exit, bounded; undefined when it is still running after `timeoutMs`. */
  async waitExit(timeoutMs: number): Promise<ExitInfo | undefined> {
    const exited = this.exited
    if (exited === undefined) return undefined
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), timeoutMs)
    })
    try {
      return await Promise.race([exited, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  /** SIGKILL and wait for the exit. */
  async kill9(): Promise<ExitInfo | undefined> {
    if (!this.running) return undefined
    this.expectingExit = true
    this.signalledAt = Date.now()
    this.child?.kill("SIGKILL")
    return this.waitExit(10_000)
  }

  /**
   * SIGTERM and wait up to `graceMs` for the exit; a process still running then is killed
   * with SIGKILL and reported with `code: null, signal: "SIGKILL"`.
   */
  async term(graceMs: number): Promise<ExitInfo | undefined> {
    if (!this.running) return undefined
    this.expectingExit = true
    this.signalledAt = Date.now()
    this.child?.kill("SIGTERM")
    const info = await this.waitExit(graceMs)
    if (info !== undefined) return info
    this.child?.kill("SIGKILL")
    return this.waitExit(10_000)
  }
}
