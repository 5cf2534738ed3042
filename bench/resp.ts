/**
 * INCR over the Redis protocol, side by side in one run, as ratios to redis-server with
 * `appendonly yes` and `appendfsync always` (durable before it answers, like dcounter):
 *
 *   - redis-server appendfsync always (Debian's redis-server; skipped with a note if missing)
 *   - a dcounter node alone, over RESP (`--resp-addr`)
 *   - the same node over HTTP (wrk, POST /counters/bench/increment), for comparison
 *   - a node of a 3-node cluster (gossip on, one process each), over RESP
 *
 * Load: `redis-benchmark -t incr -c 50` without pipelining and with `-P 16` (16 commands in
 * flight per connection), wrk -c50 for HTTP. redis-benchmark INCRs one key,
 * `counter:__rand_int__`, which is no counter name (`_`); `-r 1` makes it
 * `counter:000000000000`: still one hot key for every target, and a valid name. After each
 * RESP run the key must have grown by the requests sent (an error reply would count as a
 * request in redis-benchmark's figures; it may send up to one pipeline per connection more
 * than asked); a run where it did not is reported. redis-benchmark counts requests rather than
 * seconds, so each run's request count comes from the rate its warm-up measured. Every
 * target is measured in interleaved rounds and the median round is reported, with the
 * median of the per-round ratios, because the machine is shared and noisy. Server CPU per
 * request (user + system from /proc/PID/stat) is reported next to req/s; for the cluster, the
 * node written to and all three nodes.
 *
 *     npx tsc -p tsconfig.build.json && node dist/bench/resp.js [--quick] [--rounds N] [--seconds S]
 */
import { spawnSync } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Net from "node:net"
import * as Path from "node:path"
import type { BenchOptions, BenchResult } from "./BenchResult.js"
import { figure, isMain, loadFigures, main, median, ratioOf } from "./BenchResult.js"
import { detectLoadGenerator, runProcess } from "./LoadGenerator.js"
import {
  cpuSeconds,
  freePort,
  removeDirectory,
  repoRoot,
  spawnTracked,
  stopAllOnSignals,
  stopProcess,
  temporaryDirectory
} from "./Processes.js"

const CONNECTIONS = 50
const PIPELINE = 16
const DEFAULT_BUDGET_SECONDS = 100

interface Measured {
  readonly rps: number
  readonly p50ms: number
  readonly p99ms: number
  readonly requests: number
  /** server CPU per request, microseconds: the process written to, and all of the target's processes */
  readonly cpuMicros: number | undefined
  readonly cpuMicrosAll: number | undefined
}

interface Server {
  readonly processes: ReadonlyArray<ChildProcess>
  readonly port: number
}

const has = (command: string): boolean => spawnSync(command, ["--version"], { encoding: "utf8" }).error === undefined

/** Resolves once `PING` on `port` answers `+PONG` (30 s bound); rejects if `child` exits first. */
const waitForPong = (port: number, child: ChildProcess, what: string): Promise<void> => {
  const deadline = Date.now() + 30_000
  return new Promise((resolve, reject) => {
    const poll = (): void => {
      if (child.exitCode !== null) return reject(new Error(`${what} exited with ${child.exitCode}`))
      if (Date.now() > deadline) return reject(new Error(`${what} did not answer PING within 30 s`))
      const socket = Net.connect(port, "127.0.0.1")
      let reply = ""
      socket.on("data", (d: Buffer) => {
        reply += d.toString()
        if (reply.includes("\r\n")) {
          socket.destroy()
          if (reply.startsWith("+PONG")) resolve()
          else setTimeout(poll, 100)
        }
      })
      socket.on("error", () => {
        socket.destroy()
        setTimeout(poll, 100)
      })
      socket.on("connect", () => socket.write("PING\r\n"))
    }
    poll()
  })
}

const getJson = (url: string): Promise<unknown> =>
  new Promise((resolve) => {
    Http.get(url, (res) => {
      let body = ""
      res.on("data", (d: Buffer) => (body += d.toString()))
      res.on("end", () => {
        try {
          resolve(JSON.parse(body))
        } catch {
          resolve(undefined)
        }
      })
    }).on("error", () => resolve(undefined))
  })

/** redis-server, durable like dcounter: every write appended and fsynced before the reply. */
const startRedis = async (dir: string): Promise<Server> => {
  const port = await freePort()
  Fs.mkdirSync(dir, { recursive: true })
  const child = spawnTracked("redis-server", [
    "--port", String(port), "--bind", "127.0.0.1", "--dir", dir,
    "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no", "--loglevel", "warning"
  ], ["ignore", "ignore", "ignore"])
  try {
    await waitForPong(port, child, "redis-server")
  } catch (e) {
    await stopProcess(child)
    throw e
  }
  return { processes: [child], port }
}

interface NodePorts {
  readonly gossip: number
  readonly http: number
  readonly resp: number
}

const startNode = (ports: NodePorts, peers: ReadonlyArray<number>, dataDir: string): ChildProcess =>
  spawnTracked(process.execPath, [
    Path.join(repoRoot, "bin", "dcounter.js"),
    "--role", "node",
    "--addr", `127.0.0.1:${ports.gossip}`,
    "--http-addr", `127.0.0.1:${ports.http}`,
    "--resp-addr", `127.0.0.1:${ports.resp}`,
    "--data-dir", dataDir,
    ...(peers.length > 0 ? ["--peers", peers.map((p) => `127.0.0.1:${p}`).join(",")] : []),
    "--log-level", "warn"
  ], ["ignore", "ignore", "ignore"])

/** `n` dcounter nodes peered with each other; the first is the one measured. */
const startNodes = async (n: number, dir: string): Promise<Server & { readonly httpPort: number }> => {
  const ports: Array<NodePorts> = []
  for (let i = 0; i < n; i++) ports.push({ gossip: await freePort(), http: await freePort(), resp: await freePort() })
  const children = ports.map((p, i) =>
    startNode(p, ports.filter((_, j) => j !== i).map((q) => q.gossip), Path.join(dir, `node-${i}`))
  )
  try {
    await Promise.all(children.map((c, i) => waitForPong(ports[i]!.resp, c, `dcounter node ${i}`)))
    if (n > 1) {
      // every peer alive on the measured node, so gossip runs while it is measured
      const deadline = Date.now() + 20_000
      while (Date.now() < deadline) {
        const body = (await getJson(`http://127.0.0.1:${ports[0]!.http}/peers`)) as
          | { peers?: ReadonlyArray<{ status?: string }> }
          | undefined
        if ((body?.peers ?? []).filter((p) => p.status === "alive").length >= n - 1) break
        await new Promise((r) => setTimeout(r, 100))
      }
    }
  } catch (e) {
    await Promise.all(children.map((c) => stopProcess(c)))
    throw e
  }
  return { processes: children, port: ports[0]!.resp, httpPort: ports[0]!.http }
}

/** The key redis-benchmark's INCR test writes with `-r 1`. */
const BENCH_KEY = "counter:000000000000"

/** `GET key` over RESP, as a number (nil: 0). */
const respGet = (port: number, key: string): Promise<number> =>
  new Promise((resolve, reject) => {
    const socket = Net.connect(port, "127.0.0.1")
    let reply = ""
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`GET ${key} on ${port}: no answer within 10 s`))
    }, 10_000)
    socket.on("connect", () => socket.write(`*2\r\n$3\r\nGET\r\n$${key.length}\r\n${key}\r\n`))
    socket.on("data", (d: Buffer) => {
      reply += d.toString()
      const m = /^(?:\$-1\r\n|\$\d+\r\n(-?\d+)\r\n)/.exec(reply)
      if (m === null && !reply.startsWith("-")) return
      clearTimeout(timer)
      socket.destroy()
      if (m === null) reject(new Error(`GET ${key}: ${reply.trim()}`))
      else resolve(Number(m[1] ?? "0"))
    })
    socket.on("error", (e) => {
      clearTimeout(timer)
      reject(e)
    })
  })

const redisBenchmark = async (port: number, requests: number, pipeline: number) => {
  const out = await runProcess("redis-benchmark", [
    "-h", "127.0.0.1", "-p", String(port), "-t", "incr", "-c", String(CONNECTIONS), "-n", String(requests),
    "-P", String(pipeline), "-r", "1", "--csv"
  ], 60_000)
  const line = out.split("\n").find((l) => l.startsWith("\"INCR"))
  if (line === undefined) throw new Error(`redis-benchmark printed no INCR line: ${out.slice(-300)}`)
  const cells = line.split(",").map((c) => Number(c.replace(/"/g, "")))
  return { rps: cells[1]!, p50ms: cells[4]!, p99ms: cells[6]! }
}

interface Target {
  readonly name: string
  readonly server: Server
  /** the RESP pipeline depth, or "http" for wrk on the node's HTTP API */
  readonly load: number | "http"
  readonly httpUrl?: string
  readonly baseline?: Target | undefined
  readonly goal?: number | undefined
  /** requests per measured run, set after the warm-up from its rate */
  requests: number
}

const cpuOf = (processes: ReadonlyArray<ChildProcess>) => processes.map((p) => cpuSeconds(p.pid))

export interface RespBenchOptions extends BenchOptions {
  readonly rounds?: number
  /** seconds of load per target and round (default 3; quick: 1.5) */
  readonly seconds?: number
  /** wall-time budget (default 100 s): rounds that would end past it are not measured */
  readonly budgetSeconds?: number
}

export const run = async (options: RespBenchOptions = {}): Promise<ReadonlyArray<BenchResult>> => {
  const log = options.log ?? ((line: string) => process.stderr.write(line + "\n"))
  const started = performance.now()
  const elapsed = () => (performance.now() - started) / 1000
  const quick = options.quick === true
  const rounds = options.rounds ?? (quick ? 1 : 3)
  const seconds = options.seconds ?? (quick ? 1.5 : 3)
  const budget = options.budgetSeconds ?? DEFAULT_BUDGET_SECONDS
  if (!has("redis-benchmark")) {
    throw new Error("redis-benchmark is missing: install Debian's redis-tools (apt-get install -y redis-tools)")
  }
  const scratch = temporaryDirectory("dcounter-bench-resp-")
  const servers: Array<Server> = []
  const notes: Array<string> = []
  /** RESP runs after which the key did not grow by the requests sent */
  const miscounts: Array<string> = []
  try {
    // started side by side; every one that started is stopped at the end, whatever failed
    const [redisStart, aloneStart, clusterStart] = await Promise.allSettled([
      has("redis-server")
        ? startRedis(Path.join(scratch, "redis")).catch((e: unknown) => {
          notes.push(`redis-server did not start: ${e instanceof Error ? e.message : String(e)}`)
          return undefined
        })
        : Promise.resolve(undefined),
      startNodes(1, Path.join(scratch, "alone")),
      startNodes(3, Path.join(scratch, "cluster"))
    ])
    for (const s of [redisStart, aloneStart, clusterStart]) {
      if (s.status === "fulfilled" && s.value !== undefined) servers.push(s.value)
    }
    if (aloneStart.status === "rejected") throw aloneStart.reason
    if (clusterStart.status === "rejected") throw clusterStart.reason
    const redis = redisStart.status === "fulfilled" ? redisStart.value : undefined
    const alone = aloneStart.value
    const cluster = clusterStart.value
    if (redis === undefined && notes.length === 0) {
      notes.push("redis-server is missing (Debian: apt-get install -y redis-server): no ratios")
    }
    log(`resp: servers up in ${elapsed().toFixed(1)} s; ${rounds} round(s) of ${seconds} s per target, budget ${budget} s`)

    const redisP1: Target | undefined = redis && { name: "redis-server appendfsync always, INCR", server: redis, load: 1, requests: 0 }
    const redisP16: Target | undefined = redis && {
      name: `redis-server appendfsync always, INCR -P ${PIPELINE}`,
      server: redis,
      load: PIPELINE,
      requests: 0
    }
    const targets: Array<Target> = [
      ...(redisP1 === undefined ? [] : [redisP1]),
      ...(redisP16 === undefined ? [] : [redisP16]),
      { name: "dcounter node alone, RESP INCR", server: alone, load: 1, baseline: redisP1, goal: 1.0, requests: 0 },
      { name: `dcounter node alone, RESP INCR -P ${PIPELINE}`, server: alone, load: PIPELINE, baseline: redisP16, goal: 1.0, requests: 0 },
      { name: "dcounter node of 3 (gossip on), RESP INCR", server: cluster, load: 1, baseline: redisP1, goal: 0.6, requests: 0 },
      {
        name: `dcounter node of 3 (gossip on), RESP INCR -P ${PIPELINE}`,
        server: cluster,
        load: PIPELINE,
        baseline: redisP16,
        goal: 0.6,
        requests: 0
      },
      {
        name: "dcounter node alone, HTTP POST /counters/bench/increment",
        server: alone,
        load: "http",
        httpUrl: `http://127.0.0.1:${alone.httpPort}/counters/bench/increment`,
        baseline: redisP1,
        requests: 0
      }
    ]
    const generator = detectLoadGenerator(scratch)

    const measure = async (t: Target, warmup: boolean): Promise<Measured> => {
      const cpu0 = cpuOf(t.server.processes)
      let r: { rps: number; p50ms: number; p99ms: number; requests: number }
      if (t.load === "http") {
        const w = await generator.run(
          { name: t.name, url: t.httpUrl!, method: "POST", body: JSON.stringify({ by: 1 }) },
          warmup ? 1 : Math.max(1, Math.round(seconds)),
          CONNECTIONS
        )
        r = w
      } else {
        const requests = warmup ? (t.load === 1 ? 2_000 : 20_000) : t.requests
        const before = await respGet(t.server.port, BENCH_KEY)
        r = { ...(await redisBenchmark(t.server.port, requests, t.load)), requests }
        const grown = (await respGet(t.server.port, BENCH_KEY)) - before
        // redis-benchmark sends whole pipelines: up to one pipeline per connection past -n
        if (grown < requests || grown > requests + CONNECTIONS * t.load) {
          miscounts.push(`${t.name}: ${requests} INCRs sent, the counter grew by ${grown}`)
          log(`resp: ${miscounts.at(-1)}`)
        }
      }
      const cpu1 = cpuOf(t.server.processes)
      const perRequest = (i: number | undefined): number | undefined => {
        const pairs = i === undefined ? cpu0.map((c, j) => [c, cpu1[j]] as const) : [[cpu0[i], cpu1[i]] as const]
        if (pairs.some(([a, b]) => a === undefined || b === undefined) || r.requests === 0) return undefined
        return (pairs.reduce((s, [a, b]) => s + (b! - a!), 0) * 1e6) / r.requests
      }
      if (t.load !== "http") {
        // the next run lasts about `seconds` at this rate (bounded: the machine's rate varies)
        t.requests = Math.max(2_000, Math.min(2_000_000, Math.round(r.rps * seconds)))
      }
      return { ...r, cpuMicros: perRequest(0), cpuMicrosAll: perRequest(undefined) }
    }

    const describe = (m: Measured) =>
      `${Math.round(m.rps)} req/s, p50 ${m.p50ms.toFixed(2)} ms, p99 ${m.p99ms.toFixed(2)} ms` +
      (m.cpuMicros === undefined ? "" : `, server CPU ${m.cpuMicros.toFixed(1)} us/req`)

    for (const t of targets) await measure(t, true)
    log(`resp: warmed up in ${elapsed().toFixed(1)} s`)
    const results = new Map<Target, Array<Measured>>(targets.map((t) => [t, []]))
    let done = 0
    for (let round = 1; round <= rounds; round++) {
      const perRound = targets.length * (seconds + 1)
      if (round > 1 && elapsed() + perRound > budget) {
        notes.push(`${round - 1} of ${rounds} rounds: the rest would end past the ${budget} s budget`)
        break
      }
      for (const t of targets) {
        const m = await measure(t, false)
        results.get(t)!.push(m)
        log(`  round ${round}/${rounds} ${t.name}: ${describe(m)}`)
      }
      done = round
    }
    log(`resp: done in ${elapsed().toFixed(1)} s`)

    return targets.map((t): BenchResult => {
      const rs = results.get(t)!
      const how = t.load === "http"
        ? `${generator.name} -c${CONNECTIONS}`
        : `redis-benchmark -t incr -c ${CONNECTIONS}${t.load > 1 ? ` -P ${t.load}` : ""} -r 1 (one key)`
      const base = t.baseline === undefined ? undefined : results.get(t.baseline)
      const ratios = base === undefined ? undefined : rs.map((r, i) => r.rps / base[i]!.rps)
      const all = t.server.processes.length > 1 && rs.every((r) => r.cpuMicrosAll !== undefined)
      const result: BenchResult = {
        bench: "resp",
        name: t.name,
        figures: [
          ...loadFigures(rs, rs.map((r) => r.cpuMicros)),
          ...(all ? [figure("CPU, all 3 nodes", median(rs.map((r) => r.cpuMicrosAll!)), "us/req", "lower")] : [])
        ],
        notes: [
          how,
          `median of ${done} interleaved round(s) of about ${seconds} s`,
          ...miscounts.filter((m) => m.startsWith(`${t.name}:`)).map((m) => `MISCOUNT ${m}`),
          ratios !== undefined && ratios.length > 1 ? `per-round ratios ${ratios.map((x) => x.toFixed(2)).join(", ")}` : "",
          ...(t === targets[0] ? notes : [])
        ].filter((x) => x !== "").join("; ")
      }
      if (ratios === undefined || t.baseline === undefined) {
        return t.goal === undefined ? result : { ...result, notes: `${result.notes}; no redis-server: goal not checked` }
      }
      const ratio = median(ratios)
      const withRatio = { ...result, baseline: t.baseline.name, ratio: ratioOf(ratio, 1) ?? 0 }
      return t.goal === undefined ? withRatio : { ...withRatio, goal: `>= ${t.goal}x baseline`, met: ratio >= t.goal }
    })
  } finally {
    await Promise.all(servers.flatMap((s) => s.processes.map((p) => stopProcess(p))))
    removeDirectory(scratch)
  }
}

const argValue = (name: string): string | undefined => {
  const i = process.argv.indexOf(name)
  return i === -1 ? undefined : process.argv[i + 1]
}

if (isMain(import.meta.url)) {
  stopAllOnSignals()
  const rounds = argValue("--rounds")
  const seconds = argValue("--seconds")
  void main((options) =>
    run({
      ...options,
      ...(rounds === undefined ? {} : { rounds: Number(rounds) }),
      ...(seconds === undefined ? {} : { seconds: Number(seconds) })
    })
  )
}
