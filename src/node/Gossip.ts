/**
 * The gossip loop: how a node's state reaches every other node.
 *
 * 1. Eager delta push. Every change to the local state is published by `CounterStore`;
 *    the pusher batches changes for `pushWindow` (2 ms) and pushes the delta (only the
 *    entries that grew, coalesced) to alive peers:
 *    - up to `directPushLimit` alive peers (64), a LOCAL write goes straight to ALL of
 *      them. n-1 messages is the least any scheme can use to tell n-1 peers, and it takes
 *      one hop (a few ms) with no randomness: a 5-node cluster converges as soon as the
 *      four pushes land. Gossip-style fan-out (push to k, receivers forward to k) needs
 *      ~n*k messages and, with forward-once and k = 2, leaves about 20% of nodes
 *      uninformed (s = e^(-k(1-s))) until the next anti-entropy round: seconds at p99.
 *      Batching per window bounds the cost at (n-1) messages per window per node.
 *    - beyond that, sending n-1 messages per batch from the writer is too much for one
 *      node, so the delta goes to k = max(max-sync-peers, ceil(ln n) + 2) random alive
 *      peers and every receiver whose state it CHANGED forwards the changed entries once
 *      to k others (never back to the peer it came from). Forwarding only on change makes
 *      the flood stop by itself; fan-out ln n + c informs all n nodes with probability
 *      about exp(-e^-c) (Kermarrec et al.), and anti-entropy repairs the rest.
 * 2. Anti-entropy every `syncInterval`: a DigestPull (hash of the whole state) to up to
 *    `maxSyncPeers` random alive peers. The receiver answers DigestAck if equal; otherwise
 *    it pushes its FULL state. The asker merges it, and if its own state still differs
 *    (it holds entries the other lacks) it answers with exactly those entries: one exchange
 *    (pull, full push, delta push-back) repairs BOTH sides. A state too large for one frame
 *    goes in several delta chunks followed by a DigestPull of the sender, so the receiver
 *    answers with its own state if it holds more. No message answers a delta push, so
 *    exchanges always end.
 *    What anti-entropy teaches a node is news the eager pushes missed (a healed partition,
 *    a restarted node), so the rest of the cluster probably lacks it too: the node
 *    forwards those changed entries once as an eager delta to the alive peers (all in a
 *    small cluster, k in a large one), but not back to where they came from. Anti-entropy
 *    pushes carry the sender's digest and eager deltas an empty one, which is how a
 *    receiver tells them apart; a forwarded delta is never forwarded again in a small
 *    cluster, so a repair costs one extra wave, and in steady state (digests equal)
 *    nothing.
 * 3. A full push to `maxSyncPeers` random alive peers every `fullSyncInterval` (the
 *    receiver pushes back what it has more, as above).
 * 4. A peer that joins, or comes back after being suspect or dead (a healed partition, a
 *    restart), gets a DigestPull at once instead of waiting for the next round.
 * Peer exchange (PeerList) and failure detection live in PeerManager; this module's
 * inbound loop feeds every message to it first.
 */
import type { Chunk } from "effect"
import { Context, Duration, Effect, Layer, Metric, Queue } from "effect"
import { NodeConfig } from "../config/NodeConfig.js"
import { CounterMap } from "../crdt/CounterMap.js"
import type { Entry } from "../crdt/Entry.js"
import { PeerManager } from "../membership/PeerManager.js"
import type { HostPort, Message } from "../protocol/Message.js"
import { DigestAck, DigestPull, Push } from "../protocol/Message.js"
import type { Inbound } from "../transport/Transport.js"
import { Transport } from "../transport/Transport.js"
import type { Change } from "./CounterStore.js"
import { CounterStore } from "./CounterStore.js"
import * as Prometheus from "../observability/Prometheus.js"

export interface GossipOptions {
  /** Up to this many alive peers, local writes are pushed to all of them (default 64). */
  readonly directPushLimit?: number
  /** Most entries in one Push frame; larger states go in several (default 16,384). */
  readonly maxPushEntries?: number
  /** How many inbound messages the loop takes at once (default 256). */
  readonly inboundBatch?: number
}

export type PushKind = "eager" | "forward" | "sync" | "full" | "pushback"

export interface GossipStats {
  readonly pushesSent: Readonly<Record<PushKind, number>>
  readonly entriesSent: number
  readonly digestPullsSent: number
  readonly digestAcksReceived: number
  readonly pushesReceived: number
  readonly pushesThatChanged: number
}

export class Gossip extends Context.Tag("dcounter/Gossip")<
  Gossip,
  {
    /** An anti-entropy round now (DigestPull to up to max-sync-peers random alive peers). */
    readonly syncNow: Effect.Effect<void>
    /** A full push now to up to max-sync-peers random alive peers. */
    readonly fullSyncNow: Effect.Effect<void>
    readonly stats: Effect.Effect<GossipStats>
  }
>() {}

// ---------------------------------------------------------------------------- metrics

const pushesSent = Metric.counter("dcounter_gossip_pushes_sent_total", {
  description: "Push messages sent, by kind (eager, forward, sync, full, pushback)",
  incremental: true
})
const entriesSent = Metric.counter("dcounter_gossip_entries_sent_total", {
  description: "Entries sent in Push messages",
  incremental: true
})
const digestsSent = Metric.counter("dcounter_gossip_digest_pulls_sent_total", {
  description: "Anti-entropy DigestPull messages sent",
  incremental: true
})
const digestAcks = Metric.counter("dcounter_gossip_digest_acks_received_total", {
  description: "DigestAck answers received (the peer's state equalled ours)",
  incremental: true
})
const pushesReceived = Metric.counter("dcounter_gossip_pushes_received_total", {
  description: "Push messages received, by whether they changed the local state",
  incremental: true
})
const messagesIn = Metric.counter("dcounter_gossip_messages_received_total", {
  description: "Gossip messages received, by type",
  incremental: true
})

// tagged once: Metric.tagged per message would build a new metric key every time
const pushesSentByKind: Record<PushKind, Metric.Metric.Counter<number>> = {
  eager: Metric.tagged(pushesSent, "kind", "eager"),
  forward: Metric.tagged(pushesSent, "kind", "forward"),
  sync: Metric.tagged(pushesSent, "kind", "sync"),
  full: Metric.tagged(pushesSent, "kind", "full"),
  pushback: Metric.tagged(pushesSent, "kind", "pushback")
}
const pushesChanged = Metric.tagged(pushesReceived, "changed", "yes")
const pushesUnchanged = Metric.tagged(pushesReceived, "changed", "no")
const messagesInByType: Record<Message["_tag"], Metric.Metric.Counter<number>> = {
  Hello: Metric.tagged(messagesIn, "type", "Hello"),
  DigestPull: Metric.tagged(messagesIn, "type", "DigestPull"),
  DigestAck: Metric.tagged(messagesIn, "type", "DigestAck"),
  Push: Metric.tagged(messagesIn, "type", "Push"),
  PeerList: Metric.tagged(messagesIn, "type", "PeerList"),
  Ping: Metric.tagged(messagesIn, "type", "Ping"),
  PingAck: Metric.tagged(messagesIn, "type", "PingAck")
}
// every series exists from start-up (at 0), not from its first use
for (
  const m of [entriesSent, digestsSent, digestAcks, pushesChanged, pushesUnchanged, ...Object.values(pushesSentByKind), ...Object.values(messagesInByType)]
) Prometheus.declared(m)

// ---------------------------------------------------------------------------- implementation

export const make = (options: GossipOptions = {}) =>
  Effect.gen(function*() {
    const config = yield* NodeConfig
    const store = yield* CounterStore
    const peers = yield* PeerManager
    const transport = yield* Transport
    const directPushLimit = options.directPushLimit ?? 64
    const maxPushEntries = Math.max(1, options.maxPushEntries ?? 16_384)
    const inboundBatch = options.inboundBatch ?? 256

    const stats = {
      pushesSent: { eager: 0, forward: 0, sync: 0, full: 0, pushback: 0 } as Record<PushKind, number>,
      entriesSent: 0,
      digestPullsSent: 0,
      digestAcksReceived: 0,
      pushesReceived: 0,
      pushesThatChanged: 0
    }

    const sendPush = (to: HostPort, kind: PushKind, push: Push) =>
      Effect.gen(function*() {
        stats.pushesSent[kind]++
        stats.entriesSent += push.entries.length
        yield* transport.send(to, push)
        yield* Metric.increment(pushesSentByKind[kind])
        yield* Metric.incrementBy(entriesSent, push.entries.length)
      })

    const sendDigestPull = (to: HostPort) =>
      Effect.gen(function*() {
        const [digest, size] = yield* Effect.all([store.digest, store.size])
        stats.digestPullsSent++
        yield* transport.send(to, new DigestPull({ digest, entries: size }, true))
        yield* Metric.increment(digestsSent)
      })

    /**
     * Sends our whole state. One frame: a `full` Push (the receiver can answer with what it
     * has more). Several frames: delta chunks, then a DigestPull so the receiver answers
     * with its own state if it still differs.
     */
    const sendFullState = (to: HostPort, kind: PushKind) =>
      Effect.gen(function*() {
        const [entries, digest] = yield* Effect.all([store.entries, store.digest])
        if (entries.length <= maxPushEntries) {
          return yield* sendPush(to, kind, new Push({ full: true, entries, digest }, true))
        }
        for (let i = 0; i < entries.length; i += maxPushEntries) {
          yield* sendPush(to, kind, new Push({ full: false, entries: entries.slice(i, i + maxPushEntries), digest }, true))
        }
        yield* sendDigestPull(to)
      })

    /** A delta to several peers, in frames of at most maxPushEntries. */
    const pushDelta = (targets: ReadonlyArray<HostPort>, kind: PushKind, entries: ReadonlyArray<Entry>) =>
      Effect.gen(function*() {
        if (targets.length === 0 || entries.length === 0) return
        const frames: Array<Push> = []
        for (let i = 0; i < entries.length; i += maxPushEntries) {
          // a delta does not describe the sender's whole state: no digest to compare with
          frames.push(new Push({ full: false, entries: entries.slice(i, i + maxPushEntries), digest: "" }, true))
        }
        for (const to of targets) for (const push of frames) yield* sendPush(to, kind, push)
      })

    // -------------------------------------------------------------- inbound

    const onPush = (from: HostPort, push: Push) =>
      Effect.gen(function*() {
        stats.pushesReceived++
        // a Push with a digest comes from anti-entropy; eager deltas carry none
        const changed = yield* store.merge(push.entries, { from, repair: push.digest !== "" })
        if (changed.length > 0) stats.pushesThatChanged++
        yield* Metric.increment(changed.length > 0 ? pushesChanged : pushesUnchanged)
        if (!push.full) return
        // The sender's whole state is now part of ours: if we still differ we hold more.
        const digest = yield* store.digest
        if (digest === push.digest) return
        const missing = yield* store.missingFrom(push.entries)
        if (missing.length === 0) return
        for (let i = 0; i < missing.length; i += maxPushEntries) {
          yield* sendPush(from, "pushback", new Push({ full: false, entries: missing.slice(i, i + maxPushEntries), digest }, true))
        }
      })

    const onMessage = (inbound: Inbound) =>
      Effect.gen(function*() {
        const { from, message } = inbound
        yield* peers.handle(inbound)
        yield* Metric.increment(messagesInByType[message._tag])
        const sender = from.gossipAddr
        if (sender === transport.self.gossipAddr) return
        switch (message._tag) {
          case "DigestPull": {
            const digest = yield* store.digest
            if (digest === message.digest) yield* transport.send(sender, new DigestAck({ digest }, true))
            else yield* sendFullState(sender, "sync")
            return
          }
          case "DigestAck":
            stats.digestAcksReceived++
            return yield* Metric.increment(digestAcks)
          case "Push":
            return yield* onPush(sender, message)
          default:
            return
        }
      })

    const inboundLoop = Effect.gen(function*() {
      while (true) {
        const batch: Chunk.Chunk<Inbound> = yield* Queue.takeBetween(transport.inbound, 1, inboundBatch)
        for (const inbound of batch) {
          yield* onMessage(inbound).pipe(
            Effect.catchAllCause((cause) =>
              Effect.logError(`Gossip: handling ${inbound.message._tag} from ${inbound.from.gossipAddr} failed`, cause)
            )
          )
        }
      }
    })

    // -------------------------------------------------------------- eager push

    const fanout = (alive: number) => Math.max(config.maxSyncPeers, Math.ceil(Math.log(alive + 1)) + 2)

    /**
     * Listens to the store's changes only while some peer is alive: a lone node spends
     * nothing per write on eager push (it cost 4.5 us of a 29 us durable POST, a fiber
     * wake-up per commit batch, only to find nobody to push to). What is written meanwhile
     * reaches the peers that come by anti-entropy: a joining or returning peer gets a
     * DigestPull at once (`membership events` below).
     */
    const eagerPusher = Effect.gen(function*() {
      const membership = yield* peers.events
      while (true) {
        // events seen before this look at the peers say nothing new
        yield* Queue.takeAll(membership)
        if ((yield* peers.alive).length === 0) {
          yield* Queue.take(membership)
          continue
        }
        yield* Effect.scoped(Effect.flatMap(store.changes, eagerLoop))
      }
    })

    /** Pushes the changes while some peer is alive; returns once none is. */
    const eagerLoop = (changes: Queue.Dequeue<Change>) =>
      Effect.gen(function*() {
        let seen = yield* store.version
        while (true) {
          const first = yield* Queue.take(changes)
          // An eager delta merged from a peer is not passed on in a small cluster: skip it
          // without waiting a push window (one timer per received push otherwise).
          if (
            first.origin._tag === "Remote" && !first.origin.repair && first.fromVersion === seen &&
            (yield* peers.alive).length <= directPushLimit
          ) {
            seen = first.toVersion
            continue
          }
          if (Duration.toMillis(config.pushWindow) > 0) yield* Effect.sleep(config.pushWindow)
          const batch = [first, ...(yield* Queue.takeAll(changes))]
          // CounterMap as a coalescer: each (name, replica) once, with its highest totals
          const local = new CounterMap()
          /** remote changes by the peer they came from (to forward, never back to it) */
          const remote = new Map<string, CounterMap>()
          /** the part of them learned by anti-entropy: forwarded in small clusters too */
          const repaired = new Map<string, CounterMap>()
          for (const change of batch) {
            if (change.toVersion <= seen) continue
            if (change.fromVersion > seen) {
              // notifications were lost (a slow loop): treat everything since as local news
              local.apply(yield* store.deltaSince(seen))
              seen = yield* store.version
              continue
            }
            seen = change.toVersion
            if (change.origin._tag === "Local") {
              local.apply(change.entries)
            } else {
              const key = change.origin.from ?? ""
              const into = change.origin.repair ? repaired : remote
              let c = into.get(key)
              if (c === undefined) into.set(key, c = new CounterMap())
              c.apply(change.entries)
            }
          }
          const alive = yield* peers.alive
          // nobody to push to: stop listening (see `eagerPusher`)
          if (alive.length === 0) return
          if (alive.length <= directPushLimit) {
            yield* pushDelta(alive, "eager", local.entries())
            for (const [from, c] of repaired) yield* pushDelta(alive.filter((a) => a !== from), "forward", c.entries())
            continue
          }
          const k = fanout(alive.length)
          if (local.size > 0) yield* pushDelta(yield* peers.pickAlive(k), "eager", local.entries())
          for (const [from, c] of remote) {
            const more = repaired.get(from)
            if (more !== undefined) c.apply(more.entries())
            repaired.delete(from)
            yield* pushDelta(yield* peers.pickAlive(k, new Set([from])), "forward", c.entries())
          }
          for (const [from, c] of repaired) {
            yield* pushDelta(yield* peers.pickAlive(k, new Set([from])), "forward", c.entries())
          }
        }
      })

    // -------------------------------------------------------------- periodic rounds

    const syncNow = Effect.gen(function*() {
      for (const to of yield* peers.pickAlive(config.maxSyncPeers)) yield* sendDigestPull(to)
    }).pipe(Effect.withSpan("Gossip.syncRound"))

    const fullSyncNow = Effect.gen(function*() {
      for (const to of yield* peers.pickAlive(config.maxSyncPeers)) yield* sendFullState(to, "full")
    }).pipe(Effect.withSpan("Gossip.fullSyncRound"))

    const every = (interval: Duration.Duration, effect: Effect.Effect<void>, name: string) =>
      Effect.sleep(interval).pipe(
        Effect.zipRight(effect.pipe(Effect.catchAllCause((cause) => Effect.logError(`Gossip: ${name} failed`, cause)))),
        Effect.forever,
        Effect.forkScoped
      )

    const guard = <A>(effect: Effect.Effect<A>, name: string) =>
      effect.pipe(
        Effect.catchAllCause((cause) => Effect.logError(`Gossip: ${name} stopped`, cause)),
        Effect.forkScoped
      )

    yield* guard(inboundLoop, "inbound loop")
    if (config.eagerPush) yield* guard(Effect.scoped(eagerPusher), "eager push")
    yield* every(config.syncInterval, syncNow, "anti-entropy round")
    yield* every(config.fullSyncInterval, fullSyncNow, "full sync round")
    const events = yield* peers.events
    yield* guard(
      Queue.take(events).pipe(
        Effect.flatMap((event) =>
          event._tag === "Joined" || event._tag === "Recovered" ? sendDigestPull(event.addr) : Effect.void
        ),
        Effect.forever
      ),
      "membership events"
    )

    // A (re)starting node catches up at once: the peers it already knows were added before
    // this loop subscribed to membership events.
    yield* syncNow.pipe(Effect.catchAllCause((cause) => Effect.logError("Gossip: first sync failed", cause)))

    return Gossip.of({
      syncNow,
      fullSyncNow,
      stats: Effect.sync(() => ({ ...stats, pushesSent: { ...stats.pushesSent } }))
    })
  })

export const layer = (
  options: GossipOptions = {}
): Layer.Layer<Gossip, never, NodeConfig | CounterStore | PeerManager | Transport> =>
  Layer.scoped(Gossip, make(options))
