/**
 * Membership and failure detection.
 *
 * The peer table is keyed by gossip address and learned from every source a node has:
 * `--peers` (static), the discovery client, the Hello of every connection and PeerList
 * messages from other peers, so the cluster keeps its membership while discovery is down.
 * It never holds this node itself (its own address, its replica id, or an alias of its
 * address found by a probe that came back to itself) and is bounded (`maxPeers`).
 *
 * Failure detection, timed with the Effect `Clock` (TestClock-testable):
 * - every `heartbeatInterval` each known peer is sent a Ping; a peer that sent us nothing
 *   at all (Ping, PingAck, gossip) since the previous Ping has missed it;
 * - `suspect` after `maxFails` consecutive misses, `dead` once `failureTimeout` has passed
 *   since it was last heard from (or first learned of), `alive` again the moment anything
 *   arrives from it;
 * - only `alive` peers are gossip targets; dead peers stay visible in `/peers` for
 *   `deadRetention` more, then are removed, unless `--peers` or discovery still lists them
 *   (those keep being probed so they can come back).
 *
 * A PingAck that answers a Ping sent to address A but comes from a peer announcing
 * address B shows that A is another name of B (`localhost:9001` and `127.0.0.1:9001`):
 * the table keeps B only.
 */
import type { Scope } from "effect"
import { Clock, Context, Duration, Effect, Layer, Metric, PubSub, Queue, Random, Schedule, Schema } from "effect"
import { ReplicaId } from "../crdt/ReplicaId.js"
import { NodeConfig } from "../config/NodeConfig.js"
import type { Hello } from "../protocol/Message.js"
import { HostPort, PeerInfo, PeerList, Ping, PingAck } from "../protocol/Message.js"
import type { Inbound } from "../transport/Transport.js"
import { Transport } from "../transport/Transport.js"
import { DiscoveryClient } from "../discoveryClient/DiscoveryClient.js"
import * as Prometheus from "../observability/Prometheus.js"

export type PeerStatus = "alive" | "suspect" | "dead"

/** How a peer became known; a peer can have several. */
export type PeerSource = "static" | "discovery" | "exchange" | "contact"

/** One peer as `/peers` shows it. */
export interface PeerView {
  readonly addr: HostPort
  readonly httpAddr: string | undefined
  readonly replicaId: ReplicaId | undefined
  readonly status: PeerStatus
  /** consecutive heartbeats without any message from the peer */
  readonly fails: number
  /** epoch ms of the last message from the peer (or when it was first learned of) */
  readonly lastSeen: number
  /** whether this node ever heard from the peer directly */
  readonly heard: boolean
  readonly sources: ReadonlyArray<PeerSource>
}

/** Membership events, for the gossip loop (an anti-entropy round with a (re)joined peer). */
export type PeerEvent =
  | { readonly _tag: "Joined"; readonly addr: HostPort }
  | { readonly _tag: "Recovered"; readonly addr: HostPort; readonly was: PeerStatus }
  | { readonly _tag: "Suspected"; readonly addr: HostPort }
  | { readonly _tag: "Died"; readonly addr: HostPort }
  | { readonly _tag: "Removed"; readonly addr: HostPort }

export interface PeerManagerOptions {
  /** Most peers kept (default 1024); past it, new peers evict the longest-dead or are refused. */
  readonly maxPeers?: number
  /** How long a dead peer stays listed before it is removed (default: the failure timeout). */
  readonly deadRetention?: Duration.DurationInput
  /** How often discovery's cached peer list is read (default: the heartbeat interval). */
  readonly discoveryPollInterval?: Duration.DurationInput
  /**
   * How often a PeerList goes to `--max-sync-peers` random alive peers (default: 5 x the
   * sync interval). Newcomers get one at once, when their first message arrives; the
   * periodic exchange only spreads what that missed.
   */
  readonly exchangeInterval?: Duration.DurationInput
  /**
   * Start the heartbeat after a random fraction of its interval (default true), so that
   * nodes started together do not all probe at the same instant. Off: the first round is
   * at once and rounds fall on exact multiples of the interval (TestClock tests).
   */
  readonly startJitter?: boolean
}

export interface PeerInput {
  readonly gossipAddr: string
  readonly httpAddr?: string | undefined
  readonly replicaId?: ReplicaId | undefined
}

export class PeerManager extends Context.Tag("dcounter/PeerManager")<
  PeerManager,
  {
    readonly self: Hello
    /** Adds a peer (or a source to a known one); false if it is this node, invalid, or the table is full. */
    readonly add: (peer: PeerInput, source: PeerSource) => Effect.Effect<boolean>
    /** Handles what membership cares about in a message: liveness, Hello, Ping, PingAck, PeerList. */
    readonly handle: (inbound: Inbound) => Effect.Effect<void>
    /** Every known peer, dead ones included, sorted by address. */
    readonly peers: Effect.Effect<ReadonlyArray<PeerView>>
    /** The gossip targets: peers currently alive. */
    readonly alive: Effect.Effect<ReadonlyArray<HostPort>>
    /** Up to `n` random alive peers, none of `exclude`. */
    readonly pickAlive: (n: number, exclude?: ReadonlySet<string>) => Effect.Effect<ReadonlyArray<HostPort>>
    /** The peers worth telling others about: alive, heard from directly, with an HTTP address. */
    readonly peerList: Effect.Effect<PeerList>
    /** Membership events (sliding: a slow subscriber loses the oldest). */
    readonly events: Effect.Effect<Queue.Dequeue<PeerEvent>, never, Scope.Scope>
    /** One heartbeat round now: count misses, update statuses, prune, Ping every peer. */
    readonly heartbeat: Effect.Effect<void>
  }
>() {}

// ---------------------------------------------------------------------------- metrics

const peersGauge = Metric.gauge("dcounter_peers", { description: "Known peers by status" })
const peersByStatus = {
  alive: peersGauge.pipe(Metric.tagged("status", "alive")),
  suspect: peersGauge.pipe(Metric.tagged("status", "suspect")),
  dead: peersGauge.pipe(Metric.tagged("status", "dead"))
}
export const pingsSentTotal = Metric.counter("dcounter_pings_sent_total", {
  description: "Failure-detection Pings sent",
  incremental: true
})
for (const m of [pingsSentTotal, ...Object.values(peersByStatus)]) Prometheus.declared(m)

// ---------------------------------------------------------------------------- implementation

interface PeerRecord {
  readonly addr: HostPort
  httpAddr: string | undefined
  replicaId: ReplicaId | undefined
  fails: number
  lastSeen: number
  heard: boolean
  /** a Ping went out and nothing came back since */
  awaiting: boolean
  /** the status last reported (events and logs fire on changes) */
  reported: PeerStatus
  listedByDiscovery: boolean
  readonly sources: Set<PeerSource>
}

const isHostPort = Schema.is(HostPort)
const isReplicaId = Schema.is(ReplicaId)

export const make = (options: PeerManagerOptions = {}) =>
  Effect.gen(function*() {
    const config = yield* NodeConfig
    const transport = yield* Transport
    const discovery = yield* DiscoveryClient
    const self = transport.self
    const maxPeers = options.maxPeers ?? 1024
    const failureMillis = Duration.toMillis(config.failureTimeout)
    const retentionMillis = Duration.toMillis(options.deadRetention ?? config.failureTimeout)

    const table = new Map<HostPort, PeerRecord>()
    /** other names of known peers (or of this node), from PingAcks: name -> canonical address */
    const aliases = new Map<string, HostPort>()
    /** Pings in flight: seq -> the address they were sent to (this round and the last) */
    let pending = new Map<number, HostPort>()
    let previousPending = new Map<number, HostPort>()
    let seq = 0

    const hub = yield* PubSub.sliding<PeerEvent>(1024)
    yield* Effect.addFinalizer(() => PubSub.shutdown(hub))
    const emit = (event: PeerEvent) => void hub.unsafeOffer(event)

    const statusOf = (p: PeerRecord, now: number): PeerStatus =>
      now - p.lastSeen >= failureMillis ? "dead" : p.fails >= config.maxFails ? "suspect" : "alive"

    const isSelf = (addr: string, replicaId: string | undefined) =>
      addr === self.gossipAddr || aliases.get(addr) === self.gossipAddr ||
      (replicaId !== undefined && replicaId === self.replicaId)

    const view = (p: PeerRecord, now: number): PeerView => ({
      addr: p.addr,
      httpAddr: p.httpAddr,
      replicaId: p.replicaId,
      status: statusOf(p, now),
      fails: p.fails,
      lastSeen: p.lastSeen,
      heard: p.heard,
      sources: [...p.sources].sort()
    })

    const remove = (p: PeerRecord, why: string) =>
      Effect.gen(function*() {
        table.delete(p.addr)
        emit({ _tag: "Removed", addr: p.addr })
        yield* transport.forget(p.addr)
        yield* Effect.logInfo(`PeerManager: removed peer ${p.addr} (${why})`).pipe(Effect.annotateLogs("peer", p.addr))
      })

    /** Makes room for one more peer: evicts the longest-silent dead peer nobody lists. */
    const makeRoom = (now: number) =>
      Effect.gen(function*() {
        if (table.size < maxPeers) return true
        let victim: PeerRecord | undefined
        for (const p of table.values()) {
          if (statusOf(p, now) !== "dead" || p.sources.has("static") || p.listedByDiscovery) continue
          if (victim === undefined || p.lastSeen < victim.lastSeen) victim = p
        }
        if (victim === undefined) return false
        yield* remove(victim, "the peer table is full")
        return true
      })

    const addAt = (input: PeerInput, source: PeerSource, now: number) =>
      Effect.gen(function*() {
        const canonical = aliases.get(input.gossipAddr) ?? input.gossipAddr
        if (!isHostPort(canonical) || isSelf(canonical, input.replicaId)) return false
        const existing = table.get(canonical)
        if (existing !== undefined) {
          existing.sources.add(source)
          if (existing.httpAddr === undefined && input.httpAddr !== undefined) existing.httpAddr = input.httpAddr
          if (existing.replicaId === undefined && input.replicaId !== undefined) existing.replicaId = input.replicaId
          return true
        }
        if (!(yield* makeRoom(now))) {
          yield* Effect.logDebug(`PeerManager: peer table full (${maxPeers}); ignoring ${canonical}`)
          return false
        }
        table.set(canonical, {
          addr: canonical,
          httpAddr: input.httpAddr,
          replicaId: input.replicaId,
          fails: 0,
          lastSeen: now,
          heard: false,
          awaiting: false,
          reported: "alive",
          listedByDiscovery: source === "discovery",
          sources: new Set([source])
        })
        emit({ _tag: "Joined", addr: canonical })
        yield* Effect.logInfo(`PeerManager: new peer ${canonical} (from ${source})`).pipe(Effect.annotateLogs("peer", canonical))
        return true
      })

    const add = (input: PeerInput, source: PeerSource) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => addAt(input, source, now))

    /** Anything from a peer: it is alive now. Learns it from its Hello if it is new. */
    const heardFrom = (hello: Hello, now: number): Effect.Effect<void> => {
      const p = table.get(hello.gossipAddr)
      // the common case (a known, alive peer), without allocating an effect per message
      if (
        p !== undefined && p.replicaId === hello.replicaId && p.reported === "alive" && statusOf(p, now) === "alive"
      ) {
        p.httpAddr = hello.httpAddr
        p.lastSeen = now
        p.heard = true
        p.fails = 0
        p.awaiting = false
        if (!p.sources.has("contact")) p.sources.add("contact")
        return Effect.void
      }
      return isSelf(hello.gossipAddr, hello.replicaId) ? Effect.void : heardFromSlow(hello, now)
    }

    const heardFromSlow = (hello: Hello, now: number) =>
      Effect.gen(function*() {
        let p = table.get(hello.gossipAddr)
        if (p === undefined) {
          if (!(yield* addAt(hello, "contact", now))) return
          p = table.get(hello.gossipAddr)!
          yield* transport.send(p.addr, yield* peerList)
        }
        if (p.replicaId !== hello.replicaId) {
          if (p.replicaId !== undefined) {
            yield* Effect.logInfo(
              `PeerManager: peer ${p.addr} now has replica id ${hello.replicaId} (was ${p.replicaId}): a new data directory`
            ).pipe(Effect.annotateLogs({ peer: p.addr, peerId: hello.replicaId }))
          }
          p.replicaId = hello.replicaId
        }
        p.httpAddr = hello.httpAddr
        p.sources.add("contact")
        const was = statusOf(p, now)
        p.lastSeen = now
        p.heard = true
        p.fails = 0
        p.awaiting = false
        if (was !== "alive" || p.reported !== "alive") {
          p.reported = "alive"
          emit({ _tag: "Recovered", addr: p.addr, was })
          yield* Effect.logInfo(`PeerManager: peer ${p.addr} is alive again (was ${was})`).pipe(Effect.annotateLogs("peer", p.addr))
        }
      })

    /** A probe of `sentTo` reached a node that calls itself `hello`: `sentTo` is another name of it. */
    const learnAlias = (sentTo: HostPort, hello: Hello) =>
      Effect.gen(function*() {
        if (sentTo === hello.gossipAddr || aliases.has(sentTo)) return
        const target = isSelf(hello.gossipAddr, hello.replicaId) ? self.gossipAddr : hello.gossipAddr
        if (aliases.size >= maxPeers) return
        aliases.set(sentTo, target)
        const p = table.get(sentTo)
        if (p !== undefined) {
          table.delete(sentTo)
          yield* transport.forget(sentTo)
          const canonical = table.get(target)
          if (canonical !== undefined) for (const s of p.sources) canonical.sources.add(s)
        }
        yield* Effect.logInfo(
          `PeerManager: ${sentTo} is another address of ${target === self.gossipAddr ? "this node" : target}`
        )
      })

    const handle = (inbound: Inbound) =>
      Effect.flatMap(Clock.currentTimeMillis, (now): Effect.Effect<void> => {
        const { from, message } = inbound
        switch (message._tag) {
          case "Ping": {
            if (isSelf(from.gossipAddr, from.replicaId)) {
              // our own probe came back to us through another name of this node
              const sentTo = pending.get(message.seq) ?? previousPending.get(message.seq)
              return sentTo !== undefined && from.gossipAddr === self.gossipAddr ? learnAlias(sentTo, from) : Effect.void
            }
            return Effect.zipRight(
              heardFrom(from, now),
              transport.send(from.gossipAddr, new PingAck({ seq: message.seq }, true))
            )
          }
          case "PingAck": {
            const sentTo = pending.get(message.seq) ?? previousPending.get(message.seq)
            const alias = sentTo !== undefined && sentTo !== from.gossipAddr ? learnAlias(sentTo, from) : Effect.void
            return Effect.zipRight(alias, heardFrom(from, now))
          }
          case "PeerList":
            return Effect.gen(function*() {
              yield* heardFrom(from, now)
              for (const info of message.peers) {
                yield* addAt(
                  { gossipAddr: info.gossipAddr, httpAddr: info.httpAddr, replicaId: info.replicaId },
                  "exchange",
                  now
                )
              }
            })
          default:
            return heardFrom(from, now)
        }
      })

    const peerList = Effect.sync(() => {
      const peers: Array<PeerInfo> = []
      for (const p of table.values()) {
        if (!p.heard || p.reported !== "alive" || p.httpAddr === undefined || !isHostPort(p.httpAddr)) continue
        if (p.fails >= config.maxFails) continue
        peers.push(new PeerInfo({ gossipAddr: p.addr, httpAddr: p.httpAddr, replicaId: p.replicaId }, true))
        if (peers.length >= 4096) break
      }
      return new PeerList({ peers }, true)
    })

    const aliveAt = (now: number): Array<HostPort> => {
      const out: Array<HostPort> = []
      for (const p of table.values()) if (statusOf(p, now) === "alive") out.push(p.addr)
      return out
    }

    const pickAlive = (n: number, exclude?: ReadonlySet<string>) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const candidates = exclude === undefined ? aliveAt(now) : aliveAt(now).filter((a) => !exclude.has(a))
        if (candidates.length <= n) return candidates
        // partial Fisher-Yates: the first n of a random permutation
        for (let i = 0; i < n; i++) {
          const j = yield* Random.nextIntBetween(i, candidates.length)
          const t = candidates[i]!
          candidates[i] = candidates[j]!
          candidates[j] = t
        }
        return candidates.slice(0, n)
      })

    const heartbeat = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      previousPending = pending
      pending = new Map()
      const counts = { alive: 0, suspect: 0, dead: 0 }
      for (const p of [...table.values()]) {
        if (p.awaiting) p.fails++
        const status = statusOf(p, now)
        if (status !== p.reported) {
          const was = p.reported
          p.reported = status
          if (status === "suspect") {
            emit({ _tag: "Suspected", addr: p.addr })
            yield* Effect.logWarning(`PeerManager: peer ${p.addr} is suspect (${p.fails} heartbeats missed)`).pipe(
              Effect.annotateLogs("peer", p.addr)
            )
          } else if (status === "dead") {
            emit({ _tag: "Died", addr: p.addr })
            yield* Effect.logWarning(
              `PeerManager: peer ${p.addr} is dead (not heard from for ${Duration.format(Duration.millis(now - p.lastSeen))})`
            ).pipe(Effect.annotateLogs("peer", p.addr))
          } else {
            emit({ _tag: "Recovered", addr: p.addr, was })
          }
        }
        if (
          status === "dead" && now - p.lastSeen >= failureMillis + retentionMillis &&
          !p.sources.has("static") && !p.listedByDiscovery
        ) {
          yield* remove(p, "dead")
          continue
        }
        counts[status]++
        const s = seq = (seq + 1) % Number.MAX_SAFE_INTEGER
        pending.set(s, p.addr)
        p.awaiting = true
        yield* transport.send(p.addr, new Ping({ seq: s }, true))
      }
      yield* Metric.incrementBy(pingsSentTotal, pending.size)
      yield* Metric.set(peersByStatus.alive, counts.alive)
      yield* Metric.set(peersByStatus.suspect, counts.suspect)
      yield* Metric.set(peersByStatus.dead, counts.dead)
    }).pipe(Effect.withSpan("PeerManager.heartbeat"))

    const pollDiscovery = (client: DiscoveryClient["Type"]) =>
      Effect.gen(function*() {
        const listed = yield* client.peers
        const now = yield* Clock.currentTimeMillis
        const addrs = new Set<string>()
        for (const d of listed) {
          const addr = aliases.get(d.gossipAddr) ?? d.gossipAddr
          addrs.add(addr)
          yield* addAt({
            gossipAddr: addr,
            httpAddr: d.httpAddr,
            replicaId: isReplicaId(d.nodeId) ? d.nodeId : undefined
          }, "discovery", now)
        }
        for (const p of table.values()) p.listedByDiscovery = addrs.has(p.addr)
      })

    const exchange = Effect.gen(function*() {
      const targets = yield* pickAlive(config.maxSyncPeers)
      if (targets.length === 0) return
      const list = yield* peerList
      for (const t of targets) yield* transport.send(t, list)
    })

    for (const addr of config.peers) {
      if (!isHostPort(addr)) {
        yield* Effect.logWarning(`PeerManager: ignoring static peer ${JSON.stringify(addr)}: not host:port`)
        continue
      }
      yield* add({ gossipAddr: addr }, "static")
    }

    /** Runs `effect` after `first`, then every `interval`, logging failures. */
    const every = (first: Duration.Duration, interval: Duration.Duration, effect: Effect.Effect<void>, name: string) =>
      Effect.sleep(first).pipe(
        Effect.zipRight(
          effect.pipe(
            Effect.catchAllCause((cause) => Effect.logError(`PeerManager: ${name} failed`, cause)),
            Effect.repeat(Schedule.spaced(interval))
          )
        ),
        Effect.forkScoped
      )

    // the gauges exist from the start (the first heartbeat may be up to one interval away)
    const startedAt = yield* Clock.currentTimeMillis
    yield* Metric.set(peersByStatus.alive, aliveAt(startedAt).length)
    yield* Metric.set(peersByStatus.suspect, 0)
    yield* Metric.set(peersByStatus.dead, 0)

    const jitter = options.startJitter === false
      ? Duration.zero
      : Duration.millis(Math.floor((yield* Random.next) * Duration.toMillis(config.heartbeatInterval)))
    yield* every(jitter, config.heartbeatInterval, heartbeat, "heartbeat")
    const exchangeInterval = Duration.decode(options.exchangeInterval ?? Duration.times(config.syncInterval, 5))
    yield* every(exchangeInterval, exchangeInterval, exchange, "peer exchange")
    yield* every(
      Duration.zero,
      Duration.decode(options.discoveryPollInterval ?? config.heartbeatInterval),
      pollDiscovery(discovery),
      "discovery poll"
    )

    return PeerManager.of({
      self,
      add,
      handle,
      peers: Effect.map(Clock.currentTimeMillis, (now) =>
        [...table.values()].map((p) => view(p, now)).sort((a, b) => (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : 0))),
      alive: Effect.map(Clock.currentTimeMillis, aliveAt),
      pickAlive,
      peerList,
      events: PubSub.subscribe(hub),
      heartbeat
    })
  })

export const layer = (
  options: PeerManagerOptions = {}
): Layer.Layer<PeerManager, never, NodeConfig | Transport | DiscoveryClient> => Layer.scoped(PeerManager, make(options))
