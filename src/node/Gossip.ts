/**
 * The gossip loop: how a node's state reaches every other node.
 *
 * 1. Eager delta push. Every change to the local state is published by `CounterStore`;
 *    the pusher pushes the delta (only the entries that grew, coalesced) to alive peers.
 *    The first change after a quiet `pushWindow` goes out at once; while changes keep
 *    coming, at most one push leaves per window, carrying everything of the window. A
 *    push costs both ends a wake-up, a frame and a merge whatever it carries, so under
 *    load this is what keeps the cost of gossip a fraction of the cost of a write.
 *    - up to `directPushLimit` alive peers (64), a LOCAL write goes straight to ALL of
 *      them. n-1 messages is the least any scheme can use to tell n-1 peers, and it takes
 *      one hop with no randomness: a 5-node cluster converges as soon as the four pushes
 *      land. Gossip-style fan-out (push to k, receivers forward to k) needs ~n*k messages
 *      and, with forward-once and k = 2, leaves about 20% of nodes uninformed
 *      (s = e^(-k(1-s))) until the next anti-entropy round.
 *    - beyond that, sending n-1 messages per batch from the writer is too much for one
 *      node, so the delta goes to k = max(max-sync-peers, ceil(ln n) + 2) random alive
 *      peers and every receiver whose state it CHANGED forwards the changed entries once
 *      to k others (never back to the peer it came from). Forwarding only on change makes
 *      the flood stop by itself; fan-out ln n + c informs all n nodes with probability
 *      about exp(-e^-c) (Kermarrec et al.), and anti-entropy repairs the rest.
 * 2. Anti-entropy every `syncInterval` (and `fullSyncInterval`): a DigestPull (digest of
 *    the whole state) to up to `maxSyncPeers` random alive peers. It carries the asker's
 *    watermark for the receiver: "I hold everything you held at version v of your
 *    incarnation i" (versions restart when a process does, hence the incarnation). The
 *    receiver answers DigestAck with its current watermark if the digests are equal;
 *    otherwise the entries that changed since v (`deltaSince`), or its whole state when
 *    the asker holds no watermark of this incarnation (it is new, restarted, or the
 *    receiver did), in parts of at most `maxPushEntries` that all name the receiver's
 *    version at the time. Once every part is in, the asker's watermark moves there; a
 *    part lost on the way leaves it where it was, and the next round asks again from
 *    there. The receiver also pulls back (a DigestPull marked `reply`, answered but never
 *    pulled back again), so one exchange repairs BOTH sides and every exchange ends.
 *    So repair traffic is proportional to the difference: equal states cost a digest each
 *    way, and two nodes that differ by a few entries ship a few entries, never the state
 *    (the delta-state CRDT scheme of Almeida, Shoker and Baquero; Akka's delta
 *    propagation works the same way).
 *    What anti-entropy teaches a node is news the eager pushes missed (a healed partition,
 *    a restarted node), so the rest of the cluster probably lacks it too: the node
 *    forwards those changed entries once as an eager delta to the alive peers (all in a
 *    small cluster, k in a large one), but not back to where they came from. Anti-entropy
 *    pushes carry the sender's digest and eager deltas an empty one, which is how a
 *    receiver tells them apart; a forwarded delta is never forwarded again in a small
 *    cluster, so a repair costs one extra wave.
 * 3. A peer that joins, or comes back after being suspect or dead (a healed partition, a
 *    restart), gets a DigestPull at once instead of waiting for the next round.
 * Peer exchange (PeerList) and failure detection live in PeerManager; this module's
 * inbound loop feeds every message to it first.
 */
import type { Chunk } from "effect"
import { Clock, Context, Duration, Effect, Layer, Metric, Queue } from "effect"
import { NodeConfig } from "../config/NodeConfig.js"
import { CounterMap } from "../crdt/CounterMap.js"
import type { Entry } from "../crdt/Entry.js"
import type { ReplicaId } from "../crdt/ReplicaId.js"
import { PeerManager } from "./PeerManager.js"
import type { HostPort, Message } from "../protocol/Message.js"
import { Covers, DigestAck, DigestPull, Push, SyncPart, Watermark } from "../protocol/Message.js"
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

export type PushKind = "eager" | "forward" | "sync" | "full"

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
  description: "Push messages sent, by kind (eager, forward, sync: an anti-entropy delta, full: an anti-entropy full state)",
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
  full: Metric.tagged(pushesSent, "kind", "full")
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
    const windowMillis = Duration.toMillis(config.pushWindow)

    const stats = {
      pushesSent: { eager: 0, forward: 0, sync: 0, full: 0 } as Record<PushKind, number>,
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

    /** Per peer: how much of its history we hold (set by anti-entropy answers and acks). */
    const watermarks = new Map<HostPort, Watermark>()
    /** Per peer: the parts of its anti-entropy answer received so far, since when (ms). */
    const assembling = new Map<HostPort, { readonly upTo: Watermark; readonly got: Set<number>; readonly since: number }>()
    /**
     * A peer whose answer is still arriving is not asked again before `answerTimeout`: a
     * whole state can take longer than a sync interval to arrive, and asking again would
     * have it sent again (and again) while the first is on its way.
     */
    const answerTimeout = Math.max(30_000, 10 * Duration.toMillis(config.syncInterval))

    /**
     * Per asker (address and incarnation): when a whole state was last sent to it. Asked
     * again for it before `answerTimeout` (a start, a join and a recovery can all ask at
     * once, and a whole state of a million counters takes longer than a sync interval to
     * arrive), the one on its way is enough: it is not queued again.
     */
    const wholeSent = new Map<string, number>()

    const here = (version: number) => new Watermark({ incarnation: store.incarnation, version }, true)

    const sendDigestPull = (to: HostPort, reply = false) =>
      Effect.gen(function*() {
        const pending = assembling.get(to)
        if (pending !== undefined && (yield* Clock.currentTimeMillis) - pending.since < answerTimeout) return
        const [digest, size] = yield* Effect.all([store.digest, store.size])
        const since = watermarks.get(to)
        stats.digestPullsSent++
        yield* transport.send(
          to,
          new DigestPull({
            digest,
            entries: size,
            incarnation: store.incarnation,
            ...(since !== undefined ? { since } : {}),
            ...(reply ? { reply } : {})
          }, true)
        )
        yield* Metric.increment(digestsSent)
      })

    /**
     * Answers a DigestPull whose digest differs from ours with what changed since the
     * asker's watermark: the whole state only when the asker has none of this incarnation
     * (it is new, restarted, or we did). Always at least one part, so the asker's
     * watermark moves even when it holds everything already.
     */
    const sendSyncAnswer = (to: HostPort, asker: ReplicaId, since: Watermark | undefined, askerIncarnation?: string) =>
      Effect.gen(function*() {
        // the version first: entries that change in between make the answer hold more than
        // the watermark says, never less
        const version = yield* store.version
        const from = since !== undefined && since.incarnation === store.incarnation && since.version <= version
          ? since.version
          : 0
        const digest = yield* store.digest
        const upTo = here(version)
        // the asker's own entries are never behind ours: its writes are durable before
        // anyone sees them, and a node that lost them comes back as a new replica
        const notAsker = (e: Entry) => e[1] !== asker
        const send = (part: number, parts: number, entries: ReadonlyArray<Entry>) =>
          sendPush(
            to,
            from === 0 ? "full" : "sync",
            new Push({ full: from === 0 && parts === 1, entries, digest, sync: new SyncPart({ upTo, part, parts }, true) }, true)
          )
        if (from > 0) {
          const entries = (yield* store.deltaSince(from)).filter(notAsker)
          const parts = Math.max(1, Math.ceil(entries.length / maxPushEntries))
          for (let part = 0; part < parts; part++) {
            yield* send(part, parts, entries.slice(part * maxPushEntries, (part + 1) * maxPushEntries))
          }
          return
        }
        if (askerIncarnation !== undefined) {
          const key = `${to} ${askerIncarnation}`
          const now = yield* Clock.currentTimeMillis
          const last = wholeSent.get(key)
          if (last !== undefined && now - last < answerTimeout) return
          for (const [k, t] of wholeSent) if (now - t >= answerTimeout) wholeSent.delete(k)
          wholeSent.set(key, now)
        }
        // the whole state, walked in chunks (no copy of all of it): every entry that existed
        // at `version` is among the first `size`, with totals at least as high as then
        const size = yield* store.size
        const parts = Math.max(1, Math.ceil(size / maxPushEntries))
        for (let part = 0; part < parts; part++) {
          yield* send(part, parts, (yield* store.entriesAt(part * maxPushEntries, maxPushEntries)).filter(notAsker))
        }
      })

    /** A delta to several peers, in frames of at most maxPushEntries. */
    const pushDelta = (
      targets: ReadonlyArray<HostPort>,
      kind: PushKind,
      entries: ReadonlyArray<Entry>,
      covers?: Covers | undefined
    ) =>
      Effect.gen(function*() {
        if (targets.length === 0 || entries.length === 0) return
        const frames: Array<Push> = []
        for (let i = 0; i < entries.length; i += maxPushEntries) {
          // a delta does not describe the sender's whole state: no digest to compare with.
          // It covers a stretch of history only when it is one frame (frames can be lost).
          const whole = covers !== undefined && entries.length <= maxPushEntries ? { covers } : {}
          frames.push(new Push({ full: false, entries: entries.slice(i, i + maxPushEntries), digest: "", ...whole }, true))
        }
        for (const to of targets) for (const push of frames) yield* sendPush(to, kind, push)
      })

    /** Raises the watermark of `from` to `upTo` (a new incarnation replaces the old one). */
    const advance = (from: HostPort, upTo: Watermark) => {
      const known = watermarks.get(from)
      if (known === undefined || known.incarnation !== upTo.incarnation || known.version < upTo.version) {
        watermarks.set(from, upTo)
      }
    }

    /** Counts the parts of an anti-entropy answer; all of them in: the watermark moves. */
    const received = (from: HostPort, sync: SyncPart, now: number) => {
      if (sync.part >= sync.parts) return
      let a = assembling.get(from)
      if (a === undefined || a.upTo.incarnation !== sync.upTo.incarnation || a.upTo.version !== sync.upTo.version) {
        a = { upTo: sync.upTo, got: new Set(), since: now }
        assembling.set(from, a)
      }
      a.got.add(sync.part)
      if (a.got.size < sync.parts) return
      assembling.delete(from)
      advance(from, a.upTo)
    }

    // -------------------------------------------------------------- inbound

    const onPush = (from: HostPort, push: Push) =>
      Effect.gen(function*() {
        stats.pushesReceived++
        // A Push with a digest comes from anti-entropy, eager deltas carry none. What a
        // delta answer teaches is news the eager pushes missed, forwarded once (see 2.).
        // A whole state, sent because this node held no watermark of the sender (it is new
        // or restarted), is what the others hold already; the one part that may be news,
        // a restarted sender's own writes, the sender announces itself (`announceOwn`).
        const wholeState = push.sync !== undefined && watermarks.get(from)?.incarnation !== push.sync.upTo.incarnation
        const changed = yield* store.merge(push.entries, { from, repair: push.digest !== "" && !wholeState })
        if (changed.length > 0) stats.pushesThatChanged++
        yield* Metric.increment(changed.length > 0 ? pushesChanged : pushesUnchanged)
        if (push.sync !== undefined) received(from, push.sync, yield* Clock.currentTimeMillis)
        if (push.covers !== undefined) {
          const { covers } = push
          const known = watermarks.get(from)
          if (known !== undefined && known.incarnation === covers.incarnation && known.version >= covers.from) {
            advance(from, new Watermark({ incarnation: covers.incarnation, version: covers.to }, true))
          }
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
            const version = yield* store.version
            const digest = yield* store.digest
            if (digest === message.digest) {
              return yield* transport.send(sender, new DigestAck({ digest, at: here(version) }, true))
            }
            yield* sendSyncAnswer(sender, from.replicaId, message.since, message.incarnation)
            // and the other way round: the asker answers with what we lack
            if (message.reply !== true) yield* sendDigestPull(sender, true)
            return
          }
          case "DigestAck":
            stats.digestAcksReceived++
            if (message.at !== undefined) advance(sender, message.at)
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
              Effect.logError(`Gossip: handling ${inbound.message._tag} from ${inbound.from.gossipAddr} failed`, cause).pipe(
                Effect.annotateLogs({ peer: inbound.from.gossipAddr, peerId: inbound.from.replicaId })
              )
            )
          )
        }
      }
    })

    // -------------------------------------------------------------- eager push

    const fanout = (alive: number) => Math.max(config.maxSyncPeers, Math.ceil(Math.log(alive + 1)) + 2)

    /**
     * Listens to the store's changes only while some peer is alive: a lone node spends
     * nothing per write on eager push (otherwise a fiber wakes up per commit batch, only to
     * find nobody to push to, on the path of every durable POST). What is written meanwhile
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

    /**
     * Once per start, the first time a peer is alive: this node's own entries, to every
     * alive peer. After a crash they may hold writes that were made durable and answered
     * but never pushed; nobody else can know they are news.
     */
    let announced = false
    const announceOwn = (alive: ReadonlyArray<HostPort>) =>
      Effect.gen(function*() {
        if (announced) return
        announced = true
        const size = yield* store.size
        for (let at = 0; at < size; at += maxPushEntries) {
          const own = (yield* store.entriesAt(at, maxPushEntries)).filter((e) => e[1] === store.replicaId)
          yield* pushDelta(alive, "eager", own)
        }
      })

    /** Pushes the changes while some peer is alive; returns once none is. */
    const eagerLoop = (changes: Queue.Dequeue<Change>) =>
      Effect.gen(function*() {
        let seen = yield* store.version
        yield* announceOwn(yield* peers.alive)
        let lastPush = Number.NEGATIVE_INFINITY
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
          // Leading edge: the first change after a quiet window goes out at once (a lone
          // write converges in one hop); under load, at most one push per window, so the
          // cost of a push on both ends is shared by every write of the window.
          const wait = lastPush + windowMillis - (yield* Clock.currentTimeMillis)
          if (wait > 0) yield* Effect.sleep(Duration.millis(wait))
          lastPush = yield* Clock.currentTimeMillis
          const batch = [first, ...(yield* Queue.takeAll(changes))]
          // CounterMap as a coalescer: each (name, replica) once, with its highest totals
          const local = new CounterMap()
          /** remote changes by the peer they came from (to forward, never back to it) */
          const remote = new Map<string, CounterMap>()
          /** the part of them learned by anti-entropy: forwarded in small clusters too */
          const repaired = new Map<string, CounterMap>()
          /** whether `local` holds every change from `coverFrom` to `seen` (see `Covers`) */
          const coverFrom = seen
          let whole = true
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
              whole = false
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
          const covers = whole && seen > coverFrom
            ? new Covers({ incarnation: store.incarnation, from: coverFrom, to: seen }, true)
            : undefined
          if (alive.length <= directPushLimit) {
            yield* pushDelta(alive, "eager", local.entries(), covers)
            for (const [from, c] of repaired) yield* pushDelta(alive.filter((a) => a !== from), "forward", c.entries())
            continue
          }
          const k = fanout(alive.length)
          if (local.size > 0) yield* pushDelta(yield* peers.pickAlive(k), "eager", local.entries(), covers)
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

    /**
     * The slower second round of the seed: with watermarks it is one more anti-entropy
     * round (full state goes only to a peer that holds none of our history).
     */
    const fullSyncNow = Effect.gen(function*() {
      for (const to of yield* peers.pickAlive(config.maxSyncPeers)) yield* sendDigestPull(to)
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
        Effect.flatMap((event) => {
          if (event._tag === "Removed") {
            watermarks.delete(event.addr)
            assembling.delete(event.addr)
          }
          return event._tag === "Joined" || event._tag === "Recovered" ? sendDigestPull(event.addr) : Effect.void
        }),
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
