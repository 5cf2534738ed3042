/**
 * Persistent HTTP/1.1 connections from the gateway to the nodes, one request at a time per
 * connection, in plain `node:net` (the gateway's hot path: about a third of the CPU of a
 * `node:http` client request, measured in the same run).
 *
 * Per node: at most `maxSockets` connections; a request takes an idle one (most recently
 * used first), else opens one, else waits in a FIFO bounded by `maxWaiting` (beyond it the
 * request is refused at once as `Busy`). Deadlines (request, connect, idle) are checked by
 * one sweep timer every `sweepMillis`, not by timers per request, so they are that precise.
 * An idle connection is closed after `idleMillis`, or one second before the node's
 * `keep-alive: timeout` hint, whichever comes first, so that a request is not sent on a
 * connection the node is closing.
 *
 * Every outcome says whether the request could have reached the node:
 * - `NotReached`: the connection was never established (refused, unreachable, connect
 *   timeout): not one byte of the request was sent;
 * - `Busy`: it never left the gateway (no free connection in time, or too many waiting);
 * - `Indeterminate`: it was written on an established connection (a reused one included)
 *   and no complete answer came back (reset, close, timeout, malformed answer).
 * Each request's callback is called exactly once (never after `cancel`).
 *
 * @internal
 */
import * as Net from "node:net"
import type { ParsedResponse } from "./responseParser.js"
import { ResponseParser } from "./responseParser.js"

export type FailureReason = "NotReached" | "Busy" | "Indeterminate"

export type Outcome =
  | { readonly ok: true; readonly response: ParsedResponse }
  | { readonly ok: false; readonly reason: FailureReason; readonly message: string; readonly cause: unknown }

export interface PoolOptions {
  /** most connections per node */
  readonly maxSockets: number
  /** most requests waiting for a connection, per node */
  readonly maxWaiting: number
  readonly connectMillis: number
  readonly idleMillis: number
  readonly sweepMillis: number
  readonly maxHeadBytes: number
  readonly maxBodyBytes: number
  /** a request's callback threw: report it (the pool carries on) */
  readonly onDefect: (message: string, cause: unknown) => void
}

export interface Request {
  readonly method: "GET" | "POST"
  /** origin-form: `/` followed by visible ASCII */
  readonly path: string
  /** JSON text of the body, for a POST */
  readonly body?: string | undefined
  /** bound on the whole exchange, waiting for a connection included */
  readonly timeoutMillis: number
}

/** A request under way; pass it to `cancel`. */
export class Pending {
  settled = false
  conn: Connection | undefined = undefined
  constructor(
    readonly node: string,
    readonly method: string,
    readonly path: string,
    readonly text: string,
    readonly timeoutMillis: number,
    readonly deadline: number,
    readonly done: (outcome: Outcome) => void
  ) {}
}

const VALID_PATH = /^\/[\x21-\x7e]*$/

const describe = (cause: unknown): string =>
  cause instanceof Error
    ? ("code" in cause && typeof cause.code === "string" ? `${cause.code}: ${cause.message}` : cause.message)
    : String(cause)

class Connection {
  connected = false
  closed = false
  current: Pending | undefined = undefined
  /** when it last became idle (performance.now), -1 until the sweep notes it */
  idleSince = -1
  /** idle bound for this connection (the node's keep-alive hint may shorten it) */
  idleMillis: number
  readonly connectDeadline: number
  readonly parser: ResponseParser
  constructor(readonly host: NodeConnections, readonly socket: Net.Socket, now: number, options: PoolOptions) {
    this.connectDeadline = now + options.connectMillis
    this.idleMillis = options.idleMillis
    this.parser = new ResponseParser(options)
  }
}

/** The connections and waiting requests of one node. */
class NodeConnections {
  readonly all = new Set<Connection>()
  /** connected and free, most recently used last */
  readonly idle: Array<Connection> = []
  readonly waiting: Array<Pending> = []
  constructor(readonly node: string, readonly host: string, readonly port: number) {}
}

const hostAndPort = (node: string): { readonly host: string; readonly port: number } => {
  const i = node.lastIndexOf(":")
  const host = node.slice(0, i)
  return { host: host.startsWith("[") ? host.slice(1, -1) : host, port: Number(node.slice(i + 1)) }
}

export class ConnectionPool {
  private readonly nodes = new Map<string, NodeConnections>()
  private readonly sweeper: NodeJS.Timeout
  private closed = false

  constructor(private readonly options: PoolOptions) {
    this.sweeper = setInterval(() => this.sweep(), options.sweepMillis)
    this.sweeper.unref()
  }

  /** Sends one request to `node` (`host:port`); `done` is called once with the outcome. */
  send(node: string, request: Request, done: (outcome: Outcome) => void): Pending {
    const { body, method, path, timeoutMillis } = request
    const text = body === undefined
      ? `${method} ${path} HTTP/1.1\r\nHost: ${node}\r\nAccept: application/json\r\n` +
        (method === "GET" ? "\r\n" : "Content-Length: 0\r\n\r\n")
      : `${method} ${path} HTTP/1.1\r\nHost: ${node}\r\nAccept: application/json\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
    const pending = new Pending(node, method, path, text, timeoutMillis, performance.now() + timeoutMillis, done)
    if (this.closed) {
      this.fail(pending, "NotReached", "the gateway is shutting down", undefined)
    } else if (!VALID_PATH.test(path)) {
      this.fail(pending, "NotReached", "invalid request path", undefined)
    } else {
      this.dispatch(this.connectionsOf(node), pending)
    }
    return pending
  }

  /** Stops a request: its callback will not be called. One already sent closes its connection. */
  cancel(pending: Pending): void {
    if (pending.settled) return
    pending.settled = true
    const conn = pending.conn
    if (conn !== undefined) {
      pending.conn = undefined
      conn.current = undefined
      this.discard(conn)
      return
    }
    const host = this.nodes.get(pending.node)
    const i = host === undefined ? -1 : host.waiting.indexOf(pending)
    if (i !== -1) host!.waiting.splice(i, 1)
  }

  /** Fails every request under way and closes every connection; later requests fail at once. */
  close(): void {
    if (this.closed) return
    this.closed = true
    clearInterval(this.sweeper)
    for (const host of this.nodes.values()) {
      for (const pending of host.waiting.splice(0)) this.fail(pending, "NotReached", "the gateway is shutting down", undefined)
      for (const conn of host.all) {
        const pending = conn.current
        if (pending !== undefined) {
          this.detach(conn, pending)
          this.fail(pending, conn.connected ? "Indeterminate" : "NotReached", "the gateway shut down before the answer", undefined)
        }
        this.discard(conn)
      }
    }
  }

  /** Connections open now, per node (for tests and diagnostics). */
  openConnections(node: string): number {
    return this.nodes.get(node)?.all.size ?? 0
  }

  private connectionsOf(node: string): NodeConnections {
    let host = this.nodes.get(node)
    if (host === undefined) {
      const { host: h, port } = hostAndPort(node)
      host = new NodeConnections(node, h, port)
      this.nodes.set(node, host)
    }
    return host
  }

  private dispatch(host: NodeConnections, pending: Pending): void {
    const idle = host.idle.pop()
    if (idle !== undefined) return this.assign(idle, pending)
    if (host.all.size < this.options.maxSockets) return this.openFor(host, pending)
    if (host.waiting.length < this.options.maxWaiting) {
      host.waiting.push(pending)
      return
    }
    this.fail(pending, "Busy", `${host.waiting.length} requests already wait for a connection`, undefined)
  }

  private assign(conn: Connection, pending: Pending): void {
    conn.current = pending
    pending.conn = conn
    if (conn.connected) conn.socket.write(pending.text)
  }

  private detach(conn: Connection, pending: Pending): void {
    conn.current = undefined
    pending.conn = undefined
  }

  /** Opens a connection for `pending`; an address `node:net` refuses outright fails it as not reached. */
  private openFor(host: NodeConnections, pending: Pending): void {
    let socket: Net.Socket
    try {
      socket = Net.connect({ host: host.host, port: host.port, noDelay: true })
    } catch (error) {
      return this.fail(pending, "NotReached", `cannot connect: ${describe(error)}`, error)
    }
    this.assign(this.open(host, socket), pending)
  }

  private open(host: NodeConnections, socket: Net.Socket): Connection {
    const conn = new Connection(host, socket, performance.now(), this.options)
    host.all.add(conn)
    socket.on("connect", () => {
      conn.connected = true
      if (conn.current !== undefined) socket.write(conn.current.text)
    })
    socket.on("data", (chunk: Buffer) => this.onData(conn, chunk))
    socket.on("end", () => {
      const step = conn.parser.end()
      const pending = conn.current
      if (pending !== undefined) {
        this.detach(conn, pending)
        if (step._tag === "Done") this.succeed(pending, step.response)
        else if (step._tag === "Invalid") this.fail(pending, "Indeterminate", step.message, undefined)
      }
      this.discard(conn)
    })
    socket.on("error", (error) => {
      this.discard(conn)
      const pending = conn.current
      if (pending === undefined) return
      this.detach(conn, pending)
      this.fail(pending, conn.connected ? "Indeterminate" : "NotReached", describe(error), error)
    })
    socket.on("close", () => this.onClose(conn))
    return conn
  }

  private onData(conn: Connection, chunk: Buffer): void {
    const pending = conn.current
    if (pending === undefined) {
      // an answer nobody asked for: the connection is out of step
      this.discard(conn)
      return
    }
    const step = conn.parser.feed(chunk)
    switch (step._tag) {
      case "More":
        return
      case "Invalid":
        this.detach(conn, pending)
        this.discard(conn)
        return this.fail(pending, "Indeterminate", `malformed answer: ${step.message}`, undefined)
      case "Done": {
        this.detach(conn, pending)
        const { response } = step
        if (!response.keepAlive || step.trailing) {
          this.discard(conn)
        } else {
          if (response.keepAliveSeconds !== undefined) {
            conn.idleMillis = Math.min(this.options.idleMillis, Math.max(0, response.keepAliveSeconds * 1000 - 1000))
          }
          this.release(conn)
        }
        return this.succeed(pending, response)
      }
    }
  }

  /** A connection is free again: the first waiting request takes it, else it idles. */
  private release(conn: Connection): void {
    const waiting = conn.host.waiting
    if (waiting.length > 0) return this.assign(conn, waiting.shift()!)
    conn.idleSince = -1
    conn.host.idle.push(conn)
  }

  /** Closes a connection now: it leaves the idle list at once (its `close` event comes later). */
  private discard(conn: Connection): void {
    if (!conn.closed) {
      conn.closed = true
      const i = conn.host.idle.indexOf(conn)
      if (i !== -1) conn.host.idle.splice(i, 1)
    }
    conn.socket.destroy()
  }

  private onClose(conn: Connection): void {
    this.discard(conn)
    const host = conn.host
    host.all.delete(conn)
    const pending = conn.current
    if (pending !== undefined) {
      this.detach(conn, pending)
      this.fail(pending, conn.connected ? "Indeterminate" : "NotReached", "the connection closed before an answer", undefined)
    }
    // a waiting request takes the freed slot (if the node is down, it fails NotReached in turn)
    if (!this.closed && host.waiting.length > 0 && host.all.size < this.options.maxSockets) {
      this.openFor(host, host.waiting.shift()!)
    }
    if (host.all.size === 0 && host.waiting.length === 0 && this.nodes.get(host.node) === host) this.nodes.delete(host.node)
  }

  private sweep(): void {
    const now = performance.now()
    for (const host of this.nodes.values()) {
      for (const conn of host.all) {
        if (conn.closed) continue
        const pending = conn.current
        if (pending !== undefined) {
          if (now >= pending.deadline) {
            this.detach(conn, pending)
            this.discard(conn)
            this.fail(
              pending,
              conn.connected ? "Indeterminate" : "NotReached",
              conn.connected ? `no answer within ${pending.timeoutMillis}ms` : `no connection within ${pending.timeoutMillis}ms`,
              undefined
            )
          } else if (!conn.connected && now >= conn.connectDeadline) {
            this.detach(conn, pending)
            this.discard(conn)
            this.fail(pending, "NotReached", `no connection within ${this.options.connectMillis}ms`, undefined)
          }
        } else if (!conn.connected) {
          if (now >= conn.connectDeadline) this.discard(conn)
        } else if (conn.idleSince < 0) {
          conn.idleSince = now
        } else if (now - conn.idleSince >= conn.idleMillis) {
          this.discard(conn)
        }
      }
      if (host.waiting.some((p) => now >= p.deadline)) {
        const expired = host.waiting.filter((p) => now >= p.deadline)
        const kept = host.waiting.filter((p) => now < p.deadline)
        host.waiting.splice(0, host.waiting.length, ...kept)
        for (const pending of expired) {
          this.fail(pending, "Busy", `no free connection within ${pending.timeoutMillis}ms`, undefined)
        }
      }
    }
  }

  private succeed(pending: Pending, response: ParsedResponse): void {
    this.settle(pending, { ok: true, response })
  }

  private fail(pending: Pending, reason: FailureReason, what: string, cause: unknown): void {
    this.settle(pending, {
      ok: false,
      reason,
      message: `${pending.method} ${pending.path} on ${pending.node}: ${what}`,
      cause
    })
  }

  private settle(pending: Pending, outcome: Outcome): void {
    if (pending.settled) return
    pending.settled = true
    try {
      pending.done(outcome)
    } catch (defect) {
      this.options.onDefect(`a callback of a request to ${pending.node} threw`, defect)
    }
  }
}
