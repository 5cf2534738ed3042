/**
 * The server processes of the HTTP benches: free loopback ports, child processes that print
 * `listening <host>:<port>` when ready (the bare counter, bench servers), real dcounter roles
 * from the built CLI (ready once `GET /health` answers 200), their CPU time from
 * `/proc/<pid>/stat`, and stopping them (SIGTERM, SIGKILL after 5 s).
 *
 * Every process started here is remembered until it exits, and every temporary directory
 * made here until it is removed, so that a bench run on its own can clean up when it is
 * interrupted (`stopAllOnSignals`); under `bench/run.ts` each bench runs in a process group
 * of its own, which the suite kills as a whole.
 */
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const here = Path.dirname(fileURLToPath(import.meta.url))
/** The repository root: this file is dist/bench/Processes.js (or bench/Processes.ts under a loader). */
export const repoRoot = Path.basename(Path.dirname(here)) === "dist" ? Path.resolve(here, "../..") : Path.resolve(here, "..")

// ---------------------------------------------------------------------------------------
// ports

/** The caller's environment without DCOUNTER_* variables, so children get only their flags. */
export const cleanEnv = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("DCOUNTER_")) env[k] = v
  return env
}

/** A free TCP port on 127.0.0.1 (closed again before it is used). */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as Net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })

/** Whether a TCP port on 127.0.0.1 can be listened on now. */
const canListen = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const server = Net.createServer()
    server.once("error", () => resolve(false))
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)))
  })

/** The first port of the range the kernel picks ephemeral ports from (32768 if unknown). */
export const ephemeralLow = (range: string | undefined): number => {
  const low = Number(range?.trim().split(/\s+/)[0])
  return Number.isInteger(low) && low > 1024 ? low : 32768
}

const ephemeralRange = (): string | undefined => {
  try {
    return Fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8")
  } catch {
    return undefined
  }
}

/**
 * `count` distinct free ports, drawn at random below the kernel's ephemeral range (from
 * 10000): a port the kernel handed out for listening and that was closed again can be taken
 * by any outgoing connection on this busy machine before the server binds it; ports below
 * the range are never handed out that way. Bounded: falls back to ephemeral ports after
 * 20 x count draws.
 */
export const freePorts = async (count: number): Promise<ReadonlyArray<number>> => {
  const low = 10_000
  const high = ephemeralLow(ephemeralRange())
  const out: Array<number> = []
  for (let tries = 0; out.length < count && tries < 20 * count && high > low; tries++) {
    const p = low + Math.floor(Math.random() * (high - low))
    if (!out.includes(p) && (await canListen(p))) out.push(p)
  }
  for (let tries = 0; out.length < count; tries++) {
    if (tries >= 10 * count) throw new Error(`could not find ${count} distinct free ports`)
    const p = await freePort()
    if (!out.includes(p)) out.push(p)
  }
  return out
}

// ---------------------------------------------------------------------------------------
// CPU time from /proc

/** Clock ticks per second of /proc's times (USER_HZ: 100 on Linux). */
export const CLOCK_TICKS = 100

/**
 * User and system CPU time (seconds, all threads) from the text of `/proc/<pid>/stat`, or
 * undefined when it is not one. The command name (field 2, in parentheses) may hold spaces
 * and parentheses itself: fields are counted after its last `)`.
 */
export const parseProcStat = (stat: string): number | undefined => {
  const close = stat.lastIndexOf(")")
  if (close < 0) return undefined
  const fields = stat.slice(close + 2).trim().split(/\s+/)
  // fields[0] is field 3 (state): utime is field 14, stime field 15
  const utime = Number(fields[11])
  const stime = Number(fields[12])
  if (fields.length < 13 || !Number.isFinite(utime) || !Number.isFinite(stime)) return undefined
  return (utime + stime) / CLOCK_TICKS
}

/** CPU time (user + system, seconds) a process has used so far, from /proc; undefined elsewhere. */
export const cpuSeconds = (pid: number | undefined): number | undefined => {
  if (pid === undefined) return undefined
  try {
    return parseProcStat(Fs.readFileSync(`/proc/${pid}/stat`, "utf8"))
  } catch {
    return undefined
  }
}

// ---------------------------------------------------------------------------------------
// child processes

const started = new Set<ChildProcess>()
const directories = new Set<string>()

/** A new directory under the system's temporary directory, remembered until `removeDirectory`. */
export const temporaryDirectory = (prefix: string): string => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), prefix))
  directories.add(dir)
  return dir
}

export const removeDirectory = (dir: string): void => {
  Fs.rmSync(dir, { recursive: true, force: true })
  directories.delete(dir)
}

/** `spawn`, remembered until the process exits. */
export const spawnTracked = (command: string, args: ReadonlyArray<string>, stdio: Array<"ignore" | "pipe">): ChildProcess => {
  const child = spawn(command, args, { stdio })
  started.add(child)
  child.once("exit", () => started.delete(child))
  child.once("error", () => started.delete(child))
  return child
}

/** SIGTERM, then SIGKILL if it has not exited within `graceMs`; resolves once it has exited. */
export const stopProcess = (child: ChildProcess, graceMs = 5_000): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs)
    child.once("exit", () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill("SIGTERM")
  })

/** Stops every process started here that is still running. */
export const stopAll = (): Promise<void> => Promise.all([...started].map((c) => stopProcess(c))).then(() => undefined)

/**
 * For a bench run on its own: SIGINT/SIGTERM stop every process it started before it exits;
 * whatever is left when it exits is killed, and its temporary directories removed.
 */
export const stopAllOnSignals = (): void => {
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    process.once(signal, () => void stopAll().then(() => process.exit(code)))
  }
  process.once("exit", () => {
    for (const c of started) c.kill("SIGKILL")
    for (const dir of directories) Fs.rmSync(dir, { recursive: true, force: true })
  })
}

/**
 * `node ...args`: a program that prints `listening <host>:<port>` on stdout once it accepts
 * connections; resolves with its URL (30 s bound).
 */
export const spawnListening = (
  name: string,
  args: ReadonlyArray<string>
): Promise<{ readonly process: ChildProcess; readonly url: string }> =>
  new Promise((resolve, reject) => {
    const child = spawnTracked(process.execPath, args, ["ignore", "pipe", "pipe"])
    let out = ""
    let err = ""
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`server ${name} did not start within 30 s: ${err.slice(-500)}`))
    }, 30_000)
    child.stderr!.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-2000)))
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString()
      const m = /^listening (\S+):(\d+)$/m.exec(out)
      if (m !== null) {
        clearTimeout(timer)
        child.stdout!.removeAllListeners("data")
        child.stdout!.resume()
        resolve({ process: child, url: `http://${m[1]}:${m[2]}` })
      }
    })
    child.once("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`server ${name} exited with ${code}: ${err.slice(-500)}`))
    })
  })

/** The bare node:http counter (bench/baseline.ts) in a child process of its own. */
export const startBaseline = (): Promise<{ readonly process: ChildProcess; readonly url: string }> =>
  spawnListening("baseline", [Path.join(here, "baseline.js"), "0", "127.0.0.1"])

export interface RoleProcess {
  readonly process: ChildProcess
  readonly url: string
}

/** `GET url` with a bound: status and body. */
export const httpGet = (url: string, timeoutMs = 5_000): Promise<{ readonly status: number; readonly body: string }> =>
  new Promise((resolve, reject) => {
    const req = Http.get(url, { timeout: timeoutMs }, (res) => {
      let body = ""
      res.setEncoding("utf8")
      res.on("data", (d: string) => (body += d))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }))
      res.on("error", reject)
    })
    req.on("timeout", () => req.destroy(new Error(`GET ${url}: no answer within ${timeoutMs} ms`)))
    req.on("error", reject)
  })

/**
 * `node [...nodeOptions] bin/dcounter.js ...args --log-level warn`, resolved once `GET
 * url/health` answers 200 and `ready` (if given) accepts its body, within `withinMs`
 * (default 30 s).
 */
export const startRole = (
  args: ReadonlyArray<string>,
  url: string,
  options: {
    readonly nodeOptions?: ReadonlyArray<string>
    readonly ready?: (health: unknown) => boolean
    readonly withinMs?: number
  } = {}
): Promise<RoleProcess> => {
  const child = spawnTracked(
    process.execPath,
    [...(options.nodeOptions ?? []), Path.join(repoRoot, "bin", "dcounter.js"), ...args, "--log-level", "warn"],
    ["ignore", "ignore", "pipe"]
  )
  let err = ""
  child.stderr!.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-2000)))
  const within = options.withinMs ?? 30_000
  const deadline = Date.now() + within
  return new Promise((resolve, reject) => {
    const poll = (): void => {
      if (child.exitCode !== null) return reject(new Error(`dcounter ${args.join(" ")} exited: ${err}`))
      if (Date.now() > deadline) {
        child.kill("SIGKILL")
        return reject(new Error(`dcounter ${args.join(" ")} not ready within ${within / 1000} s: ${err}`))
      }
      httpGet(`${url}/health`, 2_000).then(
        ({ status, body }) => {
          let health: unknown = undefined
          try {
            health = JSON.parse(body)
          } catch {
            // not JSON yet: not ready
          }
          if (status === 200 && (options.ready === undefined || options.ready(health))) resolve({ process: child, url })
          else setTimeout(poll, 100)
        },
        () => setTimeout(poll, 100)
      )
    }
    poll()
  })
}

export const stopRole = (role: RoleProcess): Promise<void> => stopProcess(role.process)
