/**
 * An in-process network for tests and `dcounter simulate`: nodes register an address and an
 * inbox, and send each other messages through links with faults that tests control.
 *
 * Model (what the tests rely on):
 * - A link is the ordered path from one address to another. Messages on a link are
 *   delivered in the order they were sent, each after the network's `delay` (plus up to
 *   `jitter`, never overtaking an earlier message), timed with `Effect.sleep`, so under
 *   `TestClock` nothing moves until the test adjusts the clock.
 * - A message is delivered only if the link is up both when it is sent and when it
 *   arrives (the receiver is registered, neither end is isolated, both are in the same
 *   partition group); otherwise it is lost, like a packet on a cut wire, and counted.
 *   A message sent while the link is up is also lost with the drop probability, decided
 *   by a random generator seeded from `options.seed`, so runs are reproducible.
 * - Each link has a bounded queue with the overflow policy of `SendQueue`; the receiver's
 *   inbox is bounded too and a full inbox holds its links back (like TCP flow control).
 * - The first message of a connection arrives after a `Hello` from the sender, like the
 *   handshake of `TransportTcp`. A new connection starts when either end registers again
 *   (a restart) or after the link was found down.
 * - A node that is not registered (its scope closed) receives nothing. Registering an
 *   address again (a restart) works; the newest registration of an address wins.
 */
import type { Duration, Queue, Scope } from "effect"
import { Clock, Context, Duration as D, Effect, FiberSet, Layer, Random } from "effect"
import type { Hello, HostPort, Message } from "../protocol/Message.js"
import { SendQueue } from "./SendQueue.js"
import type { ConnectionState, Inbound } from "./Transport.js"

export interface MemoryNetworkOptions {
  /** seed of the random generator behind drops and jitter (default 0x5eed) */
  readonly seed?: number | string
  /** probability in [0, 1] that a message is lost (default 0) */
  readonly dropProbability?: number
  /** latency of every message (default 0) */
  readonly delay?: Duration.DurationInput
  /** extra random latency in [0, jitter) per message (default 0) */
  readonly jitter?: Duration.DurationInput
  /** capacity of each link's queue (default 1024) */
  readonly linkQueueSize?: number
}

export interface MemoryNetworkStats {
  readonly sent: number
  readonly delivered: number
  /** lost to the drop probability */
  readonly dropped: number
  /** lost because the link was down (partition, isolation, receiver not registered) */
  readonly unreachable: number
  /** dropped or coalesced by a full link queue */
  readonly overflowed: number
}

/** Frame counts of one registered address, for `Transport.stats`. */
export interface NodeCounts {
  readonly framesIn: number
  readonly framesOut: number
}

export class MemoryNetwork extends Context.Tag("dcounter/MemoryNetwork")<
  MemoryNetwork,
  {
    /**
     * Registers `self.gossipAddr` with its inbox for the lifetime of the scope; closing
     * the scope unregisters it (messages to it are lost from then on).
     */
    readonly register: (self: Hello, inbox: Queue.Enqueue<Inbound>) => Effect.Effect<void, never, Scope.Scope>
    /** Sends on the link `from -> to`; false if the link queue dropped it (see SendQueue). */
    readonly send: (from: HostPort, to: HostPort, message: Message) => Effect.Effect<boolean>
    /** Empties the link `from -> to` and forgets its counters. */
    readonly forget: (from: HostPort, to: HostPort) => Effect.Effect<void>
    /** The state of every link from `from`, as `Transport.connections` reports it. */
    readonly links: (from: HostPort) => Effect.Effect<ReadonlyArray<ConnectionState>>
    readonly counts: (addr: HostPort) => Effect.Effect<NodeCounts>
    /**
     * Splits the network: addresses in different groups cannot reach each other. Addresses
     * not listed form one more group together. Replaces any earlier partition.
     */
    readonly partition: (groups: ReadonlyArray<ReadonlyArray<HostPort>>) => Effect.Effect<void>
    /** Cuts `addr` off from every other address until `heal`. */
    readonly isolate: (addr: HostPort) => Effect.Effect<void>
    /** Removes every partition and isolation. Drop probability and delay stay. */
    readonly heal: Effect.Effect<void>
    readonly setDropProbability: (p: number) => Effect.Effect<void>
    readonly setDelay: (delay: Duration.DurationInput, jitter?: Duration.DurationInput) => Effect.Effect<void>
    /** Whether a message from `from` to `to` would get through now (ignoring drops). */
    readonly reachable: (from: HostPort, to: HostPort) => Effect.Effect<boolean>
    readonly stats: Effect.Effect<MemoryNetworkStats>
  }
>() {
  static readonly layer = (options: MemoryNetworkOptions = {}): Layer.Layer<MemoryNetwork> => Layer.scoped(MemoryNetwork, make(options))
}

interface Registration {
  readonly hello: Hello
  readonly inbox: Queue.Enqueue<Inbound>
  readonly generation: number
  framesIn: number
  framesOut: number
}

interface Link {
  readonly from: HostPort
  readonly to: HostPort
  readonly queue: SendQueue
  readonly wake: Effect.Latch
  /** the connection (sender gen / receiver gen / epoch) that already got its Hello */
  connection: string | undefined
  epoch: number
  /** delivery time of the last message taken, so jitter never reorders */
  lastDeliverAt: number
  up: boolean
  since: number
  lastError: string | undefined
  sent: number
  dropped: number
}

const clampProbability = (p: number): number => (Number.isFinite(p) ? Math.min(1, Math.max(0, p)) : 0)

export const make = (options: MemoryNetworkOptions = {}) =>
  Effect.gen(function* () {
    const random = Random.make(options.seed ?? 0x5eed)
    const fibers = yield* FiberSet.make()
    const linkQueueSize = options.linkQueueSize ?? 1024
    const nodes = new Map<HostPort, Registration>()
    const links = new Map<string, Link>()
    const isolated = new Set<HostPort>()
    let groups = new Map<HostPort, number>()
    let dropProbability = clampProbability(options.dropProbability ?? 0)
    let delayMillis = D.toMillis(options.delay ?? 0)
    let jitterMillis = D.toMillis(options.jitter ?? 0)
    let generations = 0
    const totals = { sent: 0, delivered: 0, dropped: 0, unreachable: 0, overflowed: 0 }

    const isReachable = (from: HostPort, to: HostPort): boolean => {
      if (!nodes.has(to) || !nodes.has(from)) return false
      if (from === to) return true
      if (isolated.has(from) || isolated.has(to)) return false
      return (groups.get(from) ?? -1) === (groups.get(to) ?? -1)
    }

    const whyUnreachable = (from: HostPort, to: HostPort): string =>
      !nodes.has(to)
        ? `${to} is not listening`
        : isolated.has(from) || isolated.has(to)
        ? "isolated"
        : "partitioned"

    const markDown = (link: Link, now: number, why: string) => {
      if (link.up) {
        link.up = false
        link.since = now
        link.epoch++
      }
      link.lastError = why
      link.connection = undefined
    }

    const markUp = (link: Link, now: number) => {
      if (!link.up) {
        link.up = true
        link.since = now
      }
    }

    /** Offers to an inbox that may be shut down meanwhile (its node stopped): then lost. */
    const offerTo = (inbox: Queue.Enqueue<Inbound>, inbound: Inbound) =>
      Effect.exit(inbox.offer(inbound)).pipe(Effect.map((exit) => exit._tag === "Success"))

    const deliverOne = (link: Link, message: Message) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const sender = nodes.get(link.from)
        const receiver = nodes.get(link.to)
        if (sender === undefined || receiver === undefined || !isReachable(link.from, link.to)) {
          totals.unreachable++
          markDown(link, now, whyUnreachable(link.from, link.to))
          return
        }
        markUp(link, now)
        const connection = `${sender.generation}/${receiver.generation}/${link.epoch}`
        if (link.connection !== connection && message._tag !== "Hello") {
          if (!(yield* offerTo(receiver.inbox, { from: sender.hello, message: sender.hello }))) return
          receiver.framesIn++
        }
        link.connection = connection
        if (!(yield* offerTo(receiver.inbox, { from: sender.hello, message }))) return
        receiver.framesIn++
        totals.delivered++
      })

    const runLink = (link: Link) =>
      Effect.gen(function* () {
        while (true) {
          const next = link.queue.shift()
          if (next === undefined) {
            link.wake.unsafeClose()
            yield* link.wake.await
            continue
          }
          const now = yield* Clock.currentTimeMillis
          if (next.stamp > now) yield* Effect.sleep(D.millis(next.stamp - now))
          yield* deliverOne(link, next.message)
        }
      })

    const linkOf = (from: HostPort, to: HostPort, now: number) =>
      Effect.gen(function* () {
        const key = `${from}\u0000${to}`
        const existing = links.get(key)
        if (existing !== undefined) return existing
        const link: Link = {
          from,
          to,
          queue: SendQueue.gossip(linkQueueSize),
          wake: yield* Effect.makeLatch(false),
          connection: undefined,
          epoch: 0,
          lastDeliverAt: 0,
          up: true,
          since: now,
          lastError: undefined,
          sent: 0,
          dropped: 0
        }
        links.set(key, link)
        yield* FiberSet.run(fibers, runLink(link))
        return link
      })

    const register = (hello: Hello, inbox: Queue.Enqueue<Inbound>) =>
      Effect.gen(function* () {
        const addr = hello.gossipAddr
        const registration: Registration = { hello, inbox, generation: ++generations, framesIn: 0, framesOut: 0 }
        if (nodes.has(addr)) {
          yield* Effect.logWarning(`MemoryNetwork: ${addr} registered again; the newest registration wins`)
        }
        nodes.set(addr, registration)
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            if (nodes.get(addr) === registration) nodes.delete(addr)
            // what the stopped node had queued is gone with it
            for (const link of links.values()) if (link.from === addr) link.queue.clear()
          })
        )
      })

    const send = (from: HostPort, to: HostPort, message: Message) =>
      Effect.gen(function* () {
        const sender = nodes.get(from)
        if (sender === undefined) return false
        const now = yield* Clock.currentTimeMillis
        const link = yield* linkOf(from, to, now)
        totals.sent++
        sender.framesOut++
        if (!isReachable(from, to)) {
          totals.unreachable++
          markDown(link, now, whyUnreachable(from, to))
          return true
        }
        if (dropProbability > 0 && (yield* random.next) < dropProbability) {
          totals.dropped++
          return true
        }
        const jitter = jitterMillis > 0 ? Math.floor((yield* random.next) * jitterMillis) : 0
        const deliverAt = Math.max(now + delayMillis + jitter, link.lastDeliverAt)
        link.lastDeliverAt = deliverAt
        const result = link.queue.offer(message, deliverAt)
        if (result === "dropped" || result === "coalesced") totals.overflowed++
        link.dropped = link.queue.dropped
        if (result === "dropped") return false
        link.sent++
        link.wake.unsafeOpen()
        return true
      })

    const forget = (from: HostPort, to: HostPort) =>
      Effect.sync(() => {
        const link = links.get(`${from}\u0000${to}`)
        if (link === undefined) return
        link.queue.clear()
        link.queue.dropped = 0
        link.sent = 0
        link.dropped = 0
        link.lastError = undefined
        link.connection = undefined
        link.epoch++
      })

    const linksFrom = (from: HostPort) =>
      Effect.sync(() => {
        const out: Array<ConnectionState> = []
        for (const link of links.values()) {
          if (link.from !== from) continue
          const up = isReachable(from, link.to)
          out.push({
            addr: link.to,
            status: up ? "connected" : "backoff",
            since: link.since,
            lastError: up ? link.lastError : whyUnreachable(from, link.to),
            queued: link.queue.length,
            sent: link.sent,
            dropped: link.dropped
          })
        }
        return out
      })

    return MemoryNetwork.of({
      register,
      send,
      forget,
      links: linksFrom,
      counts: (addr) =>
        Effect.sync(() => {
          const r = nodes.get(addr)
          return { framesIn: r?.framesIn ?? 0, framesOut: r?.framesOut ?? 0 }
        }),
      partition: (list) =>
        Effect.sync(() => {
          const next = new Map<HostPort, number>()
          list.forEach((group, i) => group.forEach((addr) => next.set(addr, i)))
          groups = next
        }),
      isolate: (addr) => Effect.sync(() => void isolated.add(addr)),
      heal: Effect.sync(() => {
        groups = new Map()
        isolated.clear()
      }),
      setDropProbability: (p) => Effect.sync(() => void (dropProbability = clampProbability(p))),
      setDelay: (delay, jitter = 0) =>
        Effect.sync(() => {
          delayMillis = D.toMillis(delay)
          jitterMillis = D.toMillis(jitter)
        }),
      reachable: (from, to) => Effect.sync(() => isReachable(from, to)),
      stats: Effect.sync(() => ({ ...totals }))
    })
  })
