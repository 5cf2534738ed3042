/**
 * `Transport` over persistent TCP connections (node:net), all owned by the layer's scope:
 * the public layer, composing the parts in `internal/`, each owning one concern:
 *
 * - `Listener`: accepts inbound connections, holds each to its Hello handshake, decodes
 *   its frames in order into the one bounded `inbound` queue, rejects bad frames.
 * - `OutboundPeer`: one persistent connection per peer with a bounded `SendQueue`, dialed
 *   from our listen host, redialed after a capped backoff with jitter.
 * - `Writer`: frames a peer's queued messages and writes them onto its socket in batches.
 * - `Wire`: how payloads become frames and back (`messageWire` for gossip).
 *
 * Closing the scope stops the peer fibers, destroys every socket and closes the listener;
 * the port can be bound again at once.
 *
 * `makeWith` runs the same machinery over any payload `Wire` (the benchmark uses raw bytes
 * to measure the transport apart from the message codec); `make` and `layer` are the
 * gossip transport over `Message`s.
 */
import * as net from "node:net"
import type { Scope } from "effect"
import { Duration, Effect, FiberSet, Layer, Option, Queue, Redacted } from "effect"
import * as Codec from "../protocol/Codec.js"
import { DEFAULT_MAX_FRAME_BYTES, encode as encodeFrame } from "../protocol/Frame.js"
import type { Hello, HostPort, Message } from "../protocol/Message.js"
import * as Listener from "./internal/Listener.js"
import * as OutboundPeer from "./internal/OutboundPeer.js"
import { messageWire, type Received, type Totals, type Wire } from "./internal/Wire.js"
import * as Writer from "./internal/Writer.js"
import type { ConnectionState, TransportStats } from "./Transport.js"
import { Transport, TransportError } from "./Transport.js"

export { splitHostPort } from "./internal/OutboundPeer.js"
export { messageWire, type Received, type Wire } from "./internal/Wire.js"

export interface TransportTcpOptions {
  /** address to listen on; its host is also the local address of outgoing connections */
  readonly listen: HostPort
  /** our identity, sent as the first frame of every outbound connection */
  readonly self: Hello
  /** when set, every frame is tagged (HMAC-SHA256) and untagged frames are rejected */
  readonly clusterKey: Option.Option<Redacted.Redacted<string>>
  /** bound of a frame's length field, both ways (default 4 MiB) */
  readonly maxFrameBytes?: number
  /** concurrent inbound connections; more are closed at once (default 1024) */
  readonly maxInboundConnections?: number
  /** time an inbound connection has to send its Hello (default 5 s) */
  readonly handshakeTimeout?: Duration.DurationInput
  /** time a connect may take (default 3 s) */
  readonly connectTimeout?: Duration.DurationInput
  /** first reconnect delay; doubled per failure (default 100 ms) */
  readonly backoffBase?: Duration.DurationInput
  /** largest reconnect delay (default 10 s) */
  readonly backoffCap?: Duration.DurationInput
  /** failed connects in a row after which a peer's queue is dropped (default 10) */
  readonly maxConnectAttempts?: number
  /** messages queued per peer (default 1024) */
  readonly sendQueueSize?: number
  /** messages waiting in `inbound` (default 4096) */
  readonly inboundQueueSize?: number
  /** bytes written to a socket in one go (default 1 MiB) */
  readonly maxBatchBytes?: number
}

export const defaults = {
  maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
  maxInboundConnections: 1024,
  handshakeTimeout: Duration.seconds(5),
  connectTimeout: Duration.seconds(3),
  backoffBase: Duration.millis(100),
  backoffCap: Duration.seconds(10),
  maxConnectAttempts: 10,
  sendQueueSize: 1024,
  inboundQueueSize: 4096,
  maxBatchBytes: 1024 * 1024
} as const

/** `Transport` over any payload type `M`; with `M = Message` it is the `Transport` service. */
export interface TransportOf<M> {
  readonly self: Hello
  readonly send: (addr: HostPort, message: M) => Effect.Effect<boolean>
  readonly inbound: Queue.Dequeue<Received<M>>
  readonly forget: (addr: HostPort) => Effect.Effect<void>
  readonly connections: Effect.Effect<ReadonlyArray<ConnectionState>>
  readonly stats: Effect.Effect<TransportStats>
}

/** A TCP transport, plus the address it actually listens on. */
export interface TransportTcpService<M = Message> {
  readonly transport: TransportOf<M>
  readonly address: HostPort
}

/** The gossip transport: `makeWith(options, messageWire)`. */
export const make = (options: TransportTcpOptions): Effect.Effect<TransportTcpService<Message>, TransportError, Scope.Scope> =>
  makeWith(options, messageWire)

/** The transport over any `Wire`; `make` is the gossip one. */
export const makeWith = <M>(
  options: TransportTcpOptions,
  wire: Wire<M>
): Effect.Effect<TransportTcpService<M>, TransportError, Scope.Scope> =>
  Effect.gen(function* () {
    const maxFrameBytes = options.maxFrameBytes ?? defaults.maxFrameBytes
    const maxInbound = options.maxInboundConnections ?? defaults.maxInboundConnections
    const maxAttempts = options.maxConnectAttempts ?? defaults.maxConnectAttempts
    const sendQueueSize = options.sendQueueSize ?? defaults.sendQueueSize
    const maxBatchBytes = options.maxBatchBytes ?? defaults.maxBatchBytes
    const key = Option.getOrUndefined(Option.map(options.clusterKey, Redacted.value))
    const self = options.self
    const sizes = { maxFrameBytes, maxInbound, maxAttempts, sendQueueSize, maxBatchBytes }
    for (const [name, value] of Object.entries(sizes)) {
      if (!Number.isSafeInteger(value) || value < 1) {
        return yield* Effect.dieMessage(`TransportTcp: ${name} must be a positive integer, got ${value}`)
      }
    }

    const listen = OutboundPeer.splitHostPort(options.listen)
    if (listen === undefined) {
      return yield* new TransportError({ reason: "ListenFailed", message: `not a host:port address: ${options.listen}` })
    }
    const localAddress =
      net.isIP(listen.host) !== 0 && listen.host !== "0.0.0.0" && listen.host !== "::" ? listen.host : undefined

    const runFork = yield* FiberSet.makeRuntime<never, void, never>()
    const inbound = yield* Queue.bounded<Received<M>>(options.inboundQueueSize ?? defaults.inboundQueueSize)
    const totals: Totals = { framesIn: 0, framesOut: 0, framesRejected: 0, bytesIn: 0, bytesOut: 0 }
    let closing = false
    const log = (effect: Effect.Effect<void>) => {
      if (!closing) runFork(effect)
    }

    const listener = yield* Listener.make(
      {
        listen: options.listen,
        host: listen.host,
        port: listen.port,
        maxInbound,
        handshakeMillis: Duration.toMillis(options.handshakeTimeout ?? defaults.handshakeTimeout),
        maxFrameBytes,
        key,
        wire
      },
      { inbound, totals, log, runFork, isClosing: () => closing }
    )
    const writer = Writer.make(
      { wire, key, maxFrameBytes, maxBatchBytes, helloFrame: encodeFrame(Codec.encode(self), key) },
      totals
    )
    const outbound = OutboundPeer.make(
      {
        wire,
        localAddress,
        connectTimeout: Duration.decode(options.connectTimeout ?? defaults.connectTimeout),
        backoffBaseMs: Duration.toMillis(options.backoffBase ?? defaults.backoffBase),
        backoffCapMs: Duration.toMillis(options.backoffCap ?? defaults.backoffCap),
        maxAttempts,
        sendQueueSize
      },
      writer,
      runFork
    )

    const send = (addr: HostPort, message: M) =>
      Effect.sync(() => {
        if (closing) return false
        const peer = outbound.peerOf(addr)
        if (peer === undefined) return false
        const result = peer.queue.offer(message)
        peer.wake.unsafeOpen()
        return result !== "dropped"
      })

    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        closing = true
        yield* outbound.closeAll
        yield* listener.close
        yield* Queue.shutdown(inbound)
      })
    )

    yield* Effect.logInfo(`gossip: listening on ${listener.address}`)

    const transport: TransportOf<M> = {
      self,
      send,
      inbound,
      forget: outbound.forget,
      connections: Effect.sync(outbound.states),
      stats: Effect.sync(() => ({ ...totals, connectionsIn: listener.connections() }))
    }
    return { transport, address: listener.address }
  })

/** The transport as a layer for a node: `Layer<Transport, TransportError>`. */
export const layer = (options: TransportTcpOptions): Layer.Layer<Transport, TransportError> =>
  Layer.scoped(Transport, Effect.map(make(options), (s) => s.transport))
