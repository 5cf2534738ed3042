/**
 * `Transport` over persistent TCP connections (node:net), all owned by the layer's scope.
 *
 * Outbound: one connection per peer, opened when the first message for it is queued and
 * reused for every later message. It starts with our Hello frame. Outgoing sockets bind
 * their local address to the host of our listen address (when it is an IP other than the
 * wildcard), so a node on 127.0.0.3 talks from 127.0.0.3 and per-address firewall rules can
 * split a cluster on one machine. Each peer has a bounded `SendQueue` (see there for the
 * overflow policy and why dropping gossip is safe) drained by one fiber that writes
 * batches of up to `maxBatchBytes` in one go (small frames copied into one buffer, large
 * payloads passed through uncopied, cork + writev) and waits for `drain` when the socket
 * is full. A connect that fails or times out, or a connection that drops,
 * is retried after a capped exponential backoff with jitter; after `maxConnectAttempts`
 * failures in a row the queued messages are dropped and the peer waits for the next send
 * (attempts stay paced by the capped backoff until a connection succeeds). Messages
 * written to a connection that then breaks are lost; anti-entropy repairs that.
 *
 * Inbound: at most `maxInboundConnections` connections. A connection must send a valid
 * Hello of our protocol version as its first frame within `handshakeTimeout`. Bytes are
 * decoded synchronously in the `data` callback (`FrameDecoder`, then `Codec`), so the
 * messages of a connection keep their order in the one bounded `inbound` queue. When that
 * queue is full the socket is paused (TCP flow control holds the sender back) until the
 * messages it already sent are in. A frame that is too large, malformed, unauthenticated
 * or undecodable, or a first frame that is not a Hello, closes that connection only; it is
 * logged once at warn with the remote address and counted (`framesRejected`, and the
 * metric `dcounter_frames_rejected_total{reason}`). The Hello of each connection is
 * delivered to `inbound` too, so the node learns who connected.
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
import { Clock, Duration, Effect, Either, Fiber, FiberSet, Layer, Option, Queue, Random, Redacted } from "effect"
import * as Codec from "../protocol/Codec.js"
import type { FrameError } from "../protocol/Frame.js"
import { DEFAULT_MAX_FRAME_BYTES, FrameDecoder, encode as encodeFrame, encodeParts, frameSize } from "../protocol/Frame.js"
import type { Hello, HostPort, Message } from "../protocol/Message.js"
import { PROTOCOL_VERSION } from "../protocol/Message.js"
import type { OverflowPolicy } from "./SendQueue.js"
import { gossipOverflow, SendQueue } from "./SendQueue.js"
import type { ConnectionState, ConnectionStatus, TransportStats } from "./Transport.js"
import { Transport, TransportError } from "./Transport.js"
import type { RejectReason } from "./TransportMetrics.js"
import * as Metrics from "./TransportMetrics.js"

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

/** `host:port` -> host (without IPv6 brackets) and port; undefined if it is not one. */
export const splitHostPort = (addr: string): { readonly host: string; readonly port: number } | undefined => {
  const i = addr.lastIndexOf(":")
  if (i <= 0) return undefined
  let host = addr.slice(0, i)
  const portText = addr.slice(i + 1)
  if (!/^[0-9]{1,5}$/.test(portText)) return undefined
  const port = Number(portText)
  if (port > 65535) return undefined
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1)
  return host.length > 0 ? { host, port } : undefined
}

const describe = (e: unknown): string => (e instanceof Error ? e.message : String(e))

const rejectReason = (e: FrameError): RejectReason => {
  switch (e._tag) {
    case "FrameTooLarge":
      return "too_large"
    case "FrameUnauthenticated":
      return "unauthenticated"
    case "FrameVersionUnsupported":
    case "FrameMalformed":
      return "malformed"
  }
}

/** An established outbound socket and how it ended. */
class Outbound {
  closed = false
  reason: string | undefined = undefined
  constructor(readonly socket: net.Socket, onClose: () => void) {
    socket.on("error", (e) => {
      this.reason ??= describe(e)
    })
    socket.on("close", () => {
      this.closed = true
      this.reason ??= "connection closed by peer"
      onClose()
    })
    // peers never write on our connection; reading lets us see their FIN at once
    socket.on("data", () => {})
  }
}

interface Peer<M> {
  readonly addr: HostPort
  readonly host: string
  readonly port: number
  readonly queue: SendQueue<M>
  readonly wake: Effect.Latch
  status: ConnectionStatus
  since: number
  lastError: string | undefined
  sent: number
  /** dropped outside the queue's policy: too large to send, or given up on */
  dropped: number
  attempt: number
  fiber: Fiber.RuntimeFiber<void> | undefined
}

interface InboundConnection<M> {
  readonly socket: net.Socket
  readonly remote: string
  readonly decoder: FrameDecoder
  hello: Hello | undefined
  /** decoded messages waiting for room in `inbound` while the socket is paused */
  stash: Array<Received<M>>
  draining: boolean
  rejected: boolean
  timer: ReturnType<typeof setTimeout> | undefined
}

/** A message received from a peer, with the identity it announced in its Hello. */
export interface Received<M> {
  readonly from: Hello
  readonly message: M
}

/** `Transport` over any payload type `M`; with `M = Message` it is the `Transport` service. */
export interface TransportOf<M> {
  readonly self: Hello
  readonly send: (addr: HostPort, message: M) => Effect.Effect<boolean>
  readonly inbound: Queue.Dequeue<Received<M>>
  readonly forget: (addr: HostPort) => Effect.Effect<void>
  readonly connections: Effect.Effect<ReadonlyArray<ConnectionState>>
  readonly stats: Effect.Effect<TransportStats>
}

/**
 * How payloads of type `M` become frame payloads and back. The handshake Hello always
 * travels as a gossip `Message` (Codec.ts); every later frame goes through the wire.
 */
export interface Wire<M> {
  /** bytes of one message; the transport may hold them until written (never mutates them) */
  readonly encode: (message: M) => Uint8Array
  /** never throws: a Left closes the connection as "undecodable" */
  readonly decode: (payload: Uint8Array) => Either.Either<M, { readonly message: string }>
  /**
   * Whether a decoded message may still refer to the payload bytes. When false, payloads
   * are reassembled in one reused buffer per connection (see `FrameOptions.reuseBuffer`).
   */
  readonly retainsPayload: boolean
  /** the Hello a message is, if it is one (a later Hello updates the sender's identity) */
  readonly helloOf: (message: M) => Hello | undefined
  /** the handshake Hello as a message for `inbound`, or undefined not to deliver it */
  readonly ofHello: (hello: Hello) => M | undefined
  /** what a full send queue does with one more message */
  readonly overflow: OverflowPolicy<M>
}

/** Gossip messages: the `Codec`, the gossip overflow policy, Hellos delivered. */
export const messageWire: Wire<Message> = {
  encode: Codec.encode,
  decode: Codec.decode,
  // msgpack decoding copies everything out (strings, numbers, arrays; no binary fields)
  retainsPayload: false,
  helloOf: (message) => (message._tag === "Hello" ? message : undefined),
  ofHello: (hello) => hello,
  overflow: gossipOverflow
}

/** A TCP transport, plus the address it actually listens on. */
export interface TransportTcpService<M = Message> {
  readonly transport: TransportOf<M>
  readonly address: HostPort
}

/** Payloads of this size or more are written as their own chunk (writev), not copied. */
const COPY_BELOW_BYTES = 16 * 1024

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
    const handshakeMillis = Duration.toMillis(options.handshakeTimeout ?? defaults.handshakeTimeout)
    const connectTimeout = Duration.decode(options.connectTimeout ?? defaults.connectTimeout)
    const backoffBase = Duration.toMillis(options.backoffBase ?? defaults.backoffBase)
    const backoffCap = Duration.toMillis(options.backoffCap ?? defaults.backoffCap)
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

    const listen = splitHostPort(options.listen)
    if (listen === undefined) {
      return yield* new TransportError({ reason: "ListenFailed", message: `not a host:port address: ${options.listen}` })
    }
    const localAddress =
      net.isIP(listen.host) !== 0 && listen.host !== "0.0.0.0" && listen.host !== "::" ? listen.host : undefined

    const runFork = yield* FiberSet.makeRuntime<never, void, never>()
    const inbound = yield* Queue.bounded<Received<M>>(options.inboundQueueSize ?? defaults.inboundQueueSize)
    const totals = { framesIn: 0, framesOut: 0, framesRejected: 0, bytesIn: 0, bytesOut: 0 }
    const peers = new Map<HostPort, Peer<M>>()
    const inboundConnections = new Set<InboundConnection<M>>()
    const outboundSockets = new Set<net.Socket>()
    let closing = false
    const helloFrame = encodeFrame(Codec.encode(self), key)
    /**
     * Payload bytes per message object: the gossip loop sends one Push to several peers,
     * and messages are immutable, so each is encoded once however many peers get it.
     */
    const encoded = new WeakMap<object, Uint8Array>()
    const encodeOnce = (message: M): Uint8Array => {
      if (typeof message !== "object" || message === null) return wire.encode(message)
      const hit = encoded.get(message)
      if (hit !== undefined) return hit
      const bytes = wire.encode(message)
      encoded.set(message, bytes)
      return bytes
    }

    const log = (effect: Effect.Effect<void>) => {
      if (!closing) runFork(effect)
    }

    // ---- inbound -------------------------------------------------------------------

    const reject = (conn: InboundConnection<M>, reason: RejectReason, detail: string) => {
      if (conn.rejected) return
      conn.rejected = true
      totals.framesRejected++
      Metrics.framesRejected[reason].unsafeUpdate(1, [])
      conn.socket.destroy()
      log(
        Effect.logWarning(`gossip: rejected a frame from ${conn.remote} (${reason}): ${detail}; connection closed`).pipe(
          Effect.annotateLogs({ remote: conn.remote, reason })
        )
      )
    }

    const drainStash = (conn: InboundConnection<M>): Effect.Effect<void> =>
      Effect.gen(function* () {
        while (conn.stash.length > 0) {
          const batch = conn.stash
          conn.stash = []
          yield* Queue.offerAll(inbound, batch)
        }
        conn.draining = false
        if (!conn.socket.destroyed) conn.socket.resume()
      })

    const deliver = (conn: InboundConnection<M>, item: Received<M>) => {
      if (conn.stash.length === 0 && !conn.draining && inbound.unsafeOffer(item)) return
      conn.stash.push(item)
      if (!conn.draining) {
        conn.draining = true
        conn.socket.pause()
        runFork(drainStash(conn))
      }
    }

    const onData = (conn: InboundConnection<M>, chunk: Buffer) => {
      if (conn.rejected) return
      totals.bytesIn += chunk.length
      Metrics.bytesInTotal.unsafeUpdate(chunk.length, [])
      const { error, frames } = conn.decoder.push(chunk)
      for (const payload of frames) {
        totals.framesIn++
        Metrics.framesInTotal.unsafeUpdate(1, [])
        if (conn.hello === undefined) {
          const decoded = Codec.decode(payload)
          if (Either.isLeft(decoded)) return reject(conn, "undecodable", decoded.left.message)
          const hello = decoded.right
          if (hello._tag !== "Hello") return reject(conn, "handshake", `first frame is a ${hello._tag}, not a Hello`)
          if (hello.protocol !== PROTOCOL_VERSION) {
            return reject(conn, "handshake", `protocol ${hello.protocol}, this build speaks ${PROTOCOL_VERSION}`)
          }
          clearTimeout(conn.timer)
          conn.timer = undefined
          conn.hello = hello
          const message = wire.ofHello(hello)
          if (message !== undefined) deliver(conn, { from: hello, message })
          continue
        }
        const decoded = wire.decode(payload)
        if (Either.isLeft(decoded)) return reject(conn, "undecodable", decoded.left.message)
        const message = decoded.right
        conn.hello = wire.helloOf(message) ?? conn.hello
        deliver(conn, { from: conn.hello, message })
      }
      if (error !== undefined) reject(conn, rejectReason(error), error.message)
    }

    const onConnection = (socket: net.Socket) => {
      const remote = `${socket.remoteAddress}:${socket.remotePort}`
      socket.on("error", (e) => log(Effect.logDebug(`gossip: inbound connection from ${remote}: ${describe(e)}`)))
      if (closing) {
        socket.destroy()
        return
      }
      if (inboundConnections.size >= maxInbound) {
        socket.destroy()
        log(Effect.logWarning(`gossip: refused a connection from ${remote}: ${maxInbound} inbound connections open`))
        return
      }
      socket.setNoDelay(true)
      const conn: InboundConnection<M> = {
        socket,
        remote,
        decoder: new FrameDecoder({ maxFrameBytes, key, reuseBuffer: !wire.retainsPayload }),
        hello: undefined,
        stash: [],
        draining: false,
        rejected: false,
        timer: undefined
      }
      inboundConnections.add(conn)
      conn.timer = setTimeout(() => {
        if (conn.hello !== undefined || socket.destroyed) return
        socket.destroy()
        log(
          Effect.logWarning(`gossip: ${remote} sent no Hello within ${handshakeMillis} ms; connection closed`).pipe(
            Effect.annotateLogs({ remote })
          )
        )
      }, handshakeMillis)
      socket.on("data", (chunk: Buffer) => {
        try {
          onData(conn, chunk)
        } catch (e) {
          // the decoders never throw; this is a bug, and it must not take the process down
          reject(conn, "malformed", `unexpected failure: ${describe(e)}`)
        }
      })
      socket.on("close", () => {
        clearTimeout(conn.timer)
        inboundConnections.delete(conn)
      })
    }

    const server = net.createServer({ noDelay: true })
    server.on("connection", onConnection)
    yield* Effect.async<void, TransportError>((resume) => {
      const onError = (e: Error) => {
        server.off("listening", onListening)
        resume(
          Effect.fail(
            new TransportError({ reason: "ListenFailed", message: `cannot listen on ${options.listen}: ${e.message}`, cause: e })
          )
        )
      }
      const onListening = () => {
        server.off("error", onError)
        resume(Effect.void)
      }
      server.once("error", onError)
      server.once("listening", onListening)
      server.listen({ host: listen.host, port: listen.port, exclusive: true })
    })
    server.on("error", (e) => log(Effect.logError(`gossip: listener on ${options.listen}: ${e.message}`)))
    const bound = server.address()
    const address = (
      bound !== null && typeof bound === "object"
        ? bound.family === "IPv6"
          ? `[${bound.address}]:${bound.port}`
          : `${bound.address}:${bound.port}`
        : options.listen
    ) as HostPort

    // ---- outbound ------------------------------------------------------------------

    const setStatus = (peer: Peer<M>, status: ConnectionStatus, now: number, lastError?: string) => {
      if (peer.status !== status) {
        peer.status = status
        peer.since = now
      }
      if (lastError !== undefined) peer.lastError = lastError
    }

    const backoffDelay = (attempt: number) =>
      Effect.map(Random.next, (r) => {
        const full = Math.min(backoffCap, backoffBase * 2 ** Math.min(attempt - 1, 30))
        return Duration.millis(Math.round(full / 2 + (r * full) / 2))
      })

    const connect = (peer: Peer<M>) =>
      Effect.async<Outbound, string>((resume) => {
        const socket = net.connect({
          host: peer.host,
          port: peer.port,
          noDelay: true,
          ...(localAddress !== undefined ? { localAddress } : {})
        })
        const onError = (e: Error) => {
          socket.destroy()
          resume(Effect.fail(describe(e)))
        }
        socket.once("error", onError)
        socket.once("connect", () => {
          socket.off("error", onError)
          outboundSockets.add(socket)
          socket.once("close", () => outboundSockets.delete(socket))
          resume(Effect.succeed(new Outbound(socket, () => peer.wake.unsafeOpen())))
        })
        return Effect.sync(() => socket.destroy())
      }).pipe(
        Effect.timeoutFail({
          duration: connectTimeout,
          onTimeout: () => `connect timed out after ${Duration.format(connectTimeout)}`
        })
      )

    const waitWritable = (conn: Outbound) =>
      Effect.async<void>((resume) => {
        if (conn.closed) return resume(Effect.void)
        const done = () => {
          cleanup()
          resume(Effect.void)
        }
        const cleanup = () => {
          conn.socket.off("drain", done)
          conn.socket.off("close", done)
        }
        conn.socket.once("drain", done)
        conn.socket.once("close", done)
        return Effect.sync(cleanup)
      })

    /**
     * Takes queued messages up to `maxBatchBytes` and frames them as chunks to write:
     * small frames are copied together into one buffer, large payloads are written as
     * they are (cork + writev), so a payload is copied at most once on its way out.
     */
    const nextBatch = (peer: Peer<M>) =>
      Effect.gen(function* () {
        const chunks: Array<Uint8Array> = []
        let small: Array<Uint8Array> = []
        let smallBytes = 0
        const flushSmall = () => {
          if (small.length === 0) return
          chunks.push(small.length === 1 ? small[0]! : Buffer.concat(small, smallBytes))
          small = []
          smallBytes = 0
        }
        let bytes = 0
        let count = 0
        while (bytes < maxBatchBytes) {
          const next = peer.queue.shift()
          if (next === undefined) break
          let payload: Uint8Array
          try {
            payload = encodeOnce(next.message)
          } catch (e) {
            peer.dropped++
            yield* Effect.logError(`gossip: cannot encode a message for ${peer.addr}: ${describe(e)}`)
            continue
          }
          const size = frameSize(payload.length, key)
          if (size - 4 > maxFrameBytes) {
            peer.dropped++
            yield* Effect.logWarning(
              `gossip: dropped a message of ${payload.length} bytes for ${peer.addr}: over the frame limit of ${maxFrameBytes}`
            )
            continue
          }
          const [header, body, tag] = encodeParts(payload, key)
          small.push(header!)
          smallBytes += header!.length
          if (payload.length >= COPY_BELOW_BYTES) {
            flushSmall()
            chunks.push(body!)
          } else {
            small.push(body!)
            smallBytes += body!.length
          }
          if (tag !== undefined) {
            small.push(tag)
            smallBytes += tag.length
          }
          bytes += size
          count++
        }
        flushSmall()
        return count === 0 ? undefined : { count, bytes, chunks }
      })

    const write = (peer: Peer<M>, conn: Outbound, batch: { count: number; bytes: number; chunks: Array<Uint8Array> }) => {
      let ok = true
      if (batch.chunks.length === 1) {
        ok = conn.socket.write(batch.chunks[0]!)
      } else {
        conn.socket.cork()
        for (const chunk of batch.chunks) ok = conn.socket.write(chunk)
        conn.socket.uncork()
      }
      peer.sent += batch.count
      totals.framesOut += batch.count
      totals.bytesOut += batch.bytes
      Metrics.framesOutTotal.unsafeUpdate(batch.count, [])
      Metrics.bytesOutTotal.unsafeUpdate(batch.bytes, [])
      return ok
    }

    /** Writes the Hello, then queued messages until the connection ends; returns why it did. */
    const pump = (peer: Peer<M>, conn: Outbound) =>
      Effect.gen(function* () {
        if (!conn.socket.write(helloFrame)) yield* waitWritable(conn)
        totals.framesOut++
        totals.bytesOut += helloFrame.length
        Metrics.framesOutTotal.unsafeUpdate(1, [])
        Metrics.bytesOutTotal.unsafeUpdate(helloFrame.length, [])
        while (!conn.closed) {
          if (peer.queue.length === 0) {
            peer.wake.unsafeClose()
            yield* peer.wake.await
            continue
          }
          const batch = yield* nextBatch(peer)
          if (batch === undefined) continue
          if (!write(peer, conn, batch)) yield* waitWritable(conn)
        }
        return conn.reason ?? "connection closed"
      })

    const runPeer = (peer: Peer<M>): Effect.Effect<void> =>
      Effect.gen(function* () {
        while (true) {
          if (peer.queue.length === 0) {
            peer.wake.unsafeClose()
            yield* peer.wake.await
            continue
          }
          if (peer.attempt > 0) {
            setStatus(peer, "backoff", yield* Clock.currentTimeMillis)
            yield* Effect.sleep(yield* backoffDelay(peer.attempt))
          }
          setStatus(peer, "connecting", yield* Clock.currentTimeMillis)
          const result = yield* Effect.either(connect(peer))
          if (Either.isLeft(result)) {
            peer.attempt++
            setStatus(peer, "backoff", yield* Clock.currentTimeMillis, result.left)
            if (peer.attempt >= maxAttempts) {
              const lost = peer.queue.clear()
              peer.dropped += lost
              yield* Effect.logWarning(
                `gossip: ${peer.addr} unreachable after ${peer.attempt} attempts (${result.left}); dropped ${lost} queued messages`
              )
            }
            continue
          }
          const conn = result.right
          const connectedAt = yield* Clock.currentTimeMillis
          setStatus(peer, "connected", connectedAt)
          yield* Effect.logDebug(`gossip: connected to ${peer.addr}`)
          const reason = yield* pump(peer, conn).pipe(Effect.ensuring(Effect.sync(() => conn.socket.destroy())))
          const now = yield* Clock.currentTimeMillis
          // a connection that stayed up for a while resets the backoff; one that keeps
          // failing at once (say the peer rejects our key) backs off further
          peer.attempt = now - connectedAt >= backoffCap ? 1 : Math.min(peer.attempt + 1, maxAttempts - 1)
          setStatus(peer, "backoff", now, reason)
          yield* Effect.logDebug(`gossip: connection to ${peer.addr} ended: ${reason}`)
        }
      })

    const peerOf = (addr: HostPort): Peer<M> | undefined => {
      const existing = peers.get(addr)
      if (existing !== undefined) return existing
      const target = splitHostPort(addr)
      if (target === undefined) return undefined
      const peer: Peer<M> = {
        addr,
        host: target.host,
        port: target.port,
        queue: new SendQueue(sendQueueSize, wire.overflow),
        wake: Effect.unsafeMakeLatch(false),
        status: "connecting",
        since: Date.now(),
        lastError: undefined,
        sent: 0,
        dropped: 0,
        attempt: 0,
        fiber: undefined
      }
      peers.set(addr, peer)
      peer.fiber = runFork(runPeer(peer))
      return peer
    }

    const send = (addr: HostPort, message: M) =>
      Effect.sync(() => {
        if (closing) return false
        const peer = peerOf(addr)
        if (peer === undefined) return false
        const result = peer.queue.offer(message)
        peer.wake.unsafeOpen()
        return result !== "dropped"
      })

    const forget = (addr: HostPort) =>
      Effect.suspend(() => {
        const peer = peers.get(addr)
        if (peer === undefined) return Effect.void
        peers.delete(addr)
        return peer.fiber === undefined ? Effect.void : Fiber.interrupt(peer.fiber).pipe(Effect.asVoid)
      })

    // ---- shutdown ------------------------------------------------------------------

    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        closing = true
        yield* Effect.forEach([...peers.values()], (peer) => (peer.fiber === undefined ? Effect.void : Fiber.interrupt(peer.fiber).pipe(Effect.asVoid)), {
          discard: true,
          concurrency: "unbounded"
        })
        peers.clear()
        for (const socket of outboundSockets) socket.destroy()
        for (const conn of inboundConnections) {
          clearTimeout(conn.timer)
          conn.socket.destroy()
        }
        yield* Effect.async<void>((resume) => {
          server.close(() => resume(Effect.void))
        })
        yield* Queue.shutdown(inbound)
      })
    )

    yield* Effect.logInfo(`gossip: listening on ${address}`)

    const transport: TransportOf<M> = {
      self,
      send,
      inbound,
      forget,
      connections: Effect.sync(() =>
        [...peers.values()].map(
          (peer): ConnectionState => ({
            addr: peer.addr,
            status: peer.status,
            since: peer.since,
            lastError: peer.lastError,
            queued: peer.queue.length,
            sent: peer.sent,
            dropped: peer.queue.dropped + peer.dropped
          })
        )
      ),
      stats: Effect.sync(() => ({ ...totals, connectionsIn: inboundConnections.size }))
    }
    return { transport, address }
  })

/** The transport as a layer for a node: `Layer<Transport, TransportError>`. */
export const layer = (options: TransportTcpOptions): Layer.Layer<Transport, TransportError> =>
  Layer.scoped(Transport, Effect.map(make(options), (s) => s.transport))
