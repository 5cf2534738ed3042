/**
 * Which pieces of the product exist in this build. The suite skips, with a message saying
 * what is missing, only a piece that is not there; a piece that exists but misbehaves fails.
 */
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { promisify } from "node:util"
import { freePort } from "./Cluster.js"
import { request } from "./Http.js"
import { BIN, REPO_ROOT, sleep } from "./Proc.js"
import { spawn } from "node:child_process"

const run = promisify(execFile)

export type Availability = { readonly ok: true } | { readonly ok: false; readonly why: string }

const UNAVAILABLE = /not available in this build|not implemented|unknown role/i

const cache = new Map<string, Promise<Availability>>()
const cached = (key: string, probe: () => Promise<Availability>): Promise<Availability> => {
  let p = cache.get(key)
  if (p === undefined) {
    p = probe()
    cache.set(key, p)
  }
  return p
}

export const cliAvailable = (): Promise<Availability> => cached("cli", probeCli)

const probeCli = async (): Promise<Availability> => {
  if (!fs.existsSync(path.join(REPO_ROOT, "dist", "src", "main.js"))) {
    return { ok: false, why: "dist/src/main.js is missing: run `npm run build`" }
  }
  try {
    await run(process.execPath, [BIN, "--help"], { cwd: REPO_ROOT, timeout: 20_000 })
    return { ok: true }
  } catch (e) {
    return { ok: false, why: `dcounter --help fails: ${String(e).slice(0, 300)}` }
  }
}

/**
 * Starts `--role <role>` on a free port for a moment: available if /health answers,
 * unavailable if it exits saying the role is not in this build. Any other exit is a real
 * failure and is reported as available, so the suite runs and fails loudly on it.
 */
export const roleAvailable = (role: "discovery" | "node" | "gateway"): Promise<Availability> =>
  cached(`role ${role}`, () => probeRole(role))

const probeRole = async (role: "discovery" | "node" | "gateway"): Promise<Availability> => {
  const cli = await cliAvailable()
  if (!cli.ok) return cli
  const host = "127.0.0.1"
  const port = await freePort(host)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dcounter-chaos-probe-"))
  const args = ["--role", role, "--log-level", "warn"]
  let healthPort = port
  if (role === "discovery") args.push("--addr", `${host}:${port}`)
  if (role === "node") {
    healthPort = await freePort(host)
    args.push("--addr", `${host}:${port}`, "--http-addr", `${host}:${healthPort}`, "--data-dir", path.join(dir, "d"))
  }
  if (role === "gateway") args.push("--addr", `${host}:${port}`, "--nodes", `http://${host}:9`)
  const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] })
  let output = ""
  child.stdout.on("data", (c: Buffer) => (output += c.toString()))
  child.stderr.on("data", (c: Buffer) => (output += c.toString()))
  let exited = false
  child.once("exit", () => (exited = true))
  try {
    const deadline = Date.now() + 20_000
    while (Date.now() < deadline) {
      if (exited) {
        return UNAVAILABLE.test(output)
          ? { ok: false, why: `--role ${role}: ${output.trim().split("\n")[0]}` }
          : { ok: true }
      }
      const r = await request({ host, port: healthPort, path: "/health", timeoutMs: 500 })
      if (r.kind === "answer") return { ok: true }
      await sleep(100)
    }
    return { ok: true }
  } finally {
    child.kill("SIGKILL")
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

export const walCliAvailable = (): Promise<Availability> => cached("wal", probeWal)

const probeWal = async (): Promise<Availability> => {
  const cli = await cliAvailable()
  if (!cli.ok) return cli
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dcounter-chaos-probe-"))
  try {
    await run(process.execPath, [BIN, "wal", "check", "--data-dir", dir], { cwd: REPO_ROOT, timeout: 20_000 })
    return { ok: true }
  } catch (e) {
    const text = `${(e as { stdout?: string }).stdout ?? ""}${(e as { stderr?: string }).stderr ?? ""}`
    return UNAVAILABLE.test(text) ? { ok: false, why: `dcounter wal: ${text.trim().split("\n")[0]}` } : { ok: true }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

/** A module of the product's build, if it exists (for the frame fuzzer). */
export const distModule = (rel: string): string | undefined => {
  const p = path.join(REPO_ROOT, "dist", rel)
  return fs.existsSync(p) ? p : undefined
}
