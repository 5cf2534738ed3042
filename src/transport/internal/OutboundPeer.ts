/**
 * The TCP transport's outbound peers: one persistent connection per peer, dialed when
 * the first message for it is queued and reused for every later one. Each peer has a
 * bounded `SendQueue` (see there for the overflow policy and why dropping gossip is safe)
 * and one fiber that dials, hands the connection to the `Writer` until it ends, and dials
 * again. Outgoing sockets bind their local address to the host of our listen address
 * (when it is an IP other than the wildcard), so a node on 127.0.0.3 talks from 127.0.0.3
 * and per-address firewall rules can split a cluster on one machine.
 *
 * A connect that fails or times out, or a connection that drops, is retried after a
 * capped exponential backoff with jitter; after `maxAttempts` failures in a row the queued
 * messages are dropped and the peer waits for the next send (attempts stay paced by the
 * capped backoff until a connection succeeds). Messages written to a connection that then
 * breaks are lost; anti-entropy repairs that.
 */
import * as net from "node:net"
import { Clock, Duration, Effect, Either, Fiber, Random } from "effect"
import type { HostPort } from "../../protocol/Message.js"
import { SendQueue } from "../SendQueue.js"
import type { ConnectionState, ConnectionStatus } from "../Transport.js"
import { describe, type Wire } from "./Wire.js"
import type { Writer } from "./Writer.js"

/** An established outbound socket and how it ended. */
export class Outbound {
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

export interface Peer<M> {
  readonly addr: HostPort
  readonly host: string
  readonly port: number
  readonly queue: SendQueue<M>
  /** open while there is something to do: messages queued, or the connection closed */
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

export interface OutboundConfig<M> {
  readonly wire: Wire<M>
  /** local address of outgoing sockets, when the listen host is a specific IP */
  readonly localAddress: string | undefined
  readonly connectTimeout: Duration.Duration
  readonly backoffBaseMs: number
  readonly backoffCapMs: number
  readonly maxAttempts: number
  readonly sendQueueSize: number
}

export interface OutboundPeers<M> {
  /** The peer at `addr`, made (and its fiber started) on first use; undefined if `addr` is not host:port. */
  readonly peerOf: (addr: HostPort) => Peer<M> | undefined
  /** Stops the peer's fiber (its connection is closed) and forgets its queue. */
  readonly forget: (addr: HostPort) => Effect.Effect<void>
  /** Stops every peer's fiber and destroys every outbound socket. */
  readonly closeAll: Effect.Effect<void>
  readonly states: () => Array<ConnectionState>
}

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

/** The capped exponential backoff with jitter before attempt `attempt + 1`: [full/2, full]. */
export const backoffDelay = (attempt: number, baseMs: number, capMs: number) =>
  Effect.map(Random.next, (r) => {
    const full = Math.min(capMs, baseMs * 2 ** Math.min(attempt - 1, 30))
    return Duration.millis(Math.round(full / 2 + (r * full) / 2))
  })

/**
 * The outbound side. `runFork` forks into the transport's scope; `writer` writes onto a
 * connection once it is up.
 */
export const make = <M>(
  config: OutboundConfig<M>,
  writer: Writer<M>,
  runFork: (effect: Effect.Effect<void>) => Fiber.RuntimeFiber<void>
): OutboundPeers<M> => {
  const { connectTimeout, localAddress, maxAttempts } = config
  const peers = new Map<HostPort, Peer<M>>()
  const sockets = new Set<net.Socket>()

  const setStatus = (peer: Peer<M>, status: ConnectionStatus, now: number, lastError?: string) => {
    if (peer.status !== status) {
      peer.status = status
      peer.since = now
    }
    if (lastError !== undefined) peer.lastError = lastError
  }

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
        sockets.add(socket)
        socket.once("close", () => sockets.delete(socket))
        resume(Effect.succeed(new Outbound(socket, () => peer.wake.unsafeOpen())))
      })
      return Effect.sync(() => socket.destroy())
    }).pipe(
      Effect.timeoutFail({
        duration: connectTimeout,
        onTimeout: () => `connect timed out after ${Duration.format(connectTimeout)}`
      })
    )

  const runPeer = (peer: Peer<M>): Effect.Effect<void> =>
    Effect.gen(function*() {
      while (true) {
        if (peer.queue.length === 0) {
          peer.wake.unsafeClose()
          yield* peer.wake.await
          continue
        }
        if (peer.attempt > 0) {
          setStatus(peer, "backoff", yield* Clock.currentTimeMillis)
          yield* Effect.sleep(yield* backoffDelay(peer.attempt, config.backoffBaseMs, config.backoffCapMs))
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
        const reason = yield* writer.pump(peer, conn).pipe(Effect.ensuring(Effect.sync(() => conn.socket.destroy())))
        const now = yield* Clock.currentTimeMillis
        // a connection that stayed up for a while resets the backoff; one that keeps
        // failing at once (say the peer rejects our key) backs off further
        peer.attempt = now - connectedAt >= config.backoffCapMs ? 1 : Math.min(peer.attempt + 1, maxAttempts - 1)
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
      queue: new SendQueue(config.sendQueueSize, config.wire.overflow),
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

  const forget = (addr: HostPort) =>
    Effect.suspend(() => {
      const peer = peers.get(addr)
      if (peer === undefined) return Effect.void
      peers.delete(addr)
      return peer.fiber === undefined ? Effect.void : Fiber.interrupt(peer.fiber).pipe(Effect.asVoid)
    })

  const closeAll = Effect.gen(function*() {
    yield* Effect.forEach([...peers.values()], (peer) => (peer.fiber === undefined ? Effect.void : Fiber.interrupt(peer.fiber).pipe(Effect.asVoid)), {
      discard: true,
      concurrency: "unbounded"
    })
    peers.clear()
    for (const socket of sockets) socket.destroy()
  })

  const states = () =>
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

  return { peerOf, forget, closeAll, states }
}
