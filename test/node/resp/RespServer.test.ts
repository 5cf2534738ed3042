/**
 * The Redis-protocol listener over real sockets, on a memory node: real clients (node-redis
 * `@redis/client`, RESP2 and RESP3, pipelined and not; Debian's `redis-cli`, plain and
 * `--pipe`), the errors Redis clients expect, AUTH, and hostile input (random and mutated
 * frames, a 1 GB bulk length) that never changes state nor stops the server.
 */
import { describe, expect, it } from "../../support/vitest.js"
import { createClient } from "@redis/client"
import { Context, Effect, FastCheck as fc, Layer, Logger, LogLevel, Metric, Option, Redacted } from "effect"
import type { Scope } from "effect"
import { spawn } from "node:child_process"
import * as Net from "node:net"
import { NodeConfig } from "../../../src/config/NodeConfig.js"
import * as CounterStore from "../../../src/node/CounterStore.js"
import * as NodeRole from "../../../src/node/NodeRole.js"
import { encodeCommand } from "../../../src/node/resp/RespParser.js"
import * as RespMetrics from "../../../src/node/resp/RespMetrics.js"
import * as RespServer from "../../../src/node/resp/RespServer.js"
import * as MemoryDisk from "../../../src/storage/MemoryDisk.js"
import { MemoryNetwork } from "../../../src/transport/MemoryNetwork.js"

/** A memory node with its RESP listener on a free port. */
const startServer = (options: Partial<RespServer.RespServerOptions> = {}) =>
  Effect.gen(function*() {
    const ctx = yield* Layer.build(
      RespServer.layer({ addr: "127.0.0.1:0", ...options }).pipe(
        Layer.provideMerge(NodeRole.layerMemory(MemoryDisk.make())),
        Layer.provideMerge(NodeConfig.layer({}))
      )
    )
    return { port: Context.get(ctx, RespServer.RespServer).address.port, store: Context.get(ctx, CounterStore.CounterStore) }
  }).pipe(Effect.provide(MemoryNetwork.layer()))

const live = <A, E>(name: string, f: Effect.Effect<A, E, Scope.Scope>, timeout = 30_000) =>
  it.live(name, () => Effect.scoped(f).pipe(Logger.withMinimumLogLevel(LogLevel.None)), timeout)

/** A connected node-redis client, closed with the scope. */
const client = (port: number, options: { readonly RESP?: 2 | 3; readonly password?: string } = {}) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const c = createClient({
        socket: { host: "127.0.0.1", port, reconnectStrategy: false },
        RESP: options.RESP ?? 2,
        ...(options.password === undefined ? {} : { password: options.password })
      })
      c.on("error", () => {})
      await c.connect()
      return c
    }),
    (c) => Effect.promise(() => c.close().catch(() => undefined))
  )

/** Runs `redis-cli` with the arguments (and stdin); its stdout. */
const redisCli = (port: number, args: ReadonlyArray<string>, stdin?: Buffer) =>
  Effect.async<string, Error>((resume) => {
    const child = spawn("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...args], { stdio: ["pipe", "pipe", "pipe"] })
    let out = ""
    let err = ""
    child.stdout.on("data", (d: Buffer) => (out += d.toString()))
    child.stderr.on("data", (d: Buffer) => (err += d.toString()))
    child.on("error", (e) => resume(Effect.fail(e)))
    child.on("exit", (code) =>
      resume(code === 0 ? Effect.succeed(out) : Effect.fail(new Error(`redis-cli exited ${code}: ${err}${out}`)))
    )
    child.stdin.end(stdin ?? Buffer.alloc(0))
    return Effect.sync(() => child.kill("SIGKILL"))
  })

/** Sends raw bytes on a fresh connection; everything answered until the server closes it (or `ms` passes). */
const raw = (port: number, bytes: Buffer, ms = 2000) =>
  Effect.async<{ readonly reply: string; readonly closed: boolean }>((resume) => {
    const socket = Net.connect(port, "127.0.0.1")
    let reply = ""
    let done = false
    const finish = (closed: boolean) => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      resume(Effect.succeed({ reply, closed }))
    }
    const timer = setTimeout(() => finish(false), ms)
    socket.on("data", (d: Buffer) => (reply += d.toString("latin1")))
    socket.on("error", () => finish(true))
    socket.on("close", () => finish(true))
    socket.write(bytes)
  })

describe("RESP server with real clients", () => {
  live("node-redis over RESP2 and RESP3: INCR, INCRBY, DECRBY, GET, MGET, EXISTS, SCAN, pipelined and not", Effect.gen(function*() {
    const { port } = yield* startServer()
    for (const RESP of [2, 3] as const) {
      const c = yield* client(port, { RESP })
      const k = `likes:${RESP}`
      expect(yield* Effect.promise(() => c.get(k))).toBeNull()
      expect(yield* Effect.promise(() => c.incr(k))).toBe(1)
      expect(yield* Effect.promise(() => c.incrBy(k, 10))).toBe(11)
      expect(yield* Effect.promise(() => c.decrBy(k, 4))).toBe(7)
      expect(yield* Effect.promise(() => c.decr(k))).toBe(6)
      expect(yield* Effect.promise(() => c.incrBy(k, -6))).toBe(0)
      // written, back at 0: "0", not nil
      expect(yield* Effect.promise(() => c.get(k))).toBe("0")
      // pipelined: one batch of commands in one write, replies in order
      const replies = yield* Effect.promise(() =>
        c.multi().incr(`${k}:a`).incrBy(`${k}:a`, 5).decr(`${k}:b`).get(`${k}:a`).mGet([`${k}:a`, `${k}:b`, "none"]).exec(true)
      )
      expect(replies).toEqual([1, 6, -1, "6", ["6", "-1", null]])
      // auto-pipelining of concurrent commands: every reply is the right one
      const many = yield* Effect.promise(() => Promise.all(Array.from({ length: 200 }, () => c.incr(`${k}:many`))))
      expect([...many].sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1))
      expect(many).toEqual(Array.from({ length: 200 }, (_, i) => i + 1))
      expect(yield* Effect.promise(() => c.exists([k, `${k}:a`, "none"]))).toBe(2)
      expect(yield* Effect.promise(() => c.ping())).toBe("PONG")
      expect(yield* Effect.promise(() => c.echo("hé\r\n"))).toBe("hé\r\n")
    }
    // SCAN through every counter in small steps, with and without MATCH
    const c = yield* client(port, { RESP: 3 })
    yield* Effect.promise(() => Promise.all(Array.from({ length: 25 }, (_, i) => c.incr(`scan:${String(i).padStart(2, "0")}`))))
    const scanAll = (match?: string) =>
      Effect.promise(async () => {
        const keys: Array<string> = []
        let cursor = "0"
        let calls = 0
        do {
          const r = await c.scan(cursor, { COUNT: 7, ...(match === undefined ? {} : { MATCH: match }) })
          cursor = String(r.cursor)
          keys.push(...r.keys)
          calls++
        } while (cursor !== "0" && calls < 100)
        return keys
      })
    const everything = yield* scanAll()
    expect(everything.filter((k) => k.startsWith("scan:")).length).toBe(25)
    expect(new Set(everything).size).toBe(everything.length)
    expect(yield* scanAll("scan:1*")).toEqual(Array.from({ length: 10 }, (_, i) => `scan:1${i}`))
    expect(yield* scanAll("nothing*")).toEqual([])
  }))

  live("Redis's errors: counters only, bad names, not an integer, overflow; state unchanged", Effect.gen(function*() {
    const { port, store } = yield* startServer()
    const c = yield* client(port)
    yield* Effect.promise(() => c.incrBy("k", 5))
    const error = (p: () => Promise<unknown>) =>
      Effect.promise(() => p().then(() => "no error", (e: unknown) => (e instanceof Error ? e.message : String(e))))
    expect(yield* error(() => c.set("k", "1"))).toMatch(/^ERR dcounter holds counters only: 'SET' is not supported/)
    expect(yield* error(() => c.del("k"))).toMatch(/^ERR dcounter holds counters only/)
    expect(yield* error(() => c.expire("k", 10))).toMatch(/^ERR dcounter holds counters only/)
    expect(yield* error(() => c.incr("bad name"))).toBe("ERR invalid counter name")
    expect(yield* error(() => c.get("x".repeat(129)))).toBe("ERR invalid counter name")
    expect(yield* error(() => c.sendCommand(["INCRBY", "k", "1.5"]))).toBe("ERR value is not an integer or out of range")
    expect(yield* error(() => c.sendCommand(["INCRBY", "k", "99999999999999999999"]))).toBe(
      "ERR value is not an integer or out of range"
    )
    expect(yield* error(() => c.sendCommand(["INCRBY", "k", "9223372036854775807"]))).toBe(
      "ERR increment or decrement would overflow"
    )
    expect(yield* error(() => c.incrBy("big", Number.MAX_SAFE_INTEGER).then(() => c.incr("big")))).toBe(
      "ERR increment or decrement would overflow"
    )
    expect(yield* error(() => c.sendCommand(["INCR"]))).toBe("ERR wrong number of arguments for 'incr' command")
    expect(yield* error(() => c.sendCommand(["SELECT", "1"]))).toBe("ERR DB index is out of range")
    expect(yield* Effect.promise(() => c.sendCommand(["SELECT", "0"]))).toBe("OK")
    // no --resp-password: the default user takes any password, a bare AUTH is refused
    expect(yield* error(() => c.sendCommand(["AUTH", "pw"]))).toMatch(/^ERR AUTH <password> called without any password/)
    expect(yield* Effect.promise(() => c.sendCommand(["AUTH", "default", "pw"]))).toBe("OK")
    expect(yield* store.values).toEqual([{ name: "big", value: Number.MAX_SAFE_INTEGER }, { name: "k", value: 5 }])
  }))

  live("a pipelined read sees the writes before it, and not the ones after it", Effect.gen(function*() {
    const { port } = yield* startServer()
    const cmds = [["INCR", "r"], ["GET", "r"], ["INCRBY", "r", "5"], ["MGET", "r", "none"], ["DECR", "r"], ["EXISTS", "r"], ["GET", "r"]]
    const bad = Buffer.from("*1\r\n:x\r\n")
    const r = yield* raw(port, Buffer.concat([...cmds.map(encodeCommand), bad]))
    expect(r.reply).toBe(
      ":1\r\n$1\r\n1\r\n:6\r\n*2\r\n$1\r\n6\r\n$-1\r\n:5\r\n:1\r\n$1\r\n5\r\n" +
        "-ERR Protocol error: expected '$', got ':'\r\n"
    )
    expect(r.closed).toBe(true)
  }))

  live("thousands of pipelined GETs held behind a write are answered in order", Effect.gen(function*() {
    // a GET is answered at once from the store's Callback; releasing the held commands must
    // not nest one call per command (a deep enough pipeline would overflow the stack)
    const { port } = yield* startServer()
    const n = 5000
    const bytes = Buffer.concat([
      encodeCommand(["INCR", "g"]),
      ...Array.from({ length: n }, () => encodeCommand(["GET", "g"])),
      encodeCommand(["GET", "never-written"]),
      encodeCommand(["QUIT"])
    ])
    const r = yield* raw(port, bytes, 10_000)
    expect(r.reply).toBe(":1\r\n" + "$1\r\n1\r\n".repeat(n) + "$-1\r\n+OK\r\n")
    expect(r.closed).toBe(true)
  }))

  live("HELLO, CLIENT, INFO, COMMAND, QUIT", Effect.gen(function*() {
    const { port } = yield* startServer()
    const c = yield* client(port, { RESP: 3 })
    const hello = (yield* Effect.promise(() => c.sendCommand(["HELLO", "3"]))) as unknown as Record<string, unknown> | Map<string, unknown>
    const proto = hello instanceof Map ? hello.get("proto") : hello["proto"]
    expect(proto).toBe(3)
    expect(yield* Effect.promise(() => c.sendCommand(["CLIENT", "SETNAME", "me"]))).toBe("OK")
    expect(yield* Effect.promise(() => c.sendCommand(["CLIENT", "GETNAME"]))).toBe("me")
    yield* Effect.promise(() => c.incr("i"))
    const info = String(yield* Effect.promise(() => c.info()))
    expect(info).toMatch(/# Server\r\nredis_version:/)
    expect(info).toMatch(/role:master/)
    expect(info).toMatch(/db0:keys=1,expires=0,avg_ttl=0/)
    expect(yield* Effect.promise(() => c.sendCommand(["COMMAND", "COUNT"]))).toBeGreaterThan(10)
    const quit = yield* raw(port, Buffer.concat([encodeCommand(["PING"]), encodeCommand(["QUIT"]), encodeCommand(["PING"])]))
    expect(quit).toEqual({ reply: "+PONG\r\n+OK\r\n", closed: true })
  }))

  live("AUTH with --resp-password: NOAUTH before, WRONGPASS for a bad one, OK after", Effect.gen(function*() {
    const { port, store } = yield* startServer({ password: Option.some(Redacted.make("s3cret")) })
    const before = yield* raw(port, Buffer.concat([encodeCommand(["INCR", "k"]), encodeCommand(["AUTH", "nope"]), encodeCommand(["GET", "k"])]), 500)
    expect(before.reply).toBe(
      "-NOAUTH Authentication required.\r\n-WRONGPASS invalid username-password pair or user is disabled.\r\n" +
        "-NOAUTH Authentication required.\r\n"
    )
    expect(yield* store.values).toEqual([])
    const c = yield* client(port, { password: "s3cret", RESP: 3 })
    expect(yield* Effect.promise(() => c.incr("k"))).toBe(1)
  }))

  live("redis-cli: commands, RESP3, and --pipe (1,000 pipelined INCRs)", Effect.gen(function*() {
    const { port, store } = yield* startServer()
    expect(yield* redisCli(port, ["INCRBY", "cli", "41"])).toBe("41\n")
    expect(yield* redisCli(port, ["-3", "INCR", "cli"])).toBe("42\n")
    expect(yield* redisCli(port, ["DECRBY", "cli", "2"])).toBe("40\n")
    expect(yield* redisCli(port, ["GET", "cli"])).toBe("40\n")
    expect(yield* redisCli(port, ["MGET", "cli", "none"])).toBe("40\n\n")
    expect(yield* redisCli(port, ["--scan", "--pattern", "c*"])).toBe("cli\n")
    const pipe = yield* redisCli(port, ["--pipe"], Buffer.concat(Array.from({ length: 1000 }, () => encodeCommand(["INCR", "piped"]))))
    expect(pipe).toMatch(/errors: 0, replies: 1000/)
    expect(yield* store.value("piped" as never)).toBe(1000)
  }))
})

describe("RESP server under hostile input", () => {
  live("a 1 GB bulk length gets an error and only that connection is closed", Effect.gen(function*() {
    const { port } = yield* startServer()
    const protocolErrors = Metric.tagged(RespMetrics.errorsTotal, "kind", "protocol")
    const errorsBefore = (yield* Metric.value(protocolErrors)).count
    const c = yield* client(port)
    const r = yield* raw(port, Buffer.from("*2\r\n$4\r\nECHO\r\n$1073741824\r\nxxxx"))
    expect(r).toEqual({ reply: "-ERR Protocol error: invalid bulk length\r\n", closed: true })
    const many = yield* raw(port, Buffer.from("*99999999\r\n"))
    expect(many).toEqual({ reply: "-ERR Protocol error: invalid multibulk length\r\n", closed: true })
    const long = yield* raw(port, Buffer.alloc(200_000, 0x61))
    expect(long).toEqual({ reply: "-ERR Protocol error: too big inline request\r\n", closed: true })
    // replies before the bad frame are sent, in order, first
    const mixed = yield* raw(port, Buffer.concat([encodeCommand(["INCR", "m"]), Buffer.from("*1\r\n:x\r\n")]))
    expect(mixed).toEqual({ reply: ":1\r\n-ERR Protocol error: expected '$', got ':'\r\n", closed: true })
    // the other client never noticed
    expect(yield* Effect.promise(() => c.incr("m"))).toBe(2)
    // counted in /metrics (the registry is global: other tests may add to it)
    expect((yield* Metric.value(protocolErrors)).count - errorsBefore).toBeGreaterThanOrEqual(4)
    expect((yield* Metric.value(Metric.tagged(RespMetrics.commandsTotal, "command", "incr"))).count).toBeGreaterThanOrEqual(2)
  }))

  live("random and mutated frames never crash the server nor change state", Effect.gen(function*() {
    const { port, store } = yield* startServer({ limits: { maxBulkBytes: 4096 } })
    const c = yield* client(port)
    yield* Effect.promise(() => c.incrBy("fuzz", 7))
    const before = yield* store.values
    // commands that never write, so no mutation of one byte can turn them into a write
    const readOnly = fc.constantFrom(["GET", "fuzz"], ["ECHO", "hello"], ["PING"], ["EXISTS", "fuzz"], ["SCAN", "0"], ["SET", "fuzz", "1"], ["MGET", "fuzz", "x"])
    const frames = fc.sample(
      fc.oneof(
        fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
        fc.tuple(fc.array(readOnly, { minLength: 1, maxLength: 4 }), fc.nat(), fc.integer({ min: 0, max: 255 })).map(
          ([cmds, at, byte]) => {
            const bytes = Buffer.concat(cmds.map(encodeCommand))
            bytes[at % bytes.length] = byte
            return bytes
          }
        )
      ),
      { numRuns: 150, seed: 20 }
    )
    yield* Effect.forEach(frames, (bytes) => raw(port, bytes, 150), { concurrency: 10, discard: true })
    expect(yield* store.values).toEqual(before)
    expect(yield* Effect.promise(() => c.ping())).toBe("PONG")
    expect(yield* Effect.promise(() => c.incr("fuzz"))).toBe(8)
  }), 60_000)
})
