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
export interface Queued {
  readonly message: Message
  readonly stamp: number
}

/** What `offer` did with a message. */
export type OfferResult = "queued" | "coalesced" | "dropped"

export class SendQueue {
  private items: Array<Queued> = []
  private head = 0
  /** messages removed or merged away by the overflow policy, and messages refused */
  dropped = 0

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`SendQueue capacity must be a positive integer, got ${capacity}`)
    }
  }

  get length(): number {
    return this.items.length - this.head
  }

  /** Queues `message`, applying the overflow policy described above when full. */
  offer(message: Message, stamp = 0): OfferResult {
    if (this.length < this.capacity) {
      this.items.push({ message, stamp })
      return "queued"
    }
    this.compact()
    switch (message._tag) {
      case "Push": {
        if (message.full) {
          const before = this.items.length
          this.items = this.items.filter((q) => q.message._tag !== "Push")
          this.dropped += before - this.items.length
          break
        }
        for (let i = this.items.length - 1; i >= 0; i--) {
          const q = this.items[i]!
          if (q.message._tag === "Push") {
            const merged = new Push({
              full: false,
              entries: fromEntries([...q.message.entries, ...message.entries]).entries(),
              digest: message.digest
            })
            this.items[i] = { message: merged, stamp: q.stamp }
            return "coalesced"
          }
        }
        break
      }
      case "DigestPull":
      case "DigestAck":
      case "PeerList": {
        const tag = message._tag
        const before = this.items.length
        this.items = this.items.filter((q) => q.message._tag !== tag)
        this.dropped += before - this.items.length
        break
      }
      case "Hello": {
        const i = this.items.findIndex((q) => q.message._tag !== "Hello")
        if (i >= 0) {
          this.items.splice(i, 1)
          this.dropped++
        }
        this.items.push({ message, stamp })
        return "queued"
      }
      case "Ping":
      case "PingAck":
        break
    }
    if (this.length < this.capacity) {
      this.items.push({ message, stamp })
      return "queued"
    }
    this.dropped++
    return "dropped"
  }

  /** The oldest queued message, or undefined. */
  peek(): Queued | undefined {
    return this.items[this.head]
  }

  shift(): Queued | undefined {
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
  takeUpTo(max: number): Array<Queued> {
    const n = Math.min(max, this.length)
    const out = this.items.slice(this.head, this.head + n)
    this.head += n
    if (this.head >= this.items.length) {
      this.items = []
      this.head = 0
    }
    return out
  }

  /** Puts messages taken but not sent back at the front, in order. */
  unshiftAll(items: ReadonlyArray<Queued>): void {
    this.compact()
    this.items = [...items, ...this.items]
  }

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
