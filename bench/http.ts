/**
 * HTTP throughput and latency, side by side in one run, as ratios to a bare `node:http`
 * counter (bench/baseline.ts) measured in the same run:
 *
 *   - bare node:http counter (the baseline)
 *   - the same counter made durable: a minimal group commit (write + fdatasync per batch)
 *     before it counts and answers; the ceiling of a durable POST on node:http here
 *   - a real dcounter node from the built CLI (durable POST /increment, GET /counter) and a
 *     gateway in front of it (POST /increment)
 *   - ApiServer, in-memory counter handler (`ApiServer.group`)
 *   - ApiServer, durable handler: a real group commit (write + fdatasync per batch) in a
 *     temporary file before answering
 *   - ApiServer serving a stock `HttpApiBuilder.group` (the platform-route fallback)
 *   - stock `HttpApiBuilder.serve()` on `NodeHttpServer`, same in-memory handler
 *   - any extra targets given to `run({ targets })` (e.g. a real node's URL)
 *
 * Every server runs in its own child process, the load generator in another (wrk, or
 * autocannon if wrk is missing), 50 connections, POST /increment with `{"by":1}` (GET
 * /counter for the node's read target). The main targets (the baseline, a real node: durable
 * POST and GET, a gateway in front of it: POST, and any given targets) are measured in 3
 * interleaved rounds of 4 s and the median round is reported, with the median of the
 * per-round ratios, because the machine is shared and noisy. The built-in servers (extras:
 * the durable bare counter, ApiServer in-memory / durable / platform-route fallback, stock
 * HttpApiBuilder.serve()) are
 * measured afterwards in one round of 3 s each, beside a baseline run of its own in that
 * round; they are left out if they would end past the time budget (105 s, under the suite's
 * 120 s bound).
 *
 *     npx tsc -p tsconfig.build.json && node dist/bench/http.js [--quick] [--profile DIR]
 *       [--only bare-durable,api-memory,api-durable,api-platform-route,stock] [--rounds N] [--seconds S]
 *       [--extra-rounds N] [--extra-seconds S] [--budget S]
 *       [--target "NAME=http://host:port/increment"]... [--get-target "NAME=http://host:port/counter"]...
 *     node dist/bench/http.js --serve api-durable [--port 8123]   # one server, standalone
 *
 * `--profile DIR` runs the servers under `node --cpu-prof` and leaves the profiles in DIR.
 */
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup, HttpServer } from "@effect/platform"
import type { HttpApiError } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Exit, Fiber, Layer, Schema, Scope } from "effect"
import type { ChildProcess } from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import * as ApiServer from "../src/http/ApiServer.js"
import * as Baseline from "./baseline.js"
import type { BenchOptions, BenchResult } from "./BenchResult.js"
import { isMain, loadFigures, main, median, ratioOf } from "./BenchResult.js"
import type { LoadGenerator, LoadResult, Target } from "./LoadGenerator.js"
import { detectLoadGenerator } from "./LoadGenerator.js"
import type { RoleProcess } from "./Processes.js"
import { cpuSeconds, freePorts, spawnListening, startRole, stopProcess, stopRole } from "./Processes.js"

// ---------------------------------------------------------------------------------------
// the API under test

const By = Schema.Struct({ by: Schema.optional(Schema.Int.pipe(Schema.positive())) })
const Value = Schema.Struct({ value: Schema.Number, nodeId: Schema.String })

class BenchGroup extends HttpApiGroup.make("counter")
  .add(HttpApiEndpoint.post("increment", "/increment").setPayload(By).addSuccess(Value))
  .add(HttpApiEndpoint.get("counter", "/counter").addSuccess(Value))
{}

class BenchApi extends HttpApi.make("bench").add(BenchGroup) {}

type Handlers = HttpApiBuilder.Handlers.FromGroup<HttpApiError.HttpApiDecodeError, never, typeof BenchGroup>

/** In-memory counter handlers, or durable ones when `commit` is given. */
const buildHandlers = (commit?: (done: () => void) => void) => (handlers: Handlers) => {
  let value = 0
  return handlers
    .handle("increment", ({ payload }) =>
      commit === undefined
        ? Effect.sync(() => ({ value: (value += payload.by ?? 1), nodeId: "bench" }))
        : Effect.async<{ value: number; nodeId: string }>((resume) => {
          const by = payload.by ?? 1
          commit(() => resume(Effect.succeed({ value: (value += by), nodeId: "bench" })))
        }))
    .handle("counter", () => Effect.sync(() => ({ value, nodeId: "bench" })))
}

/** `Baseline.makeGroupCommit` on a file in a temporary directory; `close` removes it. */
const tempGroupCommit = (): Baseline.GroupCommit => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "dcounter-bench-http-"))
  const gc = Baseline.makeGroupCommit(Path.join(dir, "wal"))
  return {
    commit: gc.commit,
    close: () => {
      gc.close()
      Fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** The servers that answer only once a group commit made the write durable. */
const isDurable = (kind: ServerKind | undefined): boolean => kind === "api-durable" || kind === "bare-durable"

// ---------------------------------------------------------------------------------------
// servers (each runs in a child process: `--serve <kind>`)

export type ServerKind = "baseline" | "bare-durable" | "api-memory" | "api-durable" | "api-platform-route" | "stock"

const serverNames: Record<ServerKind, string> = {
  "baseline": "bare node:http counter",
  "bare-durable": "bare node:http counter, durable (the same group commit before answering)",
  "api-memory": "ApiServer, in-memory handler",
  "api-durable": "ApiServer, durable handler (group commit: write + fdatasync)",
  "api-platform-route": "ApiServer, stock HttpApiBuilder.group (platform-route fallback)",
  "stock": "HttpApiBuilder.serve() on NodeHttpServer, in-memory handler"
}

const goals: Partial<Record<ServerKind, number>> = { "api-memory": 0.85, "api-durable": 0.7 }

const serverLayer = (
  kind: Exclude<ServerKind, "baseline" | "bare-durable">,
  port: number,
  scope: Scope.Scope
): Effect.Effect<{ readonly address: { readonly port: number } }, unknown> => {
  const addr = { host: "127.0.0.1", port }
  switch (kind) {
    case "api-memory":
      return Effect.map(
        Layer.buildWithScope(
          ApiServer.layer(BenchApi, { addr }).pipe(Layer.provide(ApiServer.group(BenchApi, "counter", buildHandlers()))),
          scope
        ),
        (ctx) => ctx.unsafeMap.get(ApiServer.ApiServer.key) as ApiServer.ApiServer["Type"]
      )
    case "api-platform-route":
      return Effect.map(
        Layer.buildWithScope(
          ApiServer.layer(BenchApi, { addr }).pipe(
            Layer.provide(HttpApiBuilder.group(BenchApi, "counter", buildHandlers()))
          ),
          scope
        ),
        (ctx) => ctx.unsafeMap.get(ApiServer.ApiServer.key) as ApiServer.ApiServer["Type"]
      )
    case "api-durable": {
      const gc = tempGroupCommit()
      return Effect.zipLeft(
        Effect.map(
          Layer.buildWithScope(
            ApiServer.layer(BenchApi, { addr }).pipe(
              Layer.provide(ApiServer.group(BenchApi, "counter", buildHandlers(gc.commit)))
            ),
            scope
          ),
          (ctx) => ctx.unsafeMap.get(ApiServer.ApiServer.key) as ApiServer.ApiServer["Type"]
        ),
        Scope.addFinalizer(scope, Effect.sync(gc.close))
      )
    }
    case "stock":
      return Effect.flatMap(
        Layer.buildWithScope(
          HttpApiBuilder.serve().pipe(
            Layer.provide(HttpApiBuilder.api(BenchApi)),
            Layer.provide(HttpApiBuilder.group(BenchApi, "counter", buildHandlers())),
            Layer.provideMerge(NodeHttpServer.layer(() => Http.createServer(), { port, host: addr.host }))
          ),
          scope
        ),
        (ctx) =>
          Effect.map(Effect.provide(HttpServer.HttpServer, ctx), (server) => {
            const a = server.address
            const p = a._tag === "TcpAddress" ? a.port : 0
            return { address: { host: addr.host, port: p }, url: `http://${addr.host}:${p}` }
          })
      )
  }
}

/** Runs one server until SIGTERM/SIGINT; prints `listening <host>:<port>` when ready. */
export const serve = async (kind: ServerKind, port: number): Promise<void> => {
  if (kind === "baseline" || kind === "bare-durable") {
    const gc = kind === "bare-durable" ? tempGroupCommit() : undefined
    const server = await Baseline.start(port, "127.0.0.1", gc === undefined ? {} : { commit: gc.commit })
    process.stdout.write(`listening 127.0.0.1:${server.port}\n`)
    const stop = () =>
      void server.close().then(() => {
        gc?.close()
        process.exit(0)
      })
    process.once("SIGTERM", stop)
    process.once("SIGINT", stop)
    return
  }
  const scope = Effect.runSync(Scope.make())
  const fiber = Effect.runFork(
    Effect.flatMap(serverLayer(kind, port, scope), (server) =>
      Effect.sync(() => process.stdout.write(`listening 127.0.0.1:${server.address.port}\n`)))
  )
  const exit = await Effect.runPromise(Fiber.await(fiber))
  if (Exit.isFailure(exit)) {
    process.stderr.write(`bench server ${kind} failed: ${String(exit.cause)}\n`)
    process.exit(1)
  }
  const stop = () => void Effect.runPromise(Scope.close(scope, Exit.void)).then(() => process.exit(0))
  process.once("SIGTERM", stop)
  process.once("SIGINT", stop)
}

interface Child {
  readonly kind: ServerKind
  readonly process: ChildProcess
  readonly url: string
}

const thisFile = fileURLToPath(import.meta.url)

const startChild = async (kind: ServerKind, profileDir: string | undefined): Promise<Child> => {
  const args = profileDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${kind}.cpuprofile`]
  const started = await spawnListening(kind, [...args, thisFile, "--serve", kind, "--port", "0"])
  return { kind, ...started }
}

const stopChild = (child: Child): Promise<void> => stopProcess(child.process)

// ---------------------------------------------------------------------------------------
// real dcounter roles (the built CLI): a node with a real data directory, and a gateway
// in front of it

/** Starts a node and a gateway in front of it; the targets measure them like the rest. */
const startRoles = async (scratch: string): Promise<{
  readonly roles: ReadonlyArray<RoleProcess>
  readonly targets: ReadonlyArray<Target & { readonly pid?: number | undefined }>
}> => {
  const [gossip, nodeHttp, gatewayPort] = await freePorts(3)
  const roles: Array<RoleProcess> = []
  try {
    const node = await startRole([
      "--role", "node",
      "--addr", `127.0.0.1:${gossip}`,
      "--http-addr", `127.0.0.1:${nodeHttp}`,
      "--data-dir", Path.join(scratch, "node-data")
    ], `http://127.0.0.1:${nodeHttp}`)
    roles.push(node)
    const gateway = await startRole([
      "--role", "gateway",
      "--addr", `127.0.0.1:${gatewayPort}`,
      "--nodes", node.url,
      "--refresh-interval", "1s"
    ], `http://127.0.0.1:${gatewayPort}`)
    roles.push(gateway)
    return {
      roles,
      targets: [
        { name: "dcounter node, durable POST /increment", url: `${node.url}/increment`, method: "POST", body, goal: 0.7, pid: node.process.pid },
        { name: "dcounter node, GET /counter", url: `${node.url}/counter`, method: "GET", pid: node.process.pid },
        { name: "dcounter gateway, POST /increment (to one node)", url: `${gateway.url}/increment`, method: "POST", body, goal: 0.5, pid: gateway.process.pid }
      ]
    }
  } catch (e) {
    await Promise.all(roles.map(stopRole))
    throw e
  }
}

// ---------------------------------------------------------------------------------------
// load generators

// ---------------------------------------------------------------------------------------
// the benchmark

export interface HttpBenchOptions extends BenchOptions {
  /** extra targets measured against the same baseline (e.g. a real node or gateway) */
  readonly targets?: ReadonlyArray<Target>
  /** start and measure the built-in servers besides the baseline (default true) */
  readonly builtins?: boolean
  /**
   * start a real node (durable POST /increment, GET /counter) and a gateway in front of it
   * from the built CLI, and measure them too (default true)
   */
  readonly roles?: boolean
  /** only these built-in servers (the baseline is always measured) */
  readonly only?: ReadonlyArray<ServerKind>
  readonly connections?: number
  /** seconds of load per main target (baseline, roles, given targets) and round (default 4; quick: 2) */
  readonly seconds?: number
  /** interleaved rounds of the main targets (default 3; quick: 1) */
  readonly rounds?: number
  /** rounds of the built-in servers, each beside a baseline measurement of its own (default 1) */
  readonly extraRounds?: number
  /** seconds of load per built-in server and round (default 3; quick: 1) */
  readonly extraSeconds?: number
  /**
   * wall-time budget of the whole run (default 105 s, under the suite's 120 s bound): rounds
   * of the built-in servers that would end past it are not measured (the notes say so)
   */
  readonly budgetSeconds?: number
  /** run the server processes under `node --cpu-prof`, writing profiles to this directory */
  readonly profileDir?: string
}

/** Median fdatasync latency (ms) of a small write in `dir`: what bounds the durable target. */
const fdatasyncMillis = (dir: string, samples = 50): number => {
  const file = Path.join(dir, "fsync-probe")
  const fd = Fs.openSync(file, "a")
  const times: Array<number> = []
  try {
    for (let i = 0; i < samples; i++) {
      const t0 = performance.now()
      Fs.writeSync(fd, Buffer.alloc(16 * 50, 0x2a))
      Fs.fdatasyncSync(fd)
      times.push(performance.now() - t0)
    }
  } finally {
    Fs.closeSync(fd)
    Fs.rmSync(file, { force: true })
  }
  return median(times)
}

const body = JSON.stringify({ by: 1 })

type Measured = LoadResult & { readonly cpuMicros?: number | undefined }

type RunTarget = Target & { readonly kind?: ServerKind; readonly pid?: number | undefined }

/** Load on one target, with the server's CPU time per request when its pid is known. */
const measureOnce = async (
  generator: LoadGenerator,
  t: RunTarget,
  seconds: number,
  connections: number
): Promise<Measured> => {
  const cpu0 = cpuSeconds(t.pid)
  const r = await generator.run(t, seconds, connections)
  const cpu1 = cpuSeconds(t.pid)
  const cpuMicros = cpu0 === undefined || cpu1 === undefined || r.requests === 0
    ? undefined
    : ((cpu1 - cpu0) * 1e6) / r.requests
  return { ...r, cpuMicros }
}

const describe = (r: Measured): string =>
  `${Math.round(r.rps)} req/s, p50 ${r.p50ms.toFixed(2)} ms, p99 ${r.p99ms.toFixed(2)} ms` +
  `${r.cpuMicros === undefined ? "" : `, server CPU ${r.cpuMicros.toFixed(1)} us/req`}` +
  `${r.failures > 0 ? `, ${r.failures} failures` : ""}`

/** Rough wall time of one load run beyond its `-d` seconds (process start, connections, report). */
const RUN_OVERHEAD_SECONDS = 0.5
const DEFAULT_BUDGET_SECONDS = 105

/**
 * The main targets (the baseline, a real node and gateway, targets given in `options`) are
 * measured in `rounds` interleaved rounds; the built-in ApiServer / platform servers (extras
 * for comparing server implementations) then in `extraRounds` shorter rounds, each with a
 * baseline measurement of its own that their ratios are taken against. Extras that would
 * end past the time budget are left out, with a note.
 */
export const run = async (options: HttpBenchOptions = {}): Promise<ReadonlyArray<BenchResult>> => {
  const log = options.log ?? ((line: string) => process.stderr.write(line + "\n"))
  const started = performance.now()
  const elapsed = () => (performance.now() - started) / 1000
  const quick = options.quick === true
  const connections = options.connections ?? 50
  const seconds = options.seconds ?? (quick ? 2 : 4)
  const warmup = quick ? 1 : 2
  const rounds = options.rounds ?? (quick ? 1 : 3)
  const extraRounds = options.extraRounds ?? 1
  const extraSeconds = options.extraSeconds ?? (quick ? 1 : 3)
  const extraWarmup = 1
  const budget = options.budgetSeconds ?? DEFAULT_BUDGET_SECONDS
  const scratch = Fs.mkdtempSync(Path.join(Os.tmpdir(), "dcounter-bench-http-"))
  const generator = detectLoadGenerator(scratch)
  const all: ReadonlyArray<ServerKind> = ["bare-durable", "api-memory", "api-durable", "api-platform-route", "stock"]
  const extraKinds: ReadonlyArray<ServerKind> = options.builtins === false
    ? []
    : all.filter((k) => options.only === undefined || options.only.includes(k))
  log(
    `http: ${generator.name}, ${connections} connections; main targets ${rounds} round(s) of ${seconds} s, ` +
      `built-in servers ${extraRounds} round(s) of ${extraSeconds} s; budget ${budget} s`
  )
  const children: Array<Child> = []
  const roles: Array<RoleProcess> = []
  const toTarget = (c: Child): RunTarget => ({
    kind: c.kind,
    pid: c.process.pid,
    name: serverNames[c.kind],
    url: `${c.url}/increment`,
    method: "POST" as const,
    body,
    goal: goals[c.kind]
  })
  try {
    // the main targets
    const baselineChild = await startChild("baseline", options.profileDir)
    children.push(baselineChild)
    const baseline = toTarget(baselineChild)
    const real = options.roles === false ? undefined : await startRoles(scratch)
    if (real !== undefined) roles.push(...real.roles)
    const main: ReadonlyArray<RunTarget> = [baseline, ...(real?.targets ?? []), ...(options.targets ?? [])]
    // warm every target up (JIT, connection setup) before measuring
    for (const t of main) await generator.run(t, warmup, connections)
    const results = new Map<string, Array<Measured>>(main.map((t) => [t.name, []]))
    for (let round = 1; round <= rounds; round++) {
      for (const t of main) {
        const r = await measureOnce(generator, t, seconds, connections)
        results.get(t.name)!.push(r)
        log(`  round ${round}/${rounds} ${t.name}: ${describe(r)}`)
      }
    }
    log(`http: main targets measured in ${elapsed().toFixed(1)} s`)

    // the built-in servers, each round beside a baseline measurement of its own
    const extras: Array<RunTarget> = []
    const extraResults = new Map<string, Array<Measured & { readonly ratio: number }>>()
    let extrasNote = ""
    if (extraKinds.length > 0) {
      // start-up of the servers (in parallel) and their warm-up count in the estimate
      const perRound = (extraKinds.length + 1) * (extraSeconds + RUN_OVERHEAD_SECONDS)
      const estimate = 5 + extraKinds.length * (extraWarmup + RUN_OVERHEAD_SECONDS) + perRound * extraRounds
      if (elapsed() + estimate > budget) {
        extrasNote = `built-in servers not measured: ${elapsed().toFixed(0)} s spent, about ${estimate.toFixed(0)} s more needed, ` +
          `${budget} s budget`
        log(`http: ${extrasNote}`)
      } else {
        const launched = await Promise.allSettled(extraKinds.map((k) => startChild(k, options.profileDir)))
        for (const s of launched) {
          if (s.status === "fulfilled") {
            children.push(s.value)
            extras.push(toTarget(s.value))
          } else log(`http: ${s.reason instanceof Error ? s.reason.message : String(s.reason)}`)
        }
        for (const t of extras) {
          await generator.run(t, extraWarmup, connections)
          extraResults.set(t.name, [])
        }
        for (let round = 1; round <= extraRounds; round++) {
          if (round > 1 && elapsed() + perRound > budget) {
            extrasNote = `built-in servers: ${round - 1} of ${extraRounds} rounds, the rest would end past the ${budget} s budget`
            log(`http: ${extrasNote}`)
            break
          }
          const base = await measureOnce(generator, baseline, extraSeconds, connections)
          log(`  built-in round ${round}/${extraRounds} ${baseline.name}: ${describe(base)}`)
          for (const t of extras) {
            const r = await measureOnce(generator, t, extraSeconds, connections)
            extraResults.get(t.name)!.push({ ...r, ratio: r.rps / base.rps })
            log(`  built-in round ${round}/${extraRounds} ${t.name}: ${describe(r)}`)
          }
        }
        await Promise.all(children.filter((c) => c !== baselineChild).map(stopChild))
      }
    }
    const fsync = extras.some((t) => isDurable(t.kind)) ? fdatasyncMillis(scratch) : undefined
    log(`http: done in ${elapsed().toFixed(1)} s`)

    const base = results.get(baseline.name)!
    const row = (
      t: RunTarget,
      rs: ReadonlyArray<Measured>,
      ratios: ReadonlyArray<number> | undefined,
      how: string
    ): BenchResult => {
      const failures = rs.reduce((n, r) => n + r.failures, 0)
      const notes = [
        `${generator.name} -c${connections}, ${t.method ?? "POST"} ${new URL(t.url).pathname}`,
        how,
        ratios !== undefined && ratios.length > 1 ? `per-round ratios ${ratios.map((x) => x.toFixed(2)).join(", ")}` : "",
        failures > 0 ? `${failures} failed requests` : "",
        isDurable(t.kind) && fsync !== undefined
          ? `fdatasync p50 ${fsync.toFixed(2)} ms here: with ${connections} connections and one commit in flight, ` +
            `at most about ${Math.round(connections / (fsync / 1000))} req/s`
          : "",
        t.kind === "baseline" && extrasNote !== "" ? extrasNote : ""
      ].filter((x) => x !== "").join("; ")
      const result: BenchResult = {
        bench: "http",
        name: t.name,
        figures: loadFigures(rs, rs.map((r) => r.cpuMicros)),
        notes
      }
      if (ratios === undefined) return result
      const ratio = median(ratios)
      const withRatio = { ...result, baseline: serverNames.baseline, ratio: ratioOf(ratio, 1) ?? 0 }
      return t.goal === undefined
        ? withRatio
        : { ...withRatio, goal: `>= ${t.goal}x baseline`, met: ratio >= t.goal }
    }
    return [
      ...main.map((t) => {
        const rs = results.get(t.name)!
        const how = `median of ${rounds} interleaved round(s) of ${seconds} s`
        return t === baseline ? row(t, rs, undefined, how) : row(t, rs, rs.map((r, i) => r.rps / base[i]!.rps), how)
      }),
      ...extras.flatMap((t) => {
        const rs = extraResults.get(t.name)!
        if (rs.length === 0) return []
        return [
          row(
            t,
            rs,
            rs.map((r) => r.ratio),
            `${rs.length === 1 ? "one round" : `median of ${rs.length} rounds`} of ${extraSeconds} s after the main rounds, ` +
              `ratio to a baseline run of ${extraSeconds} s just before it in the same round`
          )
        ]
      })
    ]
  } finally {
    await Promise.all([...children.map(stopChild), ...roles.map(stopRole)])
    Fs.rmSync(scratch, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------------------------------
// command line

const argValue = (name: string): string | undefined => {
  const i = process.argv.indexOf(name)
  return i === -1 ? undefined : process.argv[i + 1]
}

if (isMain(import.meta.url)) {
  const kind = argValue("--serve")
  if (kind !== undefined) {
    if (!(kind in serverNames)) {
      process.stderr.write(`unknown server ${kind}: one of ${Object.keys(serverNames).join(", ")}\n`)
      process.exit(2)
    }
    void serve(kind as ServerKind, Number(argValue("--port") ?? "0"))
  } else {
    const profileDir = argValue("--profile")
    if (profileDir !== undefined) Fs.mkdirSync(profileDir, { recursive: true })
    const only = argValue("--only")?.split(",") as Array<ServerKind> | undefined
    // --target "node POST /increment=http://127.0.0.1:8010/increment" (POST {"by":1});
    // --get-target "node GET /counter=http://127.0.0.1:8010/counter"
    const extra: Array<Target> = []
    process.argv.forEach((arg, i) => {
      if (arg !== "--target" && arg !== "--get-target") return
      const spec = process.argv[i + 1] ?? ""
      const eq = spec.lastIndexOf("=http")
      if (eq <= 0) throw new Error(`${arg} expects NAME=URL, got ${JSON.stringify(spec)}`)
      extra.push(
        arg === "--target"
          ? { name: spec.slice(0, eq), url: spec.slice(eq + 1), method: "POST", body }
          : { name: spec.slice(0, eq), url: spec.slice(eq + 1), method: "GET" }
      )
    })
    const rounds = argValue("--rounds")
    const seconds = argValue("--seconds")
    const extraRounds = argValue("--extra-rounds")
    const extraSeconds = argValue("--extra-seconds")
    const budget = argValue("--budget")
    void main((options) =>
      run({
        ...options,
        ...(profileDir === undefined ? {} : { profileDir: Path.resolve(profileDir) }),
        ...(only === undefined ? {} : { only }),
        ...(extra.length === 0 ? {} : { targets: extra }),
        ...(rounds === undefined ? {} : { rounds: Number(rounds) }),
        ...(seconds === undefined ? {} : { seconds: Number(seconds) }),
        ...(extraRounds === undefined ? {} : { extraRounds: Number(extraRounds) }),
        ...(extraSeconds === undefined ? {} : { extraSeconds: Number(extraSeconds) }),
        ...(budget === undefined ? {} : { budgetSeconds: Number(budget) })
      })
    )
  }
}
