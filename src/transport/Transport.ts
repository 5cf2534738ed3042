/**
 * The gossip transport port. A node sends messages to peers by gossip address and reads
 * what peers send from one bounded queue, in order per connection. Implementations:
 * `TransportTcp.layer` (persistent TCP connections, see TransportTcp.ts) and
 * `TransportMemory.layer` over the in-process `MemoryNetwork` (see MemoryNetwork.ts) for tests and
 * `dcounter simulate`.
 */
import type { Effect, Queue } from "effect"
import { Context, Data } from "effect"
import type { Hello, HostPort, Message } from "../protocol/Message.js"

/** A message received from a peer, with the identity it announced in its Hello. */
export interface Inbound {
  readonly from: Hello
  readonly message: Message
}

export type ConnectionStatus = "connecting" | "connected" | "backoff"

/** The state of the outbound connection to one peer. */
export interface ConnectionState {
  readonly addr: HostPort
  readonly status: ConnectionStatus
  /** epoch ms of the last status change */
  readonly since: number
  readonly lastError: string | undefined
  readonly queued: number
  readonly sent: number
  readonly dropped: number
}

export interface TransportStats {
  readonly framesIn: number
  readonly framesOut: number
  /** frames that failed to decode, were too large or failed authentication */
  readonly framesRejected: number
  readonly bytesIn: number
  readonly bytesOut: number
  readonly connectionsIn: number
}

export class TransportError extends Data.TaggedError("TransportError")<{
  readonly reason: "ListenFailed" | "Closed"
  readonly message: string
  readonly cause?: unknown
}> {}

export class Transport extends Context.Tag("dcounter/Transport")<
  Transport,
  {
    /** This node's identity, sent as the Hello of every outbound connection. */
    readonly self: Hello
    /**
     * Queues a message for the peer at `addr`. Never blocks and never fails: when the
     * peer's bounded queue is full, superseded state messages are dropped (state-based
     * CRDT messages are safe to drop; anti-entropy repairs). Returns false if dropped.
     */
    readonly send: (addr: HostPort, message: Message) => Effect.Effect<boolean>
    /** Messages from all peers; bounded, drained by one fiber. */
    readonly inbound: Queue.Dequeue<Inbound>
    /** Closes the outbound connection to a peer and forgets its queue. */
    readonly forget: (addr: HostPort) => Effect.Effect<void>
    readonly connections: Effect.Effect<ReadonlyArray<ConnectionState>>
    readonly stats: Effect.Effect<TransportStats>
  }
>() {}
