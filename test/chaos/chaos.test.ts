/**
 * dcounter chaos and hostile-input suite (issue 10): real processes, attacked through the
 * contract's CLI, HTTP and gossip interfaces only. Reproducible from the printed seed
 * (`CHAOS_SEED=<n> npm run test:chaos`); ends with a summary table. A phase is skipped,
 * with a message, only when the piece of the product it needs is not in the build.
 *
 * Knobs: CHAOS_SEED, CHAOS_FAULT_SECONDS (default 120; longer, up to twice, until 20 kills), CHAOS_FUZZ_FRAMES (default
 * 1000000), CHAOS_NET (default 127.0.99), CHAOS_KEEP=1 keeps the run directory,
 * CHAOS_VERBOSE=1 prints the fault timeline as it happens.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { cleanupAll, killOrphans } from "./lib/Cleanup.js"
import { CHAOS_COUNTERS, runClusterChaos } from "./lib/ClusterChaos.js"
import { makeRunDir } from "./lib/Cluster.js"
import { Firewall, firewallAvailable } from "./lib/Firewall.js"
import { runFuzz } from "./lib/FuzzScenario.js"
import { runHttpScenario } from "./lib/HttpScenario.js"
import { type Availability, roleAvailable, walCliAvailable } from "./lib/Probe.js"
import { chaosSeed } from "./lib/Prng.js"
import { crashes, REPO_ROOT } from "./lib/Proc.js"
import { runRejoinWithoutDiscovery } from "./lib/Rejoin.js"
import { runSecurity } from "./lib/Security.js"
import { Summary } from "./lib/Summary.js"
import { runWalScenario } from "./lib/WalScenario.js"

// leftovers of a run that was killed outright: processes, firewall chains
Firewall.removeStaleChains()
const orphans = killOrphans()
if (orphans.length > 0) console.log(`dcounter chaos: killed ${orphans.length} processes left by an earlier run: ${orphans.join(", ")}`)

const seed = chaosSeed()
const summary = new Summary(seed)
const runDir = makeRunDir(`seed${seed}`)
console.log(`dcounter chaos: seed ${seed} (replay with CHAOS_SEED=${seed}); run dir ${runDir}`)

const envInt = (name: string, fallback: number): number => {
  const raw = process.env[name]
  if (raw === undefined || raw === "") return fallback
  const n = Number(raw)
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got ${raw}`)
  return n
}

let failed = false

afterAll(() => {
  const text = summary.render(crashes)
  console.log(text)
  cleanupAll()
  // the table and every check's detail, for CI artifacts and issue notes
  const results = path.join(REPO_ROOT, "test-results", "chaos")
  fs.mkdirSync(results, { recursive: true })
  fs.writeFileSync(path.join(results, "summary.md"), `${text}\n\n## every check\n\n${summary.renderChecks()}\n`)
  console.log(`summary and every check: ${path.join(results, "summary.md")}`)
  if (!failed && crashes.length === 0 && summary.failedChecks.length === 0 && process.env["CHAOS_KEEP"] !== "1") {
    fs.rmSync(runDir, { recursive: true, force: true })
  } else {
    console.log(`run directory kept: ${runDir} (logs/, timeline.log)`)
  }
})

/** Skips (with a message in the summary) unless every needed piece exists. */
const requirePieces = async (
  skip: (note?: string) => never,
  what: string,
  probes: ReadonlyArray<() => Promise<Availability>>
): Promise<void> => {
  for (const p of probes) {
    const a = await p()
    if (!a.ok) {
      const msg = `${what}: skipped because ${a.why}`
      summary.skip(msg)
      console.warn(`dcounter chaos: ${msg}`)
      skip(msg)
    }
  }
}

/** The area's checks all passed, there were at least `min` of them, and nothing crashed. */
const expectArea = (area: string, min: number): void => {
  const mine = summary.checks.filter((c) => c.area === area)
  const bad = mine.filter((c) => !c.ok)
  if (bad.length > 0 || mine.length < min || crashes.length > 0) failed = true
  expect(crashes.map((c) => `${c.name}: code ${c.code} signal ${c.signal}\n${c.logTail.slice(-1500)}`)).toEqual([])
  expect(bad.map((c) => `${c.name}: ${c.detail}`)).toEqual([])
  expect(mine.length).toBeGreaterThanOrEqual(min)
}

describe.sequential("chaos", () => {
  it("cluster: acknowledged ops survive kill -9, SIGTERM, partitions, a discovery outage and a wiped node", async (ctx) => {
    await requirePieces(ctx.skip, "cluster chaos", [() => roleAvailable("discovery"), () => roleAvailable("node"), () => roleAvailable("gateway")])
    // partitions are part of the contract under test: no iptables (not root) is a failure, not a skip
    const fw = firewallAvailable()
    expect(fw.ok ? "iptables usable" : `cluster chaos needs iptables as root for partitions: ${fw.why}`).toBe("iptables usable")
    const faultSeconds = envInt("CHAOS_FAULT_SECONDS", 120)
    await runClusterChaos(
      {
        runDir: path.join(runDir, "cluster"),
        seed,
        nodes: 5,
        faultMs: faultSeconds * 1000,
        minKills: 20,
        discoveryOutageMs: Math.min(25_000, Math.floor(faultSeconds * 1000 * 0.2)),
        settleTimeoutMs: 60_000,
        counters: CHAOS_COUNTERS
      },
      summary
    )
    expectArea("cluster", 10)
    expect((summary.faults.get("node kill -9 + restart") ?? 0)).toBeGreaterThanOrEqual(20)
  })

  it("cluster: a node its peers forgot, restarted while discovery is down, rejoins", async (ctx) => {
    await requirePieces(ctx.skip, "rejoin without discovery", [() => roleAvailable("discovery"), () => roleAvailable("node")])
    const before = summary.checks.length
    await runRejoinWithoutDiscovery(runDir, summary)
    const mine = summary.checks.slice(before)
    if (mine.some((c) => !c.ok)) failed = true
    expect(mine.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`)).toEqual([])
    expect(mine.length).toBeGreaterThanOrEqual(1)
  })

  it("gossip: >= 1,000,000 random and mutated frames change nothing and crash nothing", async (ctx) => {
    await requirePieces(ctx.skip, "gossip fuzz", [() => roleAvailable("node")])
    const frames = envInt("CHAOS_FUZZ_FRAMES", 1_000_000)
    await runFuzz({ runDir: path.join(runDir, "fuzz"), seed, frames, budgetMs: 150_000 }, summary)
    expectArea("fuzz", 8)
  })

  it("http: hostile input gets documented 4xx, changes nothing, and the servers stay fast", async (ctx) => {
    await requirePieces(ctx.skip, "hostile HTTP", [() => roleAvailable("discovery"), () => roleAvailable("node"), () => roleAvailable("gateway")])
    await runHttpScenario(path.join(runDir, "http"), summary)
    expectArea("http", 50)
  })

  it("wal: torn tails, bit flips, a deleted snapshot and a full disk never lose data silently", async (ctx) => {
    await requirePieces(ctx.skip, "WAL corruption", [() => roleAvailable("node"), walCliAvailable])
    await runWalScenario({ runDir: path.join(runDir, "wal"), seed }, summary)
    expectArea("wal", 8)
  })

  it("security: without the cluster key nothing gets in; discovery answers 401", async (ctx) => {
    await requirePieces(ctx.skip, "security", [() => roleAvailable("discovery"), () => roleAvailable("node")])
    await runSecurity(path.join(runDir, "security"), summary)
    expectArea("security", 12)
  })
})
