/**
 * scripts/run-cluster.sh and scripts/monitor.sh against real processes, on a free base
 * port (CLUSTER_BASE_PORT) with their run and data folders in a temporary directory, so
 * they never touch a cluster of the user's.
 */
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Processes from "../../scripts/lib/Processes.js"
import { tempDir } from "./LocalCluster.js"

const script = (name: string) => path.join(Processes.repoRoot, "scripts", name)

const sh = (env: Record<string, string>, file: string, ...args: Array<string>) =>
  Effect.async<{ code: number; stdout: string; stderr: string }>((resume) => {
    const child = execFile(
      "bash",
      [file, ...args],
      { env: { ...process.env, ...env }, cwd: Processes.repoRoot, timeout: 150_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1
        resume(Effect.succeed({ code, stdout, stderr }))
      }
    )
    return Effect.sync(() => child.kill())
  })

/** A base port whose whole layout (BASE, +80, +10.., +1000..) is free right now. */
const freeBase = (nodes: number) =>
  Effect.gen(function*() {
    for (let attempt = 0; attempt < 50; attempt++) {
      const base = 20_000 + Math.floor(Math.random() * 20_000)
      const ports = [base, base + 80, ...Array.from({ length: nodes }, (_, i) => [base + 10 + i, base + 1000 + i]).flat()]
      const busy = yield* Effect.forEach(ports, (p) => Processes.isListening("127.0.0.1", p))
      if (busy.every((b) => !b)) return base
    }
    return yield* Effect.die(new Error("no free base port"))
  })

describe("scripts/run-cluster.sh", () => {
  it.scopedLive("start, inc, dec, cnt, consistency, status, monitor, stop", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("dcounter-run-cluster-")
      const nodes = 3
      const env = {
        CLUSTER_BASE_PORT: String(yield* freeBase(nodes)),
        CLUSTER_NODES: String(nodes),
        CLUSTER_RUN_DIR: path.join(dir, "run"),
        CLUSTER_DATA_DIR: path.join(dir, "data"),
        CLUSTER_WAIT: "60",
        DCOUNTER_LOG_LEVEL: "warn"
      }
      const run = (...args: Array<string>) => sh(env, script("run-cluster.sh"), ...args)
      // whatever happens below, nothing is left running
      yield* Effect.addFinalizer(() => run("stop"))

      const started = yield* run("start")
      expect(started.code, started.stdout + started.stderr).toBe(0)
      expect(started.stdout).toContain("cluster is up")

      const status = yield* run("status")
      expect(status.code, status.stdout).toBe(0)
      expect(status.stdout.match(/ ok$/gm)).toHaveLength(nodes + 2)

      const inc = yield* run("inc", "5")
      expect(inc.code, inc.stdout + inc.stderr).toBe(0)
      expect(inc.stdout).toMatch(/"value":\s*5/)
      expect((yield* run("increment")).code).toBe(0)
      expect((yield* run("dec", "2")).code).toBe(0)
      expect((yield* run("inc", "zero")).code).not.toBe(0)

      const consistency = yield* run("consistency")
      expect(consistency.code, consistency.stdout).toBe(0)
      expect(consistency.stdout).toContain(`consistent: all ${nodes} nodes report 4`)

      const cnt = yield* run("cnt")
      expect(cnt.code).toBe(0)
      expect(cnt.stdout.match(/value 4$/gm)).toHaveLength(nodes + 1)

      const logs = yield* run("logs", "gateway")
      expect(logs.code).toBe(0)
      expect(logs.stdout).toContain("starting: dcounter --role gateway")

      const monitor = yield* sh({ ...env, MONITOR_ROUNDS: "1" }, script("monitor.sh"), "0.2")
      expect(monitor.code).toBe(0)
      expect(monitor.stdout).toContain(`${nodes}/${nodes} nodes up, all agree`)

      // a node down: the live ones agree (consistent), the dead one is listed apart
      const victim = Number(fs.readFileSync(path.join(env.CLUSTER_RUN_DIR, "pids", "node-2.pid"), "utf8").trim())
      process.kill(victim, "SIGKILL")
      yield* Effect.sleep("300 millis")
      const withDown = yield* run("consistency")
      expect(withDown.code, withDown.stdout).toBe(0)
      expect(withDown.stdout).toContain(`consistent: the ${nodes - 1} live nodes report 4; down: node-2`)
      const statusDown = yield* run("status")
      expect(statusDown.code).toBe(1)
      expect(statusDown.stdout).toMatch(/^node-2 .* down$/m)
      expect(statusDown.stdout).toContain("down: node-2")
      // judged by what answers: without pid files the cluster still shows up
      fs.renameSync(path.join(env.CLUSTER_RUN_DIR, "pids"), path.join(env.CLUSTER_RUN_DIR, "pids-aside"))
      const noPids = yield* run("status")
      expect(noPids.stdout.match(/ ok$/gm)).toHaveLength(nodes + 1)
      fs.rmSync(path.join(env.CLUSTER_RUN_DIR, "pids"), { recursive: true, force: true })
      fs.renameSync(path.join(env.CLUSTER_RUN_DIR, "pids-aside"), path.join(env.CLUSTER_RUN_DIR, "pids"))

      const stopped = yield* run("stop")
      expect(stopped.code).toBe(0)
      const after = yield* run("status")
      expect(after.code).not.toBe(0)
      expect(after.stdout.match(/ down$/gm)).toHaveLength(nodes + 2)
    }), { timeout: 240_000 })
})
