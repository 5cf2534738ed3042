/**
 * `DiscoveryClient` over the discovery role's HTTP API (`DiscoveryApi`, called through an
 * `HttpApiClient` derived from that same definition, on a keep-alive node:http agent).
 *
 * - With `self` (a node): registers at start, retrying with capped exponential backoff for
 *   at most `startupTimeout` (the layer starts even when discovery is down), then sends a
 *   heartbeat every `heartbeatInterval`; a 404 (discovery forgot us: restarted, or our
 *   entry expired) or a still-missing registration registers again on that same tick, so a
 *   restarted discovery lists the node again within one heartbeat (two at worst).
 *   Deregisters when the scope closes, within `deregisterTimeout`.
 * - Without `self` (the gateway): only reads the peer list.
 * - The peer list is fetched at start and every `refreshInterval`, and cached: `peers` never
 *   fails and keeps serving the last list while discovery is unreachable.
 * - An outage is logged once at warning level when it starts, then at most once per
 *   `outageLogInterval` (default 1 minute) while it lasts, and once at info when it ends.
 *
 * Use as `import * as DiscoveryHttp from "./DiscoveryHttp.js"` -> `DiscoveryHttp.layer(...)`.
 */
import * as HttpApiClient from "@effect/platform/HttpApiClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Cause, Clock, Data, Duration, Effect, Layer, Metric, Option, Ref, Schedule } from "effect"
import type { Redacted, Scope } from "effect"
import { BadRequest, DiscoveryApi, NotRegistered, RegistryFull, Unauthorized } from "../protocol/DiscoveryApi.js"
import type { DiscoveredPeer } from "./DiscoveryClient.js"
import { DiscoveryClient } from "./DiscoveryClient.js"
import * as Prometheus from "../observability/Prometheus.js"

export interface Self {
  /** gossip address, as registered (`addr` in the discovery API) */
  readonly addr: string
  readonly httpAddr: string
  readonly nodeId: string
}

export interface Options {
  /** discovery `host:port` */
  readonly discovery: string
  /** this node; omit for the gateway, which only reads peers */
  readonly self?: Self | undefined
  readonly heartbeatInterval: Duration.DurationInput
  readonly refreshInterval: Duration.DurationInput
  readonly clusterKey: Option.Option<Redacted.Redacted<string>>
  /** per request, including reading the body (default: heartbeat interval, clamped to 500ms..2s) */
  readonly requestTimeout?: Duration.DurationInput | undefined
  /** how long layer start may wait for the first registration (default 2s) */
  readonly startupTimeout?: Duration.DurationInput | undefined
  /** how long scope close may wait for the deregistration (default 1s) */
  readonly deregisterTimeout?: Duration.DurationInput | undefined
  /**
   * keep a peer this long after discovery stopped listing it (default: 2 x the longer of
   * the two intervals), so a discovery that restarted empty does not blank the list
   */
  readonly keepUnlisted?: Duration.DurationInput | undefined
  /** while discovery stays unreachable, log at most this often (default 1 minute) */
  readonly outageLogInterval?: Duration.DurationInput | undefined
}

/** A call to discovery failed: no answer in time, a transport error, or an unexpected answer. */
export class DiscoveryCallFailed extends Data.TaggedError("DiscoveryCallFailed")<{
  readonly call: "register" | "heartbeat" | "peers" | "deregister"
  readonly reason: "Timeout" | "Transport" | "Rejected" | "BadResponse"
  readonly detail: string
  readonly cause?: unknown
}> {
  override get message() {
    return `discovery ${this.call}: ${this.reason.toLowerCase()}: ${this.detail}`
  }
}

// ---------------------------------------------------------------------------------------
// metrics

export const clientReachable = Metric.gauge("dcounter_discovery_client_reachable", {
  description: "1 when the last call to discovery succeeded, else 0"
})
export const clientRegistrations = Metric.counter("dcounter_discovery_client_registrations_total", {
  description: "successful registrations with discovery (at start, after a 404, after an outage)",
  incremental: true
})
export const clientFailures = Metric.counter("dcounter_discovery_client_failures_total", {
  description: "failed calls to discovery",
  incremental: true
})
export const clientPeers = Metric.gauge("dcounter_discovery_client_peers", {
  description: "peers in the last list read from discovery"
})
for (const m of [clientReachable, clientRegistrations, clientFailures, clientPeers]) Prometheus.declared(m)

// ---------------------------------------------------------------------------------------

const clampDuration = (d: Duration.DurationInput, min: Duration.DurationInput, max: Duration.DurationInput) =>
  Duration.clamp(d, { minimum: min, maximum: max })

/** The typed client of `DiscoveryApi`, with the bearer key when there is one. */
const makeApiClient = (options: Options) =>
  HttpApiClient.make(DiscoveryApi, {
    baseUrl: `http://${options.discovery}`,
    transformClient: (client) =>
      Option.match(options.clusterKey, {
        onNone: () => client,
        onSome: (key) => HttpClient.mapRequest(client, HttpClientRequest.bearerToken(key))
      })
  })

interface Outage {
  /** when the current outage began (epoch ms), none while reachable */
  readonly since: Option.Option<number>
  readonly lastLogged: number
  readonly failuresSinceLog: number
}

export const make = (options: Options): Effect.Effect<DiscoveryClient["Type"], never, HttpClient.HttpClient | Scope.Scope> =>
  Effect.gen(function*() {
    const heartbeatInterval = Duration.decode(options.heartbeatInterval)
    const refreshInterval = Duration.decode(options.refreshInterval)
    const requestTimeout = options.requestTimeout !== undefined
      ? Duration.decode(options.requestTimeout)
      : clampDuration(heartbeatInterval, "500 millis", "2 seconds")
    const startupTimeout = Duration.decode(options.startupTimeout ?? "2 seconds")
    const deregisterTimeout = Duration.decode(options.deregisterTimeout ?? "1 second")
    const outageLogMillis = Duration.toMillis(options.outageLogInterval ?? "1 minute")
    const self = options.self

    const keepUnlistedMillis = Duration.toMillis(
      options.keepUnlisted ?? Duration.times(Duration.max(heartbeatInterval, refreshInterval), 2)
    )

    const api = yield* makeApiClient(options)
    /** by gossip address: the peer and when discovery last listed it */
    const cache = yield* Ref.make<ReadonlyMap<string, { readonly peer: DiscoveredPeer; readonly listedAt: number }>>(
      new Map()
    )
    const reachable = yield* Ref.make(false)
    const registered = yield* Ref.make(false)
    const outage = yield* Ref.make<Outage>({ since: Option.none(), lastLogged: 0, failuresSinceLog: 0 })

    /** Runs one call with the request timeout, mapping every failure to `DiscoveryCallFailed`. */
    const call = <A, E>(name: DiscoveryCallFailed["call"], effect: Effect.Effect<A, E>) =>
      effect.pipe(
        Effect.timeoutFail({
          duration: requestTimeout,
          onTimeout: () =>
            new DiscoveryCallFailed({
              call: name,
              reason: "Timeout",
              detail: `no answer from ${options.discovery} within ${Duration.format(requestTimeout)}`
            })
        }),
        Effect.mapError((error) => error instanceof DiscoveryCallFailed ? error : classify(name, error))
      )

    const classify = (name: DiscoveryCallFailed["call"], error: unknown): DiscoveryCallFailed => {
      if (isApiError(error)) {
        return new DiscoveryCallFailed({ call: name, reason: "Rejected", detail: error.message, cause: error })
      }
      if (isTagged(error, "RequestError")) {
        return new DiscoveryCallFailed({
          call: name,
          reason: "Transport",
          detail: `cannot reach ${options.discovery}`,
          cause: error
        })
      }
      return new DiscoveryCallFailed({
        call: name,
        reason: "BadResponse",
        detail: `unexpected answer from ${options.discovery}`,
        cause: error
      })
    }

    /** A loop body must not die: log anything unexpected and carry on at the next tick. */
    const logDefects = (what: string) => <A>(effect: Effect.Effect<A>) =>
      Effect.catchAllCause(effect, (cause) =>
        Cause.isInterruptedOnly(cause)
          ? Effect.failCause(cause)
          : Effect.logError(`discovery client: ${what} failed unexpectedly`, cause))

    const markReachable = Effect.gen(function*() {
      yield* Ref.set(reachable, true)
      yield* Metric.set(clientReachable, 1)
      const previous = yield* Ref.getAndSet(outage, { since: Option.none(), lastLogged: 0, failuresSinceLog: 0 })
      if (Option.isSome(previous.since)) {
        const now = yield* Clock.currentTimeMillis
        yield* Effect.logInfo(
          `discovery ${options.discovery} is reachable again (after ${Duration.format(Duration.millis(now - previous.since.value))})`
        )
      }
    })

    const markFailed = (error: DiscoveryCallFailed) =>
      Effect.gen(function*() {
        yield* Ref.set(reachable, false)
        yield* Metric.set(clientReachable, 0)
        yield* Metric.increment(clientFailures)
        const now = yield* Clock.currentTimeMillis
        const state = yield* Ref.get(outage)
        // a refusal (401: wrong cluster key, 507: registry full, ...) is an outage for us too
        const what = error.reason === "Rejected" ? "refuses our calls" : "unreachable"
        if (Option.isNone(state.since)) {
          yield* Ref.set(outage, { since: Option.some(now), lastLogged: now, failuresSinceLog: 0 })
          yield* Effect.logWarning(
            `discovery ${options.discovery} ${what}; serving the ${(yield* Ref.get(cache)).size} cached peer(s): ${error.message}`
          )
        } else if (now - state.lastLogged >= outageLogMillis) {
          yield* Ref.set(outage, { since: state.since, lastLogged: now, failuresSinceLog: 0 })
          yield* Effect.logWarning(
            `discovery ${options.discovery} still ${what} after ${
              Duration.format(Duration.millis(now - state.since.value))
            } (${state.failuresSinceLog + 1} failed calls since the last report): ${error.message}`
          )
        } else {
          yield* Ref.set(outage, { ...state, failuresSinceLog: state.failuresSinceLog + 1 })
          yield* Effect.logDebug(error.message)
        }
      })

    /** Reports the outcome of a call to the reachability state; failures stay failures. */
    const observed = <A>(effect: Effect.Effect<A, DiscoveryCallFailed>) =>
      effect.pipe(Effect.tapBoth({ onFailure: markFailed, onSuccess: () => markReachable }))

    const register = (who: Self) =>
      observed(call("register", api.discovery.register({ payload: who }))).pipe(
        Effect.zipRight(Ref.set(registered, true)),
        Effect.zipRight(Metric.increment(clientRegistrations)),
        Effect.zipRight(Effect.logInfo(`registered ${who.addr} with discovery ${options.discovery}`)),
        Effect.withSpan("DiscoveryHttp.register")
      )

    /** One heartbeat tick: register when not registered, else heartbeat (404 -> register). */
    const heartbeatTick = (who: Self) =>
      Effect.gen(function*() {
        if (!(yield* Ref.get(registered))) return yield* register(who)
        const outcome = yield* call("heartbeat", api.discovery.heartbeat({ payload: { addr: who.addr } })).pipe(
          Effect.as("ok" as const),
          Effect.catchIf(
            (error) => error.reason === "Rejected" && error.cause instanceof NotRegistered,
            () => Effect.succeed("unknown" as const)
          ),
          observed
        )
        if (outcome === "unknown") {
          yield* Ref.set(registered, false)
          yield* Effect.logInfo(`discovery ${options.discovery} does not know ${who.addr}: registering again`)
          yield* register(who)
        }
      }).pipe(
        Effect.catchAll(() => Effect.void), // already logged by `observed`, retried next tick
        logDefects("heartbeat"),
        Effect.withSpan("DiscoveryHttp.heartbeat")
      )

    /**
     * Replaces the cache with the listed peers, keeping for `keepUnlisted` those that are
     * no longer listed: a discovery that restarted empty lists nodes again only as they
     * re-register, and the gateway should not lose its nodes meanwhile.
     */
    const refresh = observed(call("peers", api.discovery.peers())).pipe(
      Effect.flatMap((listed) =>
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          const size = yield* Ref.modify(cache, (previous) => {
            const next = new Map<string, { readonly peer: DiscoveredPeer; readonly listedAt: number }>()
            for (const p of listed) {
              if (self !== undefined && p.addr === self.addr) continue
              next.set(p.addr, { peer: { gossipAddr: p.addr, httpAddr: p.httpAddr, nodeId: p.nodeId }, listedAt: now })
            }
            for (const [addr, entry] of previous) {
              if (!next.has(addr) && now - entry.listedAt < keepUnlistedMillis) next.set(addr, entry)
            }
            return [next.size, next]
          })
          yield* Metric.set(clientPeers, size)
        })
      ),
      Effect.catchAll(() => Effect.void), // keep the cached list; the failure is logged by `observed`
      logDefects("peer refresh"),
      Effect.withSpan("DiscoveryHttp.refresh")
    )

    /** On shutdown, bounded; skipped when discovery does not know us anyway. */
    const deregister = (who: Self) =>
      call("deregister", api.discovery.deregister({ payload: { addr: who.addr } })).pipe(
        Effect.timeout(deregisterTimeout),
        Effect.zipRight(Effect.logInfo(`deregistered ${who.addr} from discovery ${options.discovery}`)),
        Effect.catchAll((error) =>
          Effect.logWarning(`could not deregister ${who.addr} from discovery ${options.discovery}: ${error.message}`)
        ),
        Effect.whenEffect(Ref.get(registered)),
        logDefects("deregistration"),
        Effect.withSpan("DiscoveryHttp.deregister")
      )

    // start: first registration (bounded), first peer list, then the loops
    if (self !== undefined) {
      yield* Effect.addFinalizer(() => deregister(self))
      const backoff = Schedule.exponential("100 millis").pipe(
        Schedule.either(Schedule.spaced(heartbeatInterval)),
        Schedule.upTo(startupTimeout)
      )
      yield* register(self).pipe(
        Effect.retry(backoff),
        Effect.timeout(Duration.sum(startupTimeout, requestTimeout)),
        Effect.catchAll(() =>
          Effect.logWarning(
            `not registered with discovery ${options.discovery} yet; retrying every ${Duration.format(heartbeatInterval)}`
          )
        ),
        logDefects("first registration")
      )
      yield* heartbeatTick(self).pipe(
        Effect.delay(heartbeatInterval),
        Effect.forever,
        Effect.forkScoped
      )
    }
    yield* refresh
    yield* refresh.pipe(Effect.delay(refreshInterval), Effect.forever, Effect.forkScoped)

    return DiscoveryClient.of({
      peers: Effect.map(Ref.get(cache), (entries) => Array.from(entries.values(), (entry) => entry.peer)),
      reachable: Ref.get(reachable)
    })
  })

const isTagged = (u: unknown, tag: string): boolean =>
  typeof u === "object" && u !== null && "_tag" in u && u._tag === tag

/** An error answer defined by `DiscoveryApi` (`{"error", "message"}`). */
const isApiError = (u: unknown): u is BadRequest | Unauthorized | NotRegistered | RegistryFull =>
  u instanceof BadRequest || u instanceof Unauthorized || u instanceof NotRegistered || u instanceof RegistryFull

/** A keep-alive node:http client, private to one discovery client. */
const httpClientLayer: Layer.Layer<HttpClient.HttpClient> = NodeHttpClient.layerWithoutAgent.pipe(
  Layer.provide(NodeHttpClient.makeAgentLayer({ keepAlive: true, maxSockets: 4, maxFreeSockets: 2 }))
)

/** The discovery client for a node (with `self`) or the gateway (without). */
export const layer = (options: Options): Layer.Layer<DiscoveryClient> =>
  Layer.scoped(DiscoveryClient, make(options)).pipe(Layer.provide(httpClientLayer))

/** Same, over an `HttpClient` you provide (tests, custom transports). */
export const layerWithHttpClient = (options: Options): Layer.Layer<DiscoveryClient, never, HttpClient.HttpClient> =>
  Layer.scoped(DiscoveryClient, make(options))
