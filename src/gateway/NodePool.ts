/**
 * The gateway's view of the nodes: the static `--nodes` endpoints plus whatever the
 * discovery client lists, each health-checked (GET /health, then GET /counter for its
 * value and id) every `--refresh-interval` with a bounded timeout. Requests go to healthy
 * nodes in round-robin order (`candidates`); a node found unreachable by a request is
 * taken out at once (`markDown`) until a later check finds it healthy again.
 *
 * The forwarding hot path (`Upstream`) uses `candidates`, `markDown` and `recordRequest`
 * per request: they are `Callback`s (internal/Callback.ts), which it runs with
 * `Callback.run`, without a fiber.
 */
import type { Scope } from "effect"
import { Clock, Context, Duration, Effect, Exit, Layer, Runtime, Schedule } from "effect"
import * as Callback from "../internal/Callback.js"
import { GatewayConfig } from "../config/GatewayConfig.js"
import { DiscoveryClient } from "../discoveryClient/DiscoveryClient.js"
import { NodeClient } from "./NodeClient.js"

export type NodeSource = "static" | "discovery"

/** One node as `/nodes` shows it. */
export interface NodeView {
  /** the node's id (from its answers), or its HTTP address until it has answered */
  readonly id: string
  /** gossip address, when discovery told it ("" when unknown) */
  readonly gossipAddr: string
  /** `host:port` of its HTTP API */
  readonly httpAddr: string
  readonly healthy: boolean
  /** value of the default counter at the last check */
  readonly value: number | null
  readonly sources: ReadonlyArray<NodeSource>
  /** epoch ms of the last health check, 0 before the first */
  readonly lastCheck: number
  /** round-trip time of the last successful check, in ms */
  readonly latencyMs: number | null
  readonly lastError: string | null
  /** requests the gateway forwarded to it */
  readonly requests: number
}

export interface PoolOptions {
  /** bound on one health check (both of its requests) */
  readonly healthTimeout: Duration.DurationInput
  /** how many nodes are checked at once */
  readonly concurrency: number
}

export class NodePool extends Context.Tag("dcounter/NodePool")<
  NodePool,
  {
    /** Every known node, healthy or not, sorted by HTTP address. */
    readonly nodes: Effect.Effect<ReadonlyArray<NodeView>>
    /**
     * The healthy nodes' HTTP addresses, rotated one step per run (round-robin). Completes
     * at once. (A `Callback.sync`.)
     */
    readonly candidates: Effect.Effect<ReadonlyArray<string>>
    readonly healthyCount: Effect.Effect<number>
    /**
     * Takes a node out of rotation until a later check finds it healthy (logged when it
     * was healthy). Completes at once. (A `Callback`.)
     */
    readonly markDown: (httpAddr: string, reason: string) => Effect.Effect<void>
    /** Counts a request forwarded to a node (shown by `/nodes`). (A `Callback.sync`.) */
    readonly recordRequest: (httpAddr: string) => Effect.Effect<void>
    /** Refreshes the node list and checks every node now (one refresh at a time). */
    readonly refresh: Effect.Effect<void>
    /** Refreshes unless the last refresh finished less than `maxAge` ago. */
    readonly refreshIfOlder: (maxAge: Duration.DurationInput) => Effect.Effect<void>
  }
>() {}

/** A node as the pool holds it: `requests` grows in place, the rest is replaced by checks. */
interface Entry {
  id: string
  gossipAddr: string
  readonly httpAddr: string
  healthy: boolean
  value: number | null
  sources: ReadonlyArray<NodeSource>
  lastCheck: number
  latencyMs: number | null
  lastError: string | null
  requests: number
}

const hostPortOf = (url: string): string => url.replace(/^http:\/\//, "").replace(/\/$/, "")

/** Health checks are bounded by half the refresh interval, within 200ms..2s. */
export const healthTimeoutFor = (refresh: Duration.Duration): Duration.Duration =>
  Duration.clamp(Duration.times(refresh, 0.5), { minimum: Duration.millis(200), maximum: Duration.seconds(2) })

const describeStatus = (status: number, json: unknown): string => {
  const message = typeof json === "object" && json !== null && "message" in json ? String(json.message) : ""
  return `HTTP ${status}${message === "" ? "" : `: ${message}`}`
}

const byAddr = (a: Entry, b: Entry): number => (a.httpAddr < b.httpAddr ? -1 : a.httpAddr > b.httpAddr ? 1 : 0)

export const make = (options?: Partial<PoolOptions>): Effect.Effect<NodePool["Type"], never, GatewayConfig | NodeClient | DiscoveryClient | Scope.Scope> =>
  Effect.gen(function*() {
    const config = yield* GatewayConfig
    const client = yield* NodeClient
    const discovery = yield* DiscoveryClient
    const runtime = yield* Effect.runtime<never>()
    const healthTimeout = options?.healthTimeout ?? healthTimeoutFor(config.refreshInterval)
    const healthMillis = Duration.toMillis(healthTimeout)
    const concurrency = options?.concurrency ?? 16
    const staticNodes = config.nodes.map(hostPortOf)

    // Plain mutable state: every access is synchronous (no Effect suspends in the middle
    // of one), so there is nothing to interleave with.
    let table: ReadonlyMap<string, Entry> = new Map()
    /** the healthy nodes' addresses, sorted; replaced whenever health changes */
    let healthy: ReadonlyArray<string> = []
    let rotation = 0
    let lastRefresh = 0
    const lock = yield* Effect.makeSemaphore(1)

    const recomputeHealthy = () => {
      healthy = [...table.values()].filter((e) => e.healthy).sort(byAddr).map((e) => e.httpAddr)
    }

    const blank = (httpAddr: string): Entry => ({
      id: httpAddr,
      gossipAddr: "",
      httpAddr,
      healthy: false,
      value: null,
      sources: [],
      lastCheck: 0,
      latencyMs: null,
      lastError: null,
      requests: 0
    })

    /** The node list from `--nodes` and discovery, merged by HTTP address. */
    const listed = Effect.gen(function*() {
      const out = new Map<string, { gossipAddr: string; id: string | undefined; sources: Array<NodeSource> }>()
      for (const addr of staticNodes) out.set(addr, { gossipAddr: "", id: undefined, sources: ["static"] })
      for (const peer of yield* discovery.peers) {
        if (peer.httpAddr === "") continue // a gossip-only entry: nothing the gateway can call
        const known = out.get(peer.httpAddr)
        if (known === undefined) {
          out.set(peer.httpAddr, { gossipAddr: peer.gossipAddr, id: peer.nodeId, sources: ["discovery"] })
        } else {
          known.gossipAddr = peer.gossipAddr
          known.id = peer.nodeId
          known.sources.push("discovery")
        }
      }
      return out
    })

    const check = (entry: Entry): Effect.Effect<Entry> =>
      Effect.gen(function*() {
        const started = yield* Clock.currentTimeMillis
        const health = yield* client.request(entry.httpAddr, { method: "GET", path: "/health", timeoutMillis: healthMillis })
        if (health.status !== 200) return { ...entry, healthy: false, lastError: `/health: ${describeStatus(health.status, health.json)}` }
        const counter = yield* client.request(entry.httpAddr, { method: "GET", path: "/counter", timeoutMillis: healthMillis })
        const body = counter.json
        if (
          counter.status !== 200 || typeof body !== "object" || body === null || !("value" in body) ||
          typeof body.value !== "number"
        ) {
          return { ...entry, healthy: false, lastError: `/counter: ${describeStatus(counter.status, body)}` }
        }
        const now = yield* Clock.currentTimeMillis
        const id = "nodeId" in body && typeof body.nodeId === "string" ? body.nodeId : entry.id
        return { ...entry, id, healthy: true, value: body.value, latencyMs: now - started, lastError: null }
      }).pipe(
        Effect.catchTag("NodeRequestError", (e) =>
          // Busy: every connection to it is taken by requests; that says nothing of its health
          Effect.succeed(e.reason === "Busy" ? { ...entry, lastError: e.message } : { ...entry, healthy: false, lastError: e.message })),
        Effect.flatMap((checked) => Effect.map(Clock.currentTimeMillis, (lastCheck) => ({ ...checked, lastCheck })))
      )

    const refreshNow = Effect.gen(function*() {
      const nodes = yield* listed
      const entries = [...nodes].map(([httpAddr, info]): Entry => {
        const known = table.get(httpAddr) ?? blank(httpAddr)
        return {
          ...known,
          gossipAddr: info.gossipAddr === "" ? known.gossipAddr : info.gossipAddr,
          id: info.id ?? known.id,
          sources: info.sources
        }
      })
      const checked = yield* Effect.forEach(entries, check, { concurrency })
      const before = table
      const next = new Map<string, Entry>()
      for (const entry of checked) {
        // keep the request count that grew while the check ran
        next.set(entry.httpAddr, { ...entry, requests: before.get(entry.httpAddr)?.requests ?? entry.requests })
      }
      table = next
      recomputeHealthy()
      for (const entry of checked) {
        const was = before.get(entry.httpAddr)
        if (was === undefined || was.healthy !== entry.healthy || was.lastCheck === 0) {
          if (entry.healthy) yield* Effect.logInfo(`node ${entry.httpAddr} (${entry.id}) is healthy`)
          else yield* Effect.logWarning(`node ${entry.httpAddr} is unhealthy: ${entry.lastError ?? "unknown"}`)
        }
      }
      for (const addr of before.keys()) {
        if (!nodes.has(addr)) yield* Effect.logInfo(`node ${addr} is no longer listed by discovery`)
      }
      lastRefresh = yield* Clock.currentTimeMillis
    }).pipe(Effect.withSpan("NodePool.refresh"))

    const refresh = lock.withPermits(1)(refreshNow)

    const refreshIfOlder = (maxAge: Duration.DurationInput) =>
      lock.withPermits(1)(
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          if (now - lastRefresh >= Duration.toMillis(maxAge)) yield* refreshNow
        })
      )

    const nodes = Effect.sync((): ReadonlyArray<NodeView> => [...table.values()].sort(byAddr).map((e) => ({ ...e })))

    const rotate = (): ReadonlyArray<string> => {
      const addrs = healthy
      if (addrs.length <= 1) return addrs
      const offset = rotation % addrs.length
      rotation = (rotation + 1) % 1_000_000_007
      return offset === 0 ? addrs : [...addrs.slice(offset), ...addrs.slice(0, offset)]
    }

    /** Marks a node down; true when it was healthy (the caller logs it). */
    const takeDown = (httpAddr: string, reason: string): boolean => {
      const entry = table.get(httpAddr)
      if (entry === undefined) return false
      const was = entry.healthy
      entry.healthy = false
      entry.lastError = reason
      if (was) recomputeHealthy()
      return was
    }
    const logDown = (httpAddr: string, reason: string) => Effect.logWarning(`node ${httpAddr} taken out of rotation: ${reason}`)

    // run without a fiber by the forwarding, so the rare line it logs goes through the
    // layer's runtime (a fiber then, only when a healthy node is taken down)
    const markDown = (httpAddr: string, reason: string): Effect.Effect<void> =>
      Callback.make((resume) => {
        if (takeDown(httpAddr, reason)) Runtime.runSync(runtime)(logDown(httpAddr, reason))
        resume(Exit.void)
      })

    const recordRequest = (httpAddr: string): Effect.Effect<void> =>
      Callback.sync(() => {
        const entry = table.get(httpAddr)
        if (entry !== undefined) entry.requests++
      })

    yield* refresh
    yield* refresh.pipe(
      Effect.catchAllCause((cause) => Effect.logError("node pool refresh failed", cause)),
      Effect.repeat(Schedule.spaced(config.refreshInterval)),
      Effect.delay(config.refreshInterval),
      Effect.forkScoped
    )

    return NodePool.of({
      nodes,
      candidates: Callback.sync(rotate),
      healthyCount: Effect.sync(() => healthy.length),
      markDown,
      recordRequest,
      refresh,
      refreshIfOlder
    })
  })

/** The pool, checking nodes from the first moment it is built. */
export const layer = (options?: Partial<PoolOptions>): Layer.Layer<NodePool, never, GatewayConfig | NodeClient | DiscoveryClient> =>
  Layer.scoped(NodePool, make(options))
