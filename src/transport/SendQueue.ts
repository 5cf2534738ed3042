/**
 * The bounded outbound queue of one peer, shared by `TransportTcp` and the in-memory
 * `Network`, with the overflow policy of the transport port.
 *
 * While there is room, messages are queued in order. When the queue is full:
 *
 * 1. Superseded state messages are coalesced:
 *    - a full `Push` replaces every queued `Push` (a full state is pointwise >= every
 *      earlier state and delta of the same sender: PN-counter entries only grow);
 *    - a delta `Push` is merged (pointwise max, `CounterMap`) into the newest queued
 *      `Push`, which loses its `full` flag and takes the newer digest;
 *    - a `DigestPull`, `DigestAck` or `PeerList` replaces queued messages of the same kind
 *      (only the newest digest or peer list means anything).
 * 2. If that freed nothing, the new message is dropped and `offer` says so; a `Hello`
 *    is never dropped: it evicts the oldest message that is not a Hello instead.
 *
 * Why this is safe: every gossip message is state of a state-based CRDT (or a probe).
 * Merge is commutative, associative and idempotent, so merging two pushes, delivering
 * newer state earlier, or losing a push changes nothing but how soon peers converge; a lost
 * push or digest exchange is exactly a lost gossip round, which the periodic anti-entropy
 * (DigestPull -> full Push) repairs. A lost Ping looks like a lost packet to the failure
 * detector, which tolerates `--max-fails` of them.
 */
import { fromEntries } from "../crdt/CounterMap.js"
import type { Message } from "../protocol/Message.js"
import { Push } from "../protocol/Message.js"

/** One queued message and a number its user attaches (the memory network: delivery time). */
export interface Queued<M = Message> {
  readonly message: M
  readonly stamp: number
}

/** What `offer` did with a message. */
export type OfferResult = "queued" | "coalesced" | "dropped"

/**
 * What to do with `message` when the queue is full. The policy may remove or replace
 * queued items in place (removals count as dropped), then answers:
 * - "coalesced": the message was merged into a queued one;
 * - "force": queue it even if that exceeds the capacity (a Hello);
 * - "append": queue it if the policy made room, else drop it.
 */
export type OverflowPolicy<M> = (items: Array<Queued<M>>, message: M) => "coalesced" | "force" | "append"

/** The gossip policy described at the top of this module. */
export const gossipOverflow: OverflowPolicy<Message> = (items, message) => {
  const removeAll = (drop: (m: Message) => boolean) => {
    let w = 0
    for (let r = 0; r < items.length; r++) if (!drop(items[r]!.message)) items[w++] = items[r]!
    items.length = w
  }
  switch (message._tag) {
    case "Push": {
      if (message.full) {
        removeAll((m) => m._tag === "Push")
        return "append"
      }
      for (let i = items.length - 1; i >= 0; i--) {
        const q = items[i]!
        if (q.message._tag === "Push") {
          const merged = new Push(
            {
              full: false,
              entries: fromEntries([...q.message.entries, ...message.entries]).entries(),
              digest: message.digest
            },
            true
          )
          items[i] = { message: merged, stamp: q.stamp }
          return "coalesced"
        }
      }
      return "append"
    }
    case "DigestPull":
    case "DigestAck":
    case "PeerList": {
      const tag = message._tag
      removeAll((m) => m._tag === tag)
      return "append"
    }
    case "Hello": {
      const i = items.findIndex((q) => q.message._tag !== "Hello")
      if (i >= 0) items.splice(i, 1)
      return "force"
    }
    case "Ping":
    case "PingAck":
      return "append"
  }
}

/** No coalescing: when full, the new message is dropped. */
export const dropNewest: OverflowPolicy<unknown> = () => "append"

export class SendQueue<M = Message> {
  private items: Array<Queued<M>> = []
  private head = 0
  /** messages removed or merged away by the overflow policy, and messages refused */
  dropped = 0

  constructor(
    readonly capacity: number,
    private readonly overflow: OverflowPolicy<M>
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`SendQueue capacity must be a positive integer, got ${capacity}`)
    }
  }

  /** A queue of gossip messages with the gossip overflow policy. */
  static gossip(capacity: number): SendQueue<Message> {
    return new SendQueue(capacity, gossipOverflow)
  }

  get length(): number {
    return this.items.length - this.head
  }

  /** Queues `message`, applying the overflow policy when full. */
  offer(message: M, stamp = 0): OfferResult {
    if (this.length < this.capacity) {
      this.items.push({ message, stamp })
      return "queued"
    }
    this.compact()
    const before = this.items.length
    const verdict = this.overflow(this.items, message)
    this.dropped += Math.max(0, before - this.items.length)
    if (verdict === "coalesced") return "coalesced"
    if (verdict === "force" || this.items.length < this.capacity) {
      this.items.push({ message, stamp })
      return "queued"
    }
    this.dropped++
    return "dropped"
  }

  /** The oldest queued message, or undefined. */
  peek(): Queued<M> | undefined {
    return this.items[this.head]
  }

  shift(): Queued<M> | undefined {
    if (this.head >= this.items.length) return undefined
    const q = this.items[this.head]!
    this.head++
    if (this.head >= this.items.length) {
      this.items = []
      this.head = 0
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.compact()
    }
    return q
  }

  /** Takes up to `max` messages, oldest first. */
  takeUpTo(max: number): Array<Queued<M>> {
    const n = Math.min(max, this.length)
    const out = this.items.slice(this.head, this.head + n)
    this.head += n
    if (this.head >= this.items.length) {
      this.items = []
      this.head = 0
    }
    return out
  }

  /** Empties the queue; returns how many messages were in it. */
  clear(): number {
    const n = this.length
    this.items = []
    this.head = 0
    return n
  }

  private compact(): void {
    if (this.head > 0) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
  }
}
