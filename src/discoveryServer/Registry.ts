/**
 * The discovery registry: which nodes are registered, where to reach them, and when they
 * were last heard from. Times come from Effect's `Clock`, so expiry is testable with the
 * `TestClock`. An entry not heard from for `ttl` is gone: `peers` leaves it out, `heartbeat`
 * answers `PeerNotRegistered` for it, and a scoped background fiber sweeps it out of the
 * map so the map stays bounded. The registry holds at most `capacity` live entries;
 * registering a new address past that fails with `RegistryFull`, re-registering a known
 * address always works.
 */
import { Clock, Context, Data, Duration, Effect, Layer, Metric, Schedule } from "effect"
import { DiscoveryConfig } from "../config/DiscoveryConfig.js"
import * as Prometheus from "../observability/Prometheus.js"

/** What a node tells discovery about itself (already validated). */
export interface Registration {
  readonly addr: string
  readonly httpAddr: string
  readonly nodeId: string
}

export interface RegistryEntry extends Registration {
  /** epoch milliseconds, from `Clock.currentTimeMillis` */
  readonly lastSeen: number
}

/** Registering a new address would take the registry past its bound. */
export class RegistryFull extends Data.TaggedError("RegistryFull")<{
  readonly capacity: number
  readonly addr: string
}> {
  override get message() {
    return `the registry holds its maximum of ${this.capacity} peers; ${this.addr} was not registered`
  }
}

/** A heartbeat for an address that is not (or no longer) registered. */
export class PeerNotRegistered extends Data.TaggedError("PeerNotRegistered")<{
  readonly addr: string
}> {
  override get message() {
    return `${this.addr} is not registered`
  }
}

export interface RegistryOptions {
  /** an entry not heard from for this long is expired */
  readonly ttl: Duration.DurationInput
  /** at most this many live entries */
  readonly capacity: number
  /** how often the background sweep runs (default: ttl / 2, at least 50ms, at most 5s) */
  readonly sweepInterval?: Duration.DurationInput
}

export class Registry extends Context.Tag("dcounter/Registry")<
  Registry,
  {
    /** Adds or replaces the entry for `addr`, with `lastSeen` = now. */
    readonly register: (registration: Registration) => Effect.Effect<void, RegistryFull>
    /** Refreshes `lastSeen` of a live entry. */
    readonly heartbeat: (addr: string) => Effect.Effect<void, PeerNotRegistered>
    /** Removes the entry for `addr`; true if there was a live one. Idempotent. */
    readonly deregister: (addr: string) => Effect.Effect<boolean>
    /** The live entries, sorted by address. */
    readonly peers: Effect.Effect<ReadonlyArray<RegistryEntry>>
    /** Drops expired entries from the map now; returns how many. */
    readonly sweep: Effect.Effect<number>
    /** Entries held in the map (live or expired but not yet swept). */
    readonly size: Effect.Effect<number>
  }
>() {}

// ---------------------------------------------------------------------------------------
// metrics

export const registeredPeers = Metric.gauge("dcounter_discovery_registered_peers", {
  description: "peers held by the discovery registry (after the last change or sweep)"
})
export const registrations = Metric.counter("dcounter_discovery_registrations_total", {
  description: "successful /register calls",
  incremental: true
})
export const heartbeats = Metric.counter("dcounter_discovery_heartbeats_total", {
  description: "successful /heartbeat calls",
  incremental: true
})
export const unknownHeartbeats = Metric.counter("dcounter_discovery_unknown_heartbeats_total", {
  description: "/heartbeat calls for an unknown or expired address (answered 404)",
  incremental: true
})
export const deregistrations = Metric.counter("dcounter_discovery_deregistrations_total", {
  description: "/deregister calls that removed a live entry",
  incremental: true
})
export const expired = Metric.counter("dcounter_discovery_expired_total", {
  description: "entries dropped because no heartbeat came within the peer TTL",
  incremental: true
})
export const rejectedFull = Metric.counter("dcounter_discovery_registry_full_total", {
  description: "registrations refused because the registry was full",
  incremental: true
})
for (const m of [registeredPeers, registrations, heartbeats, unknownHeartbeats, deregistrations, expired, rejectedFull]) {
  Prometheus.declared(m)
}

// ---------------------------------------------------------------------------------------

const defaultSweepInterval = (ttl: Duration.Duration): Duration.Duration =>
  Duration.clamp(Duration.unsafeDivide(ttl, 2), {
    minimum: Duration.millis(50),
    maximum: Duration.seconds(5)
  })

/**
 * Builds a registry and starts its sweeper in the current scope.
 *
 * The map is owned by this service and only touched inside `Effect.sync` blocks, which run
 * to completion without yielding: every operation is atomic, and register / heartbeat /
 * deregister are O(1) (a full registry is swept before it refuses a new address).
 */
export const make = (options: RegistryOptions) =>
  Effect.gen(function*() {
    const ttlMillis = Duration.toMillis(Duration.decode(options.ttl))
    const capacity = Math.max(0, Math.floor(options.capacity))
    const entries = new Map<string, RegistryEntry>()

    const isLive = (entry: RegistryEntry, now: number) => now - entry.lastSeen < ttlMillis

    /** Drops expired entries; returns their addresses. Call inside `Effect.sync`. */
    const dropExpired = (now: number): ReadonlyArray<string> => {
      const dropped: Array<string> = []
      for (const [addr, entry] of entries) {
        if (!isLive(entry, now)) {
          entries.delete(addr)
          dropped.push(addr)
        }
      }
      return dropped
    }

    /** Counts and logs expired entries (first 10 by address), and publishes the size. */
    const publish = (dropped: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        if (dropped.length > 0) {
          yield* Metric.incrementBy(expired, dropped.length)
          const shown = dropped.slice(0, 10).join(", ")
          const more = dropped.length > 10 ? ` and ${dropped.length - 10} more` : ""
          yield* Effect.logInfo(`expired peer(s), no heartbeat for ${Duration.format(Duration.millis(ttlMillis))}: ${shown}${more}`)
        }
        yield* Metric.set(registeredPeers, entries.size)
      })

    const register = Effect.fn("Registry.register")(function*(registration: Registration) {
      const now = yield* Clock.currentTimeMillis
      const outcome = yield* Effect.sync(() => {
        const entry: RegistryEntry = {
          addr: registration.addr,
          httpAddr: registration.httpAddr,
          nodeId: registration.nodeId,
          lastSeen: now
        }
        let dropped: ReadonlyArray<string> = []
        if (!entries.has(entry.addr) && entries.size >= capacity) {
          dropped = dropExpired(now)
          if (entries.size >= capacity) return { ok: false, dropped }
        }
        entries.set(entry.addr, entry)
        return { ok: true, dropped }
      })
      yield* publish(outcome.dropped)
      if (!outcome.ok) {
        yield* Metric.increment(rejectedFull)
        return yield* new RegistryFull({ capacity, addr: registration.addr })
      }
      yield* Metric.increment(registrations)
    })

    const heartbeat = Effect.fn("Registry.heartbeat")(function*(addr: string) {
      const now = yield* Clock.currentTimeMillis
      const found = yield* Effect.sync(() => {
        const known = entries.get(addr)
        if (known === undefined) return "unknown" as const
        if (!isLive(known, now)) {
          entries.delete(addr)
          return "expired" as const
        }
        entries.set(addr, { ...known, lastSeen: now })
        return "live" as const
      })
      if (found === "expired") yield* publish([addr])
      if (found !== "live") {
        yield* Metric.increment(unknownHeartbeats)
        return yield* new PeerNotRegistered({ addr })
      }
      yield* Metric.increment(heartbeats)
    })

    const deregister = Effect.fn("Registry.deregister")(function*(addr: string) {
      const now = yield* Clock.currentTimeMillis
      const wasLive = yield* Effect.sync(() => {
        const known = entries.get(addr)
        if (known === undefined) return false
        entries.delete(addr)
        return isLive(known, now)
      })
      if (wasLive) yield* Metric.increment(deregistrations)
      yield* publish([])
      return wasLive
    })

    const peers = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      return yield* Effect.sync(() => {
        const live: Array<RegistryEntry> = []
        for (const entry of entries.values()) if (isLive(entry, now)) live.push(entry)
        return live.sort((a, b) => (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : 0))
      })
    }).pipe(Effect.withSpan("Registry.peers"))

    const sweep = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const dropped = yield* Effect.sync(() => dropExpired(now))
      yield* publish(dropped)
      return dropped.length
    }).pipe(Effect.withSpan("Registry.sweep"))

    const sweepInterval = options.sweepInterval !== undefined
      ? Duration.decode(options.sweepInterval)
      : defaultSweepInterval(Duration.millis(ttlMillis))
    yield* Metric.set(registeredPeers, 0)
    yield* sweep.pipe(Effect.repeat(Schedule.spaced(sweepInterval)), Effect.forkScoped)

    return Registry.of({
      register,
      heartbeat,
      deregister,
      peers,
      sweep,
      size: Effect.sync(() => entries.size)
    })
  })

/** A registry with explicit options (tests). */
export const layer = (options: RegistryOptions): Layer.Layer<Registry> => Layer.scoped(Registry, make(options))

/** A registry configured from `DiscoveryConfig` (`--peer-ttl`, registry bound). */
export const layerConfig: Layer.Layer<Registry, never, DiscoveryConfig> = Layer.scoped(
  Registry,
  Effect.flatMap(DiscoveryConfig, (config) => make({ ttl: config.peerTtl, capacity: config.maxPeers }))
)
