import { describe, expect, it } from "../support/vitest.js"
import { Context, Duration, Effect, Either, Fiber, Layer } from "effect"
import * as Net from "node:net"
import type { AddressInfo } from "node:net"
import * as NodeClient from "../../src/gateway/NodeClient.js"
import * as Callback from "../../src/internal/Callback.js"
import * as FakeNode from "./FakeNode.js"

const options = (overrides: Partial<NodeClient.NodeClientOptions> = {}): NodeClient.NodeClientOptions => ({
  ...NodeClient.defaultOptions,
  sweepInterval: Duration.millis(10),
  ...overrides
})

const client = (overrides: Partial<NodeClient.NodeClientOptions> = {}) =>
  Effect.map(Layer.build(NodeClient.layer(options(overrides))), (ctx) => Context.get(ctx, NodeClient.NodeClient))

/** A raw TCP server; `onSocket` decides what happens to each connection. Closed with the scope. */
const rawServer = (onSocket: (socket: Net.Socket) => void) =>
  Effect.acquireRelease(
    Effect.async<{ server: Net.Server; addr: string; sockets: Set<Net.Socket>; connections: () => number }>((resume) => {
      const sockets = new Set<Net.Socket>()
      let connections = 0
      const server = Net.createServer((socket) => {
        connections++
        sockets.add(socket)
        socket.on("close", () => sockets.delete(socket))
        socket.on("error", () => undefined)
        onSocket(socket)
      })
      server.listen(0, "127.0.0.1", () =>
        resume(Effect.succeed({
          server,
          addr: `127.0.0.1:${(server.address() as AddressInfo).port}`,
          sockets,
          connections: () => connections
        })))
    }),
    ({ server, sockets }) =>
      Effect.async<void>((resume) => {
        for (const s of sockets) s.destroy()
        server.close(() => resume(Effect.void))
      })
  )

/** Answers every request (one per chunk of data) after `delayMs` with `answer`. */
const answering = (answer: string, delayMs = 0) => (socket: Net.Socket) =>
  socket.on("data", () => {
    if (delayMs === 0) socket.write(answer)
    else setTimeout(() => socket.writable && socket.write(answer), delayMs)
  })

const ok = (body: string, extra = "") =>
  `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`

const get = { method: "GET", path: "/counter", timeoutMillis: 2000 } as const

const failure = <A>(effect: Effect.Effect<A, NodeClient.NodeRequestError>) =>
  Effect.flatMap(Effect.either(effect), (result) =>
    Either.isLeft(result) ? Effect.succeed(result.left) : Effect.dieMessage(`expected a failure, got ${JSON.stringify(result.right)}`))

/** Polls `ready` until it holds (bounded). */
const waitFor = (ready: () => boolean) =>
  Effect.gen(function*() {
    while (!ready()) yield* Effect.sleep(Duration.millis(5))
  }).pipe(Effect.timeoutFail({ duration: Duration.seconds(5), onTimeout: () => new Error("condition not met in 5s") }))

/** Resolves when `socket` sees the peer's end of stream (its FIN). */
const peerEnded = (socket: Net.Socket) =>
  Effect.async<void>((resume) => {
    if (socket.readableEnded) return resume(Effect.void)
    socket.once("end", () => resume(Effect.void))
    socket.resume() // a paused socket never emits "end"
  })

describe("NodeClient", () => {
  it.scopedLive("reuses keep-alive connections, and opens no more than maxSockets per node", () =>
    Effect.gen(function*() {
      const node = yield* FakeNode.make("a")
      const nodes = yield* client({ maxSockets: 3 })
      for (let i = 0; i < 10; i++) {
        const res = yield* nodes.request(node.addr, { method: "POST", path: "/increment", body: `{"by":2}`, timeoutMillis: 2000 })
        expect(res.status).toBe(200)
        expect(res.json).toEqual({ value: 2 * (i + 1), nodeId: "a" })
      }
      expect(node.connections()).toBe(1)
      const many = yield* Effect.all(
        Array.from({ length: 30 }, () => nodes.request(node.addr, { method: "POST", path: "/increment", timeoutMillis: 2000 })),
        { concurrency: "unbounded" }
      )
      expect(many.every((r) => r.status === 200)).toBe(true)
      expect(node.value()).toBe(50)
      expect(node.connections()).toBeLessThanOrEqual(3)
    }))

  it.scopedLive("reads answers in any framing: chunked, until close, and a 1xx before the answer", () =>
    Effect.gen(function*() {
      const chunked = yield* rawServer(answering(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"va\r\n8\r\nlue\":7}\n\r\n0\r\n\r\n"
      ))
      const untilClose = yield* rawServer((socket) =>
        socket.once("data", () => socket.end("HTTP/1.0 503 Service Unavailable\r\n\r\nnot json"))
      )
      const nodes = yield* client()
      const a = yield* nodes.request(chunked.addr, get)
      expect(a).toEqual({ status: 200, json: { value: 7 }, text: "{\"value\":7}\n" })
      const b = yield* nodes.request(untilClose.addr, get)
      expect(b).toEqual({ status: 503, json: undefined, text: "not json" })
    }))

  it.scopedLive("a refused connection, or an address that cannot be connected to, is NotReached", () =>
    Effect.gen(function*() {
      const dead = yield* FakeNode.deadAddr
      const nodes = yield* client()
      const error = yield* failure(nodes.request(dead, { method: "POST", path: "/increment", timeoutMillis: 2000 }))
      expect(error.reason).toBe("NotReached")
      expect(error.node).toBe(dead)
      expect(error.message).toContain("ECONNREFUSED")
      // an address that cannot be connected to at all (a bad registration, say) fails the same way
      for (const bad of ["127.0.0.1:99999", "no-port"]) {
        const e = yield* failure(nodes.request(bad, get))
        expect(e.reason, bad).toBe("NotReached")
      }
    }))

  it.scopedLive("a request that reached the node and got no complete answer is Indeterminate", () =>
    Effect.gen(function*() {
      const hangUp = yield* rawServer((socket) => socket.once("data", () => socket.destroy()))
      const cut = yield* rawServer((socket) =>
        socket.once("data", () => socket.end("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"val"))
      )
      const garbage = yield* rawServer(answering("SSH-2.0-OpenSSH_9.6\r\n\r\n"))
      const silent = yield* rawServer(() => undefined)
      const nodes = yield* client()
      const post = { method: "POST", path: "/increment", body: "{}", timeoutMillis: 300 } as const
      const e1 = yield* failure(nodes.request(hangUp.addr, post))
      expect(e1.reason).toBe("Indeterminate")
      const e2 = yield* failure(nodes.request(cut.addr, post))
      expect(e2).toMatchObject({ reason: "Indeterminate", message: expect.stringContaining("middle of the answer") })
      const e3 = yield* failure(nodes.request(garbage.addr, post))
      expect(e3).toMatchObject({ reason: "Indeterminate", message: expect.stringContaining("malformed answer") })
      const e4 = yield* failure(nodes.request(silent.addr, post))
      expect(e4).toMatchObject({ reason: "Indeterminate", message: expect.stringContaining("no answer within 300ms") })
      // the silent node's connection was closed by the gateway
      yield* peerEnded([...silent.sockets][0]!)
    }))

  it.scopedLive("requests beyond maxSockets wait, bounded by maxWaiting and their deadline, as Busy", () =>
    Effect.gen(function*() {
      const slow = yield* rawServer(answering(ok("{\"value\":1}"), 150))
      const nodes = yield* client({ maxSockets: 1, maxWaiting: 1 })
      const first = yield* Effect.fork(nodes.request(slow.addr, get))
      yield* Effect.sleep(Duration.millis(20))
      const second = yield* Effect.fork(nodes.request(slow.addr, get))
      yield* Effect.sleep(Duration.millis(20))
      // one in flight, one waiting: the third is refused at once, nothing sent
      const third = yield* failure(nodes.request(slow.addr, get))
      expect(third).toMatchObject({ reason: "Busy", message: expect.stringContaining("1 requests already wait") })
      expect((yield* Fiber.join(first)).status).toBe(200)
      expect((yield* Fiber.join(second)).status).toBe(200)
      // a waiting request whose deadline passes before a connection frees up
      const busy = yield* Effect.fork(nodes.request(slow.addr, get))
      yield* Effect.sleep(Duration.millis(20))
      const late = yield* failure(nodes.request(slow.addr, { ...get, timeoutMillis: 50 }))
      expect(late).toMatchObject({ reason: "Busy", message: expect.stringContaining("no free connection within 50ms") })
      expect((yield* Fiber.join(busy)).status).toBe(200)
      expect(slow.sockets.size).toBe(1)
    }))

  it.scopedLive("closes an idle connection before the node's keep-alive timeout", () =>
    Effect.gen(function*() {
      // the node announces `Keep-Alive: timeout=1` (as node:http does) and never closes itself
      const node = yield* rawServer(answering(ok("{}", "Connection: keep-alive\r\nKeep-Alive: timeout=1\r\n")))
      const nodes = yield* client()
      expect((yield* nodes.request(node.addr, get)).status).toBe(200)
      // the client's FIN arrives: it closed the idle connection
      yield* peerEnded([...node.sockets][0]!)
      // and a later request opens a new one
      expect((yield* nodes.request(node.addr, get)).status).toBe(200)
      expect(node.connections()).toBe(2)
    }))

  it.scopedLive("an interrupted request closes its connection", () =>
    Effect.gen(function*() {
      const silent = yield* rawServer(() => undefined)
      const nodes = yield* client()
      const fiber = yield* Effect.fork(nodes.request(silent.addr, get))
      yield* waitFor(() => silent.sockets.size === 1)
      yield* Fiber.interrupt(fiber)
      yield* peerEnded([...silent.sockets][0]!)
    }))

  it.scopedLive("closing the client fails the requests under way, and later ones at once", () =>
    Effect.gen(function*() {
      let received = 0
      const silent = yield* rawServer((socket) => socket.on("data", () => received++))
      const results: Array<NodeClient.NodeResult> = []
      const closed = yield* Effect.scoped(
        Effect.gen(function*() {
          const nodes = yield* client()
          // the callback level, as the forwarding runs it
          Callback.run(nodes.request(silent.addr, get), (exit) => results.push(NodeClient.resultOf(silent.addr, exit)))
          yield* waitFor(() => received === 1)
          expect(results).toHaveLength(0)
          return nodes
        })
      )
      expect(results).toHaveLength(1)
      expect(results[0]).toMatchObject({ _tag: "Left", left: { reason: "Indeterminate" } })
      Callback.run(closed.request(silent.addr, get), (exit) => results.push(NodeClient.resultOf(silent.addr, exit)))
      expect(results[1]).toMatchObject({ _tag: "Left", left: { reason: "NotReached" } })
    }))
})
