/**
 * The Redis-protocol (RESP2 / RESP3) listener of a node: a scoped layer over the node's
 * `CounterStore` (and `PeerManager`, for INFO), composed by the node role when
 * `--resp-addr` is set.
 *
 * One `node:net` server; per connection a `RespParser`, a `Session` and a queue of reply
 * slots. A chunk of bytes is parsed into commands, and every command is executed at once,
 * in order, before anything is awaited: a write is handed to the store with a callback (no
 * fiber per command), through a `WriteCoalescer` that joins the writes of this turn of the
 * event loop to one counter into one store write, so the writes of one chunk of pipelined
 * commands (and of every connection read in the same turn) reach the WAL together and are
 * made durable by one group commit. Each command takes the next slot;
 * replies are written in slot order, as many as are ready in one socket write, so a reply
 * never overtakes an earlier one that waits for the disk. A command that reads counters
 * (GET, MGET, ...) behind writes of its connection that are not answered yet is held, with
 * everything after it, until they are: it sees them, as it would in Redis.
 *
 * A malformed or oversized frame is answered with an error after the replies of the
 * commands before it, and that connection (only) is closed. A connection stops being read
 * while too many replies wait or its socket does not drain (a client that does not read
 * cannot make the node buffer without bound); the number of connections is bounded too.
 *
 * Closing the layer's scope stops accepting, stops reading every connection, lets the
 * writes in flight settle and their replies go out for up to `drainTimeout`, then destroys
 * what is left. The store outlives this layer, so no acknowledged write is cut short.
 */
import { Cause, Context, Data, Duration, Effect, Exit, Layer, Option, Queue, Runtime } from "effect"
import type { Redacted } from "effect"
import * as Net from "node:net"
import { version as dcounterVersion } from "../../observability/BuildInfo.js"
import { NodeConfig } from "../../config/NodeConfig.js"
import { PeerManager } from "../PeerManager.js"
import { CounterStore, write as storeWrite } from "../CounterStore.js"
import type { CommandContext, Outcome, ServerStats, Session } from "./RespCommands.js"
import { execute, lookup, readsCounters } from "./RespCommands.js"
import * as Metrics from "./RespMetrics.js"
import type { RespLimits } from "./RespParser.js"
import { RespParser, RespProtocolError } from "./RespParser.js"
import type { Protocol, Reply } from "./RespReply.js"
import { encode, error as errorReply } from "./RespReply.js"
import { WriteCoalescer } from "./WriteCoalescer.js"

export interface Address {
  readonly host: string
  readonly port: number
}

/** The running listener: where it listens. */
export class RespServer extends Context.Tag("dcounter/resp/RespServer")<
  RespServer,
  { readonly address: Address }
>() {}

/** The listener could not start: the address is taken or invalid. */
export class RespServerError extends Data.TaggedError("RespServerError")<{
  readonly reason: "Listen"
  readonly message: string
  readonly cause?: unknown
}> {}

export interface RespServerOptions {
  /** `host:port`; port 0 picks a free one (see `RespServer.address`) */
  readonly addr: string
  /** clients must AUTH with it (or HELLO ... AUTH default it) before other commands */
  readonly password?: Option.Option<Redacted.Redacted<string>> | undefined
  readonly limits?: Partial<RespLimits> | undefined
  /** most client connections open at once (default 10,000); more are closed at once */
  readonly maxConnections?: number | undefined
  /** most replies waiting on one connection before it is no longer read (default 1,024) */
  readonly maxPendingReplies?: number | undefined
  /** how long closing waits for writes in flight to be answered (default 2 s) */
  readonly drainTimeout?: Duration.DurationInput | undefined
}

/** Bytes queued on a socket past which the connection is no longer read until it drains. */
const WRITE_HIGH_WATER = 1024 * 1024

const splitHostPort = (addr: string): Address => {
  const i = addr.lastIndexOf(":")
  const host = addr.slice(0, i).replace(/^\[(.*)\]$/, "$1")
  return { host, port: Number(addr.slice(i + 1)) }
}

/** One reply slot: `data` is the encoded reply once it is known. */
interface Slot {
  data: string | undefined
  /** close the connection after this reply (QUIT, a protocol error) */
  readonly close: boolean
}

/** The answer of an Effect-run command that died: logged once per failure by the server's fiber. */
const internalError: Reply = errorReply("ERR internal error")

export const make = (options: RespServerOptions) =>
  Effect.gen(function*() {
    const store = yield* CounterStore
    const peers = yield* PeerManager
    const runtime = yield* Effect.runtime<never>()
    const runSyncExit = Runtime.runSyncExit(runtime)
    const address = splitHostPort(options.addr)
    const password = options.password ?? Option.none()
    const maxPending = options.maxPendingReplies ?? 1024
    const limits = options.limits ?? {}

    const stats: ServerStats = { startedAt: Date.now(), connections: 0, connectionsTotal: 0, commandsTotal: 0 }
    const coalescer = new WriteCoalescer((name, kind, by) => storeWrite(store, name, kind, by))
    const ctx: CommandContext = {
      store,
      submit: coalescer.add,
      peers,
      password,
      addr: options.addr,
      version: dcounterVersion(),
      stats
    }

    /** Defects of Effect-run commands, logged by one fiber (callbacks have none of their own). */
    const defects = yield* Queue.dropping<Cause.Cause<unknown>>(16)
    yield* Queue.take(defects).pipe(
      Effect.flatMap((cause) => Effect.logError("RESP: a command failed unexpectedly", cause)),
      Effect.forever,
      Effect.forkScoped
    )

    const open = new Set<Connection>()
    let nextId = 1
    let closing = false
    let onAllClosed: (() => void) | undefined

    class Connection {
      readonly session: Session
      readonly parser = new RespParser(limits)
      private readonly slots: Array<Slot> = []
      private head = 0
      /** replies still waiting for a write to be durable */
      private unfilled = 0
      /**
       * Commands held back, in order: a read behind writes not yet answered waits for them
       * (it must see them, as in Redis), and so does everything after it.
       */
      private held: Array<ReadonlyArray<string> | RespProtocolError> = []
      private flushScheduled = false
      private paused = false
      /** no more commands are read: a close is pending (QUIT, protocol error, shutdown) */
      private ending = false
      private dead = false

      constructor(readonly socket: Net.Socket) {
        this.session = {
          id: nextId++,
          protocol: 2,
          name: undefined,
          libName: undefined,
          libVersion: undefined,
          authenticated: Option.isNone(password)
        }
      }

      get pending(): number {
        return this.slots.length - this.head + this.held.length
      }

      onData(chunk: Buffer): void {
        if (this.ending) return
        const { commands, error } = this.parser.push(chunk)
        for (let i = 0; i < commands.length; i++) this.next(commands[i]!)
        if (error !== undefined) {
          Metrics.recordProtocolError()
          this.next(error)
        }
        this.flush()
      }

      /** Runs a command now, or holds it (and everything after it) behind unanswered writes. */
      private next(item: ReadonlyArray<string> | RespProtocolError): void {
        if (this.ending) return
        if (this.held.length > 0) {
          this.held.push(item)
          return
        }
        if (item instanceof RespProtocolError) return this.protocolError(item)
        stats.commandsTotal++
        const name = lookup(item[0]!)
        Metrics.recordCommand(name)
        if (this.unfilled > 0 && readsCounters(name)) {
          this.held.push(item)
          return
        }
        this.run(name, item)
      }

      /** Runs the held commands once nothing they must see is in flight. */
      private release(): void {
        while (this.held.length > 0 && !this.ending) {
          const item = this.held[0]!
          if (item instanceof RespProtocolError) {
            this.held = []
            return this.protocolError(item)
          }
          const name = lookup(item[0]!)
          if (this.unfilled > 0 && readsCounters(name)) return
          this.held.shift()
          this.run(name, item)
        }
      }

      private protocolError(error: RespProtocolError): void {
        this.ending = true
        this.slots.push({ data: encode(errorReply(`ERR ${error.message}`), this.session.protocol), close: true })
      }

      private run(name: string | undefined, args: ReadonlyArray<string>): void {
        const protocol = this.session.protocol
        let outcome: Outcome
        try {
          outcome = execute(ctx, this.session, name, args)
        } catch (e) {
          defects.unsafeOffer(Cause.die(e))
          outcome = internalError
        }
        switch (outcome._tag) {
          case "Later": {
            const slot: Slot = { data: undefined, close: false }
            this.slots.push(slot)
            this.unfilled++
            let registering = true
            outcome.register((reply) => {
              slot.data = this.encodeReply(reply, protocol)
              this.unfilled--
              // answered at once (a read of the store): whoever called `run` goes on with the
              // next command and flushes; releasing from here would nest once per command
              if (registering) return
              if (this.unfilled === 0 && this.held.length > 0 && !this.dead) this.release()
              this.scheduleFlush()
            })
            registering = false
            return
          }
          case "Run": {
            const exit = runSyncExit(outcome.effect)
            if (Exit.isFailure(exit)) defects.unsafeOffer(exit.cause)
            this.slots.push({ data: this.encodeReply(Exit.isSuccess(exit) ? exit.value : internalError, protocol), close: false })
            return
          }
          case "Close":
            this.ending = true
            this.slots.push({ data: this.encodeReply(outcome.reply, protocol), close: true })
            return
          default:
            this.slots.push({ data: this.encodeReply(outcome, protocol), close: false })
        }
      }

      private encodeReply(reply: Reply, protocol: Protocol): string {
        if (reply._tag === "Error") Metrics.recordReplyError()
        return encode(reply, protocol)
      }

      private scheduleFlush(): void {
        if (this.flushScheduled) return
        this.flushScheduled = true
        queueMicrotask(() => {
          this.flushScheduled = false
          this.flush()
        })
      }

      /** Writes the replies ready at the head, in order, in one socket write. */
      flush(): void {
        if (this.dead) return
        let out = ""
        let close = false
        while (this.head < this.slots.length) {
          const slot = this.slots[this.head]!
          if (slot.data === undefined) break
          out += slot.data
          this.head++
          if (slot.close) {
            close = true
            break
          }
        }
        if (this.head === this.slots.length) {
          this.slots.length = 0
          this.head = 0
        } else if (this.head > 1024) {
          this.slots.splice(0, this.head)
          this.head = 0
        }
        if (out.length > 0) this.socket.write(out, "latin1")
        if (close) {
          this.ending = true
          this.socket.end()
          return
        }
        if (this.ending && this.pending === 0) {
          // shutting down: nothing more to answer
          this.socket.end()
          return
        }
        this.applyBackpressure()
      }

      private applyBackpressure(): void {
        const full = this.pending >= maxPending || this.socket.writableLength >= WRITE_HIGH_WATER
        if (full && !this.paused) {
          this.paused = true
          this.socket.pause()
        } else if (!full && this.paused && !this.ending) {
          this.paused = false
          this.socket.resume()
        }
      }

      onDrain(): void {
        this.applyBackpressure()
      }

      /** Shutdown: read nothing more; close once the replies in flight are written. */
      stop(): void {
        if (this.ending) return
        this.ending = true
        // commands held behind writes were never started: dropped, as if never read
        this.held = []
        this.socket.pause()
        if (this.pending === 0) this.socket.end()
      }

      onClosed(): void {
        this.dead = true
        this.held = []
        this.slots.length = 0
        this.head = 0
      }
    }

    const server = Net.createServer({ noDelay: true, pauseOnConnect: false }, (socket) => {
      if (closing || open.size >= (options.maxConnections ?? 10_000)) {
        socket.destroy()
        return
      }
      const conn = new Connection(socket)
      open.add(conn)
      stats.connections = open.size
      stats.connectionsTotal++
      Metrics.recordConnections(open.size, true)
      socket.on("data", (chunk: Buffer) => conn.onData(chunk))
      socket.on("drain", () => conn.onDrain())
      // a reset or a write to a closed peer: the close event below cleans up
      socket.on("error", () => socket.destroy())
      socket.on("close", () => {
        conn.onClosed()
        open.delete(conn)
        stats.connections = open.size
        Metrics.recordConnections(open.size, false)
        if (open.size === 0) onAllClosed?.()
      })
    })

    yield* Effect.async<void, RespServerError>((resume) => {
      const onError = (cause: Error) =>
        resume(Effect.fail(
          new RespServerError({
            reason: "Listen",
            message: `cannot listen on ${options.addr} (--resp-addr): ${cause.message}`,
            cause
          })
        ))
      server.once("error", onError)
      server.listen(address.port, address.host, () => {
        server.off("error", onError)
        resume(Effect.void)
      })
    })
    const bound = server.address() as Net.AddressInfo
    const where = `${bound.family === "IPv6" ? `[${bound.address}]` : bound.address}:${bound.port}`

    yield* Effect.addFinalizer(() =>
      Effect.async<void>((resume) => {
        closing = true
        server.close()
        // the writes collected this turn go to the store now, while it still takes them
        coalescer.flush()
        let deadline: NodeJS.Timeout | undefined
        const done = () => {
          if (deadline !== undefined) clearTimeout(deadline)
          onAllClosed = undefined
          resume(Effect.void)
        }
        if (open.size === 0) return done()
        onAllClosed = done
        for (const conn of open) conn.stop()
        deadline = setTimeout(() => {
          for (const conn of open) conn.socket.destroy()
        }, Duration.toMillis(options.drainTimeout ?? Duration.seconds(2)))
      }).pipe(Effect.zipRight(Effect.logInfo(`RESP on ${where} closed`)))
    )
    yield* Effect.logInfo(
      `RESP (Redis protocol) listening on ${where}${Option.isSome(password) ? ", AUTH required" : ""}`
    )
    return RespServer.of({ address: { host: bound.address, port: bound.port } })
  })

/** The listener on `options.addr`, over the node's store (and its peers, for INFO). */
export const layer = (options: RespServerOptions): Layer.Layer<RespServer, RespServerError, CounterStore | PeerManager> =>
  Layer.scoped(RespServer, make(options))

/** The listener on `--resp-addr` with `--resp-password`, or nothing when `--resp-addr` is not set. */
export const layerFromConfig: Layer.Layer<never, RespServerError, CounterStore | PeerManager | NodeConfig> = Layer.unwrapEffect(
  Effect.map(NodeConfig, (config) =>
    Option.match(config.respAddr, {
      onNone: () => Layer.empty,
      onSome: (addr) => Layer.discard(layer({ addr, password: config.respPassword }))
    }))
)
