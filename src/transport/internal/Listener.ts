/**
 * The TCP transport's listener: accepts inbound connections (at most `maxInbound`), holds
 * each to its handshake (a valid Hello of our protocol version as the first frame within
 * `handshakeMillis`) and decodes its frames into the one bounded `inbound` queue.
 *
 * Written with socket callbacks, not Effect steps: bytes are decoded synchronously in the
 * `data` callback (`FrameDecoder`, then the wire), so the messages of a connection keep
 * their order in the queue (`socket.run`-style handlers would fork a fiber per chunk and
 * lose it), and no fiber is created per frame. When the queue is full the socket is
 * paused (TCP flow control holds the sender back) while one fiber offers what it already
 * sent. A frame that is too large, malformed, unauthenticated or undecodable, or a first
 * frame that is not a Hello, closes that connection only; it is logged once at warn with
 * the remote address and counted (`framesRejected`, `dcounter_frames_rejected_total`).
 * The Hello of each connection is delivered to `inbound` too, so the node learns who
 * connected.
 */
import * as net from "node:net"
import type { Fiber } from "effect"
import { Effect, Either, Queue } from "effect"
import * as Codec from "../../protocol/Codec.js"
import type { FrameError } from "../../protocol/Frame.js"
import { FrameDecoder } from "../../protocol/Frame.js"
import type { Hello, HostPort } from "../../protocol/Message.js"
import { PROTOCOL_VERSION } from "../../protocol/Message.js"
import { TransportError } from "../Transport.js"
import type { RejectReason } from "../TransportMetrics.js"
import * as Metrics from "../TransportMetrics.js"
import { describe, type Received, type Totals, type Wire } from "./Wire.js"

export interface ListenerConfig<M> {
  /** the address as configured (for messages) and its parts */
  readonly listen: string
  readonly host: string
  readonly port: number
  readonly maxInbound: number
  readonly handshakeMillis: number
  readonly maxFrameBytes: number
  readonly key: string | undefined
  readonly wire: Wire<M>
}

/** What the listener shares with the rest of the transport. */
export interface ListenerContext<M> {
  readonly inbound: Queue.Queue<Received<M>>
  readonly totals: Totals
  /** runs a log line on a fiber of the transport's scope (not once closing) */
  readonly log: (effect: Effect.Effect<void>) => void
  /** forks into the transport's scope */
  readonly runFork: (effect: Effect.Effect<void>) => Fiber.RuntimeFiber<void>
  readonly isClosing: () => boolean
}

export interface Listener {
  /** the address actually bound (`host:port`, IPv6 in brackets) */
  readonly address: HostPort
  /** inbound connections open now */
  readonly connections: () => number
  /** destroys every inbound connection and closes the listening socket */
  readonly close: Effect.Effect<void>
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

/** Listens on `config.host:config.port`; fails with `ListenFailed` when it cannot bind. */
export const make = <M>(config: ListenerConfig<M>, context: ListenerContext<M>): Effect.Effect<Listener, TransportError> =>
  Effect.gen(function*() {
    const { handshakeMillis, key, maxFrameBytes, maxInbound, wire } = config
    const { inbound, isClosing, log, runFork, totals } = context
    const connections = new Set<InboundConnection<M>>()

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
      Effect.gen(function*() {
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
      if (isClosing()) {
        socket.destroy()
        return
      }
      if (connections.size >= maxInbound) {
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
      connections.add(conn)
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
        connections.delete(conn)
      })
    }

    const server = net.createServer({ noDelay: true })
    server.on("connection", onConnection)
    yield* Effect.async<void, TransportError>((resume) => {
      const onError = (e: Error) => {
        server.off("listening", onListening)
        resume(
          Effect.fail(
            new TransportError({ reason: "ListenFailed", message: `cannot listen on ${config.listen}: ${e.message}`, cause: e })
          )
        )
      }
      const onListening = () => {
        server.off("error", onError)
        resume(Effect.void)
      }
      server.once("error", onError)
      server.once("listening", onListening)
      server.listen({ host: config.host, port: config.port, exclusive: true })
    })
    server.on("error", (e) => log(Effect.logError(`gossip: listener on ${config.listen}: ${e.message}`)))
    const bound = server.address()
    const address = (
      bound !== null && typeof bound === "object"
        ? bound.family === "IPv6"
          ? `[${bound.address}]:${bound.port}`
          : `${bound.address}:${bound.port}`
        : config.listen
    ) as HostPort

    return {
      address,
      connections: () => connections.size,
      close: Effect.suspend(() => {
        for (const conn of connections) {
          clearTimeout(conn.timer)
          conn.socket.destroy()
        }
        return Effect.async<void>((resume) => {
          server.close(() => resume(Effect.void))
        })
      })
    }
  })
