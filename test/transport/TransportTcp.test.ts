import * as net from "node:net"
import { describe, expect, it } from "../support/vitest.js"
import { Chunk, Effect, Exit, Logger, Metric, Option, Queue, Redacted, Scope as S } from "effect"
import { CounterName } from "../../src/crdt/CounterName.js"
import { ReplicaId } from "../../src/crdt/ReplicaId.js"
import * as Codec from "../../src/protocol/Codec.js"
import * as Frame from "../../src/protocol/Frame.js"
import type { HostPort, Message } from "../../src/protocol/Message.js"
import { Hello, Ping, Push } from "../../src/protocol/Message.js"
import type { Inbound } from "../../src/transport/Transport.js"
import * as Metrics from "../../src/transport/TransportMetrics.js"
import type { TransportTcpOptions } from "../../src/transport/TransportTcp.js"
import * as TransportTcp from "../../src/transport/TransportTcp.js"
import { freePort } from "../support/live.js"

const HOST = "127.0.0.1"

const hello = (addr: HostPort, id: string) =>
  new Hello({ protocol: 1, replicaId: ReplicaId.make(id), gossipAddr: addr, httpAddr: addr })

type Extra = Partial<Omit<TransportTcpOptions, "listen" | "self">>

/** A TCP transport on a fresh (or given) port, in its own scope so a test can stop it. */
const start = (id: string, extra: Extra = {}, port?: number) =>
  Effect.gen(function* () {
    const addr = `${HOST}:${port ?? (yield* freePort)}` as HostPort
    const scope = yield* S.make()
    const tcp = yield* TransportTcp.make({ listen: addr, self: hello(addr, id), clusterKey: Option.none(), ...extra }).pipe(
      S.extend(scope)
    )
    return { ...tcp, addr, stop: S.close(scope, Exit.void) }
  })

const label = (m: Message): string => (m._tag === "Ping" ? `Ping${m.seq}` : m._tag)

/** Takes `n` messages, failing the test instead of hanging. */
const takeN = (inbound: Queue.Dequeue<Inbound>, n: number, seconds = 20) =>
  Queue.takeBetween(inbound, n, n).pipe(
    Effect.map(Chunk.toReadonlyArray),
    Effect.timeoutFail({ duration: `${seconds} seconds`, onTimeout: () => new Error(`fewer than ${n} messages arrived`) })
  )

/** Takes until a Ping with `seq` (inclusive). */
const takeUntil = (inbound: Queue.Dequeue<Inbound>, seq: number, seconds = 20) =>
  Effect.gen(function* () {
    const seen: Array<string> = []
    while (true) {
      const next = yield* Queue.take(inbound)
      seen.push(label(next.message))
      if (next.message._tag === "Ping" && next.message.seq === seq) return seen
    }
  }).pipe(Effect.timeoutFail({ duration: `${seconds} seconds`, onTimeout: () => new Error(`Ping${seq} never arrived`) }))

const frameOf = (m: Message, key?: string) => Frame.encode(Codec.encode(m), key)

/** A raw client socket, destroyed with the scope; `closed` resolves when the server closes it. */
const rawClient = (addr: HostPort) =>
  Effect.acquireRelease(
    Effect.async<{ socket: net.Socket; closed: Promise<void> }, Error>((resume) => {
      const [host, port] = [addr.slice(0, addr.lastIndexOf(":")), Number(addr.slice(addr.lastIndexOf(":") + 1))]
      const socket = net.connect({ host, port })
      const closed = new Promise<void>((done) => socket.once("close", () => done()))
      socket.on("data", () => {})
      socket.once("error", (e) => resume(Effect.fail(e)))
      socket.once("connect", () => resume(Effect.succeed({ socket, closed })))
    }),
    ({ socket }) => Effect.sync(() => socket.destroy())
  )

const waitClosed = (closed: Promise<void>, what: string) =>
  Effect.promise(() => closed).pipe(
    Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error(`${what}: connection was not closed`) })
  )

const write = (socket: net.Socket, bytes: Uint8Array) =>
  Effect.async<void>((resume) => {
    socket.write(bytes, () => resume(Effect.void))
  })

/** Polls `check` every 25 ms until `ok`, for at most 5 s. */
const eventually = <A, E, R>(check: Effect.Effect<A, E, R>, ok: (a: A) => boolean, what: string) =>
  Effect.gen(function* () {
    for (let i = 0; i < 200; i++) {
      const a = yield* check
      if (ok(a)) return a
      yield* Effect.sleep("25 millis")
    }
    return yield* Effect.fail(new Error(`timed out waiting: ${what}`))
  })

const pings = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `Ping${from + i}`)

describe("TransportTcp", () => {
  it.scopedLive("10,000 messages arrive complete and in order, with and without a cluster key", () =>
    Effect.gen(function* () {
      for (const clusterKey of [Option.none(), Option.some(Redacted.make("s3cret"))]) {
        const a = yield* start("a", { clusterKey, sendQueueSize: 10_000 })
        const b = yield* start("b", { clusterKey })
        for (let i = 0; i < 10_000; i++) expect(yield* a.transport.send(b.addr, new Ping({ seq: i }))).toBe(true)
        const got = yield* takeN(b.transport.inbound, 10_001)
        expect(got[0]!.message).toEqual(hello(a.addr, "a"))
        expect(got.every((x) => x.from.replicaId === "a")).toBe(true)
        expect(got.slice(1).map((x) => label(x.message))).toEqual(pings(0, 10_000))
        const [state] = yield* a.transport.connections
        expect(state).toMatchObject({ addr: b.addr, status: "connected", sent: 10_000, queued: 0, dropped: 0 })
        const stats = yield* b.transport.stats
        expect(stats).toMatchObject({ framesIn: 10_001, framesRejected: 0, connectionsIn: 1 })
        expect(stats.bytesIn).toBe((yield* a.transport.stats).bytesOut)
        yield* a.stop
        yield* b.stop
      }
    }))

  it.scopedLive("large messages spanning many reads arrive intact and in order", () =>
    Effect.gen(function* () {
      const a = yield* start("a", { clusterKey: Option.some(Redacted.make("k")) })
      const b = yield* start("b", { clusterKey: Option.some(Redacted.make("k")) })
      const pushes = Array.from(
        { length: 30 },
        (_, k) =>
          new Push({
            full: true,
            entries: Array.from(
              { length: 1500 + k * 97 },
              (_, i) => [CounterName.make(`counter-${k}-${i}`), ReplicaId.make("a"), i * k, k] as const
            ),
            digest: `d${k}`
          })
      )
      for (const p of pushes) expect(yield* a.transport.send(b.addr, p)).toBe(true)
      const got = yield* takeN(b.transport.inbound, 31)
      expect(got.slice(1).map((x) => x.message)).toEqual(pushes)
    }))

  it.scopedLive("understands a raw socket writing valid frames one byte at a time", () =>
    Effect.gen(function* () {
      const b = yield* start("b", { clusterKey: Option.some(Redacted.make("k")) })
      const client = yield* rawClient(b.addr)
      const me = hello("127.0.0.1:9999" as HostPort, "raw")
      const bytes = Buffer.concat([me, new Ping({ seq: 1 }), new Ping({ seq: 2 })].map((m) => frameOf(m, "k")))
      for (const byte of bytes) {
        yield* write(client.socket, Uint8Array.of(byte))
        yield* Effect.sleep("1 millis")
      }
      const got = yield* takeN(b.transport.inbound, 3)
      expect(got.map((x) => label(x.message))).toEqual(["Hello", "Ping1", "Ping2"])
      expect(got[2]!.from).toEqual(me)
    }))

  it.scopedLive("garbage, an oversized length and a wrong HMAC close only that connection", () =>
    Effect.gen(function* () {
      const warnings: Array<string> = []
      const capture = Logger.replace(
        Logger.defaultLogger,
        Logger.make(({ logLevel, message }) => {
          if (logLevel._tag === "Warning") warnings.push(String(Array.isArray(message) ? message.join(" ") : message))
        })
      )
      const key = Option.some(Redacted.make("right"))
      const b = yield* start("b", { clusterKey: key }).pipe(Effect.provide(capture))
      const a = yield* start("a", { clusterKey: key })
      yield* a.transport.send(b.addr, new Ping({ seq: 0 }))
      expect((yield* takeN(b.transport.inbound, 2)).map((x) => label(x.message))).toEqual(["Hello", "Ping0"])

      const before = {
        malformed: (yield* Metric.value(Metrics.framesRejected.malformed)).count,
        too_large: (yield* Metric.value(Metrics.framesRejected.too_large)).count,
        unauthenticated: (yield* Metric.value(Metrics.framesRejected.unauthenticated)).count
      }
      const me = hello("127.0.0.1:9999" as HostPort, "raw")
      const oversized = Buffer.alloc(6)
      oversized.writeUInt32BE(Frame.DEFAULT_MAX_FRAME_BYTES + 1)
      const cases: Array<[string, Uint8Array]> = [
        ["garbage", Buffer.from([0, 0, 0, 9, 0x47, 0x45, 0x54, 0x20, 0x2f, 0x20, 0x48, 0x54, 0x54])],
        ["oversized", oversized],
        ["wrong hmac", frameOf(me, "wrong")]
      ]
      const remotes: Array<string> = []
      for (const [what, bytes] of cases) {
        const client = yield* rawClient(b.addr)
        remotes.push(`127.0.0.1:${client.socket.localPort}`)
        yield* write(client.socket, bytes)
        yield* waitClosed(client.closed, what)
        // the good connection and the listener keep serving
        yield* a.transport.send(b.addr, new Ping({ seq: remotes.length }))
        expect((yield* takeN(b.transport.inbound, 1)).map((x) => label(x.message))).toEqual([`Ping${remotes.length}`])
      }
      const c = yield* start("c", { clusterKey: key })
      yield* c.transport.send(b.addr, new Ping({ seq: 9 }))
      expect((yield* takeN(b.transport.inbound, 2)).map((x) => label(x.message))).toEqual(["Hello", "Ping9"])

      const stats = yield* b.transport.stats
      expect(stats.framesRejected).toBe(3)
      expect((yield* Metric.value(Metrics.framesRejected.malformed)).count).toBe(before.malformed + 1)
      expect((yield* Metric.value(Metrics.framesRejected.too_large)).count).toBe(before.too_large + 1)
      expect((yield* Metric.value(Metrics.framesRejected.unauthenticated)).count).toBe(before.unauthenticated + 1)
      // logged once each, at warn, with the remote address
      const rejections = warnings.filter((w) => w.includes("rejected a frame"))
      expect(rejections).toHaveLength(3)
      remotes.forEach((remote, i) => expect(rejections[i]).toContain(remote))
    }))

  it.scopedLive("closes a connection whose first frame is not a Hello, or that sends none in time", () =>
    Effect.gen(function* () {
      const b = yield* start("b", { handshakeTimeout: "200 millis" })
      const before = (yield* Metric.value(Metrics.framesRejected.handshake)).count
      const early = yield* rawClient(b.addr)
      yield* write(early.socket, frameOf(new Ping({ seq: 1 })))
      yield* waitClosed(early.closed, "ping before hello")
      expect((yield* Metric.value(Metrics.framesRejected.handshake)).count).toBe(before + 1)
      const silent = yield* rawClient(b.addr)
      yield* waitClosed(silent.closed, "silent")
      expect(yield* Queue.size(b.transport.inbound)).toBe(0)
      // a connection that said Hello in time stays open past the deadline
      const polite = yield* rawClient(b.addr)
      yield* write(polite.socket, frameOf(hello("127.0.0.1:9999" as HostPort, "raw")))
      yield* Effect.sleep("400 millis")
      expect(polite.socket.destroyed).toBe(false)
      expect((yield* b.transport.stats).connectionsIn).toBe(1)
    }))

  it.scopedLive("refuses inbound connections over the limit", () =>
    Effect.gen(function* () {
      const b = yield* start("b", { maxInboundConnections: 2 })
      const first = yield* rawClient(b.addr)
      const second = yield* rawClient(b.addr)
      yield* eventually(b.transport.stats, (s) => s.connectionsIn === 2, "two connections")
      const third = yield* rawClient(b.addr)
      yield* waitClosed(third.closed, "third")
      expect(first.socket.destroyed || second.socket.destroyed).toBe(false)
    }))

  it.scopedLive("a full inbound queue pauses the sender instead of dropping", () =>
    Effect.gen(function* () {
      const a = yield* start("a", { sendQueueSize: 5000 })
      const b = yield* start("b", { inboundQueueSize: 8 })
      for (let i = 0; i < 3000; i++) yield* a.transport.send(b.addr, new Ping({ seq: i }))
      yield* eventually(Queue.size(b.transport.inbound), (n) => n >= 8, "inbound queue full")
      yield* Effect.sleep("100 millis")
      const got = yield* takeN(b.transport.inbound, 3001)
      expect(got.slice(1).map((x) => label(x.message))).toEqual(pings(0, 3000))
      expect((yield* a.transport.connections)[0]!.dropped).toBe(0)
    }))

  it.scopedLive("reconnects to a peer that went away and came back", () =>
    Effect.gen(function* () {
      const fast = { backoffBase: "20 millis", backoffCap: "200 millis", maxConnectAttempts: 1000 } as const
      const a = yield* start("a", fast)
      const b1 = yield* start("b1")
      const port = Number(b1.addr.split(":")[1])
      yield* a.transport.send(b1.addr, new Ping({ seq: 0 }))
      expect((yield* takeN(b1.transport.inbound, 2)).map((x) => label(x.message))).toEqual(["Hello", "Ping0"])
      yield* b1.stop
      // while it is gone, A notices and backs off
      yield* a.transport.send(b1.addr, new Ping({ seq: 1 }))
      const down = yield* eventually(
        Effect.map(a.transport.connections, (cs) => cs[0]!),
        (c) => c.status !== "connected" && c.lastError !== undefined,
        "A sees the peer down"
      )
      expect(down.lastError).toBeDefined()
      const b2 = yield* start("b2", {}, port)
      // later messages arrive, behind a fresh Hello
      const seen: Array<string> = []
      for (let seq = 100; ; seq++) {
        yield* a.transport.send(b2.addr, new Ping({ seq }))
        const next = yield* Queue.poll(b2.transport.inbound).pipe(Effect.delay("20 millis"))
        if (Option.isSome(next)) {
          seen.push(label(next.value.message))
          expect(next.value.from.replicaId).toBe("a")
          break
        }
        if (seq > 400) return yield* Effect.fail(new Error("never reconnected"))
      }
      expect(seen[0]).toBe("Hello")
      yield* a.transport.send(b2.addr, new Ping({ seq: 1000 }))
      const rest = yield* takeUntil(b2.transport.inbound, 1000)
      expect(rest.at(-1)).toBe("Ping1000")
      expect(rest.filter((s) => s === "Hello")).toHaveLength(0)
      expect((yield* a.transport.connections)[0]).toMatchObject({ status: "connected" })
    }))

  it.scopedLive("backs off from an unreachable peer and drops its queue after the last attempt", () =>
    Effect.gen(function* () {
      const a = yield* start("a", { backoffBase: "10 millis", backoffCap: "50 millis", maxConnectAttempts: 3 })
      const nobody = `${HOST}:${yield* freePort}` as HostPort
      for (let i = 0; i < 5; i++) yield* a.transport.send(nobody, new Ping({ seq: i }))
      const state = yield* eventually(
        Effect.map(a.transport.connections, (cs) => cs[0]!),
        (c) => c.dropped === 5,
        "queue dropped"
      )
      expect(state).toMatchObject({ status: "backoff", queued: 0, sent: 0 })
      expect(state.lastError).toMatch(/ECONNREFUSED/)
    }))

  it.scopedLive("dials from the host of its own listen address", () =>
    Effect.gen(function* () {
      const port = yield* freePort
      const a = yield* start("a", {}, port)
      // a second transport on 127.0.0.2
      const addr2 = `127.0.0.2:${yield* freePort}` as HostPort
      const scope = yield* S.make()
      const a2 = yield* TransportTcp.make({ listen: addr2, self: hello(addr2, "a2"), clusterKey: Option.none() }).pipe(
        S.extend(scope)
      )
      const remote = yield* Effect.async<string>((resume) => {
        const server = net.createServer((socket) => {
          resume(Effect.succeed(String(socket.remoteAddress)))
          socket.destroy()
          server.close()
        })
        server.listen(0, HOST, () => {
          const address = server.address()
          const target = `${HOST}:${typeof address === "object" && address !== null ? address.port : 0}` as HostPort
          Effect.runFork(a2.transport.send(target, new Ping({ seq: 1 })))
        })
      }).pipe(Effect.timeout("5 seconds"))
      expect(remote).toBe("127.0.0.2")
      yield* S.close(scope, Exit.void)
      yield* a.stop
    }))

  it.scopedLive("drops a message over the frame limit instead of sending it; forget closes the connection", () =>
    Effect.gen(function* () {
      const a = yield* start("a", { maxFrameBytes: 200 })
      const b = yield* start("b")
      const entries = Array.from({ length: 50 }, (_, i) => [CounterName.make(`c${i}`), ReplicaId.make("a"), i, 0] as const)
      yield* a.transport.send(b.addr, new Push({ full: true, entries, digest: "d" }))
      yield* a.transport.send(b.addr, new Ping({ seq: 1 }))
      expect((yield* takeN(b.transport.inbound, 2)).map((x) => label(x.message))).toEqual(["Hello", "Ping1"])
      expect((yield* a.transport.connections)[0]).toMatchObject({ sent: 1, dropped: 1 })
      yield* a.transport.forget(b.addr)
      expect(yield* a.transport.connections).toEqual([])
      yield* eventually(b.transport.stats, (s) => s.connectionsIn === 0, "connection closed")
    }))

  it.scopedLive("after scope close the port can be bound again at once", () =>
    Effect.gen(function* () {
      const a = yield* start("a")
      const b = yield* start("b")
      yield* a.transport.send(b.addr, new Ping({ seq: 1 }))
      yield* b.transport.send(a.addr, new Ping({ seq: 1 }))
      yield* takeN(b.transport.inbound, 2)
      yield* takeN(a.transport.inbound, 2)
      expect((yield* b.transport.stats).connectionsIn).toBe(1)
      const port = Number(b.addr.split(":")[1])
      yield* b.stop
      yield* a.stop
      expect(yield* Queue.isShutdown(b.transport.inbound)).toBe(true)
      // a plain listener gets the port right away
      yield* Effect.async<void, Error>((resume) => {
        const server = net.createServer()
        server.once("error", (e) => resume(Effect.fail(e)))
        server.listen({ host: HOST, port, exclusive: true }, () => server.close(() => resume(Effect.void)))
      })
      // and so does a new transport
      const again = yield* start("b-again", {}, port)
      expect(again.addr).toBe(b.addr)
      yield* again.stop
      // sends after close are refused, not thrown
      expect(yield* a.transport.send(b.addr, new Ping({ seq: 2 }))).toBe(false)
    }))

  it.scopedLive("a listen address in use is a typed ListenFailed", () =>
    Effect.gen(function* () {
      const a = yield* start("a")
      const exit = yield* Effect.exit(
        TransportTcp.make({ listen: a.addr, self: hello(a.addr, "x"), clusterKey: Option.none() })
      )
      expect(exit).toMatchObject({ _tag: "Failure" })
      if (Exit.isFailure(exit)) expect(JSON.stringify(exit.cause)).toContain("ListenFailed")
    }))
})
