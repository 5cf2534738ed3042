/**
 * Transport benchmark: messages/s and MB/s from one `TransportTcp` to another over
 * loopback, for ~100 B and ~64 KB frames, next to a raw `net.Socket` pipe moving the same
 * frame bytes in the same run (one `write` per frame, backpressure honoured, the receiver
 * only counts bytes). Both ends live in this process, as do the raw pipe's.
 *
 * Two transport cases per size: the same payload bytes through a bytes `Wire` (the
 * transport itself: send queue, batching, framing, socket, frame decoder, handshake,
 * inbound queue drained by one fiber), and the Push message those bytes encode (1 and
 * ~1,500 entries) through the gossip `Codec` (plus msgpack encode, decode and validation
 * of every entry), which is what a node pays.
 *
 * The sender keeps a window of messages in flight (credit from the receiver) so that
 * nothing is dropped by the send queue's overflow policy; drops are reported anyway.
 * After a short warm-up, rounds of the three cases alternate; the median round of each is
 * the primary figure (ratio), the best round and the CPU time per message (user + system of
 * the process, both ends) are reported beside it, because the machine is shared and noisy.
 *
 *     npx tsc -p tsconfig.build.json && node dist/bench/transport.js [--quick]
 */
import * as net from "node:net"
import { Effect, Either, Exit, Fiber, Logger, LogLevel, Option, Queue, Scope } from "effect"
import type { CounterName } from "../src/crdt/CounterName.js"
import type { Entry } from "../src/crdt/Entry.js"
import type { ReplicaId } from "../src/crdt/ReplicaId.js"
import * as Codec from "../src/protocol/Codec.js"
import * as Frame from "../src/protocol/Frame.js"
import type { HostPort } from "../src/protocol/Message.js"
import { Hello, Push } from "../src/protocol/Message.js"
import { dropNewest } from "../src/transport/SendQueue.js"
import * as TransportTcp from "../src/transport/TransportTcp.js"
import type { BenchOptions, BenchResult } from "./BenchResult.js"
import { figure, isMain, main, ratioOf } from "./BenchResult.js"

const HOST = "127.0.0.1"
const replica = "Jm3w0zq9T2u8b1XkPq7VfA" as ReplicaId
const digest = "9f2c1e7a4b3d5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8"

/** A delta Push of `n` entries. */
const pushOf = (n: number): Push => {
  const entries: Array<Entry> = []
  for (let i = 0; i < n; i++) entries.push([`counter-${i}` as CounterName, replica, 1_000_000 + i * 37, i * 11])
  return new Push({ full: false, entries, digest })
}

/** The Push whose frame is closest to `target` bytes. */
export const pushNear = (target: number): { readonly push: Push; readonly frameBytes: number } => {
  let lo = 1
  let hi = 1
  const size = (n: number) => Frame.frameSize(Codec.encode(pushOf(n)).length)
  while (size(hi) < target) hi *= 2
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2)
    if (size(mid) < target) lo = mid + 1
    else hi = mid
  }
  const n = lo > 1 && target - size(lo - 1) < size(lo) - target ? lo - 1 : lo
  return { push: pushOf(n), frameBytes: size(n) }
}

interface Run {
  readonly messages: number
  readonly bytes: number
  readonly seconds: number
  readonly dropped: number
  /** process CPU time (user + system) per message, both ends together */
  readonly cpuMicros: number
}

const cpuSince = (start: NodeJS.CpuUsage): number => {
  const used = process.cpuUsage(start)
  return used.user + used.system
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, HOST, () => {
      const a = server.address()
      const port = typeof a === "object" && a !== null ? a.port : 0
      server.close(() => resolve(port))
    })
  })

/** Raw pipe: the same frame bytes, one write per frame, for `millis`. */
export const rawRun = async (frame: Uint8Array, millis: number): Promise<Run> => {
  const port = await freePort()
  let received = 0
  let target = Infinity
  let finish: () => void = () => {}
  const done = new Promise<void>((resolve) => (finish = resolve))
  const server = net.createServer((socket) => {
    socket.on("data", (chunk: Buffer) => {
      received += chunk.length
      if (received >= target) finish()
    })
  })
  await new Promise<void>((resolve) => server.listen(port, HOST, resolve))
  const client = net.connect({ host: HOST, port, noDelay: true })
  await new Promise<void>((resolve) => client.once("connect", resolve))
  const cpu = process.cpuUsage()
  const start = performance.now()
  const deadline = start + millis
  let sent = 0
  while (performance.now() < deadline) {
    // write until the socket buffer is full, then wait for it to drain
    let ok = true
    for (let i = 0; i < 256 && ok; i++) {
      ok = client.write(frame)
      sent++
    }
    if (!ok) await new Promise<void>((resolve) => client.once("drain", resolve))
    else await new Promise<void>((resolve) => setImmediate(resolve))
  }
  target = sent * frame.length
  if (received >= target) finish()
  await done
  const seconds = (performance.now() - start) / 1000
  const cpuMicros = cpuSince(cpu) / sent
  client.destroy()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return { messages: sent, bytes: target, seconds, dropped: 0, cpuMicros }
}

/**
 * Raw bytes through the transport: measures it apart from the message codec. Like the raw
 * pipe's receiver, the consumer only counts what arrives, so payloads are borrowed
 * (`retainsPayload: false`, valid until the connection's next chunk).
 */
export const bytesWire: TransportTcp.Wire<Uint8Array> = {
  encode: (bytes) => bytes,
  decode: (bytes) => Either.right(bytes),
  retainsPayload: false,
  helloOf: () => undefined,
  ofHello: () => undefined,
  overflow: dropNewest
}

/**
 * Two transports over `wire`: A sends `message()` to B for `millis`, with at most `window`
 * messages in flight (B's consumer hands back credit), so the send queue never overflows.
 * `message` makes a new object per send, so the transport's per-object encode cache (for
 * fan-out) never hits and every message is encoded.
 */
export const transportRun = <M>(
  wire: TransportTcp.Wire<M>,
  message: () => M,
  frameBytes: number,
  millis: number,
  window: number
) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const start = (id: string) =>
      Effect.gen(function* () {
        const addr = `${HOST}:${yield* Effect.promise(freePort)}` as HostPort
        const self = new Hello({ protocol: 1, replicaId: id as ReplicaId, gossipAddr: addr, httpAddr: addr })
        return yield* TransportTcp.makeWith(
          { listen: addr, self, clusterKey: Option.none(), sendQueueSize: window * 2 },
          wire
        ).pipe(Scope.extend(scope))
      })
    const a = yield* start("a")
    const b = yield* start("b")
    const isHello = (m: M) => wire.helloOf(m) !== undefined
    let received = 0
    let credit = Effect.unsafeMakeLatch(true)
    const consumer = yield* Effect.fork(
      Effect.gen(function* () {
        while (true) {
          const batch = yield* Queue.takeBetween(b.transport.inbound, 1, 4096)
          for (const item of batch) if (!isHello(item.message)) received++
          credit.unsafeOpen()
        }
      })
    )
    // connect and warm up
    yield* a.transport.send(b.address, message())
    while (received < 1) yield* Effect.sleep("1 millis")
    received = 0
    const cpu = process.cpuUsage()
    const t0 = performance.now()
    const deadline = t0 + millis
    let sent = 0
    let dropped = 0
    while (performance.now() < deadline) {
      if (sent - received >= window) {
        credit = Effect.unsafeMakeLatch(false)
        if (sent - received >= window) yield* credit.await
        continue
      }
      if (yield* a.transport.send(b.address, message())) sent++
      else dropped++
    }
    while (received < sent) {
      credit = Effect.unsafeMakeLatch(false)
      if (received < sent) yield* credit.await
    }
    const seconds = (performance.now() - t0) / 1000
    const cpuMicros = cpuSince(cpu) / sent
    yield* Fiber.interrupt(consumer)
    yield* Scope.close(scope, Exit.void)
    return { messages: sent, bytes: sent * frameBytes, seconds, dropped, cpuMicros } satisfies Run
  }).pipe(Logger.withMinimumLogLevel(LogLevel.Warning))

const median = (runs: ReadonlyArray<Run>): Run => {
  const sorted = [...runs].sort((x, y) => x.messages / x.seconds - y.messages / y.seconds)
  return sorted[Math.floor(sorted.length / 2)]!
}

const perSecond = (r: Run) => r.messages / r.seconds
const mbPerSecond = (r: Run) => r.bytes / r.seconds / 1e6

interface Rate {
  readonly msgsPerSecond: number
  readonly mbPerSecond: number
  readonly dropped: number
  /** median CPU time per message, microseconds */
  readonly cpuMicros: number
  /** the best round's throughput: closest to what an idle machine does */
  readonly bestMsgsPerSecond: number
}

export interface TransportFigures {
  readonly label: string
  readonly entries: number
  readonly frameBytes: number
  /** the frame bytes over a raw net.Socket pipe */
  readonly raw: Rate
  /** the same bytes through two TransportTcp (bytes wire: no message codec) */
  readonly transportBytes: Rate
  /** the Push message through two TransportTcp (msgpack + Schema validation each way) */
  readonly transportMessages: Rate
  readonly bytesRatio: number
  readonly messagesRatio: number
}

const rate = (runs: ReadonlyArray<Run>): Rate => {
  const r = median(runs)
  const cpu = [...runs].map((x) => x.cpuMicros).sort((x, y) => x - y)
  return {
    msgsPerSecond: perSecond(r),
    mbPerSecond: mbPerSecond(r),
    dropped: runs.reduce((n, x) => n + x.dropped, 0),
    cpuMicros: cpu[Math.floor(cpu.length / 2)]!,
    bestMsgsPerSecond: Math.max(...runs.map(perSecond))
  }
}

/** The figures, without the BenchResult wrapping. */
export const measure = async (options: BenchOptions = {}): Promise<ReadonlyArray<TransportFigures>> => {
  const log = options.log ?? ((line: string) => process.stderr.write(line + "\n"))
  const millis = options.quick ? 600 : 2000
  const rounds = options.quick ? 1 : 5
  const cases = [
    { label: "100 B", target: 100, window: 4096 },
    { label: "64 KB", target: 64 * 1024, window: 256 }
  ]
  const out: Array<TransportFigures> = []
  for (const c of cases) {
    const { push, frameBytes } = pushNear(c.target)
    const payload = Codec.encode(push)
    const frame = Frame.encode(payload)
    // the bytes wire's encode is the identity: sending the same buffer costs nothing extra
    const samePayload = () => payload
    const pushCopy = () => new Push({ full: push.full, entries: push.entries, digest: push.digest }, true)
    const raws: Array<Run> = []
    const bytes: Array<Run> = []
    const messages: Array<Run> = []
    // warm up (JIT, first connections) before anything is measured
    await rawRun(frame, 300)
    await Effect.runPromise(transportRun(bytesWire, samePayload, frameBytes, 300, c.window))
    await Effect.runPromise(transportRun(TransportTcp.messageWire, pushCopy, frameBytes, 300, c.window))
    for (let round = 0; round < rounds; round++) {
      raws.push(await rawRun(frame, millis))
      bytes.push(await Effect.runPromise(transportRun(bytesWire, samePayload, frameBytes, millis, c.window)))
      messages.push(await Effect.runPromise(transportRun(TransportTcp.messageWire, pushCopy, frameBytes, millis, c.window)))
      const line = (name: string, r: Run) =>
        `${name} ${Math.round(perSecond(r))} msgs/s ${mbPerSecond(r).toFixed(1)} MB/s ${r.cpuMicros.toFixed(1)} µs cpu/msg`
      log(
        `transport ${c.label} (${push.entries.length} entries, ${frameBytes} B frames) round ${round + 1}/${rounds}: ` +
          [line("raw", raws.at(-1)!), line("bytes", bytes.at(-1)!), line("messages", messages.at(-1)!)].join(", ")
      )
    }
    const raw = rate(raws)
    const transportBytes = rate(bytes)
    const transportMessages = rate(messages)
    out.push({
      label: c.label,
      entries: push.entries.length,
      frameBytes,
      raw,
      transportBytes,
      transportMessages,
      bytesRatio: transportBytes.msgsPerSecond / raw.msgsPerSecond,
      messagesRatio: transportMessages.msgsPerSecond / raw.msgsPerSecond
    })
  }
  return out
}

const figuresOf = (r: Rate) => [
  figure("throughput", r.msgsPerSecond, "msgs/s", "higher"),
  figure("bandwidth", r.mbPerSecond, "MB/s", "higher"),
  figure("cpu", r.cpuMicros, "µs/msg", "lower"),
  figure("best round", r.bestMsgsPerSecond, "msgs/s", "higher"),
  figure("dropped", r.dropped, "msgs", "lower")
]

export const run = async (options: BenchOptions = {}): Promise<ReadonlyArray<BenchResult>> => {
  const figures = await measure(options)
  const results: Array<BenchResult> = []
  for (const f of figures) {
    const baseline = `raw net.Socket pipe, ${f.label}`
    const goal = f.label === "64 KB" ? 0.5 : undefined
    const goalOf = (ratio: number | undefined) =>
      goal === undefined ? {} : { goal: `>= ${goal}x raw`, met: (ratio ?? 0) >= goal }
    results.push({
      bench: "transport",
      name: baseline,
      figures: figuresOf(f.raw).slice(0, 4),
      notes: `${f.frameBytes} B frames, one write per frame, receiver counts bytes`
    })
    const bytesRatio = ratioOf(f.transportBytes.msgsPerSecond, f.raw.msgsPerSecond)
    results.push({
      bench: "transport",
      name: `TransportTcp, ${f.label} frames (bytes wire, no codec)`,
      figures: figuresOf(f.transportBytes),
      baseline,
      ...(bytesRatio !== undefined ? { ratio: bytesRatio } : {}),
      ...goalOf(bytesRatio),
      notes: `queue, batching, framing, decoder, handshake, inbound queue drained by one fiber; cpu ${(f.transportBytes.cpuMicros / f.raw.cpuMicros).toFixed(2)}x raw's per message; best rounds ${(f.transportBytes.bestMsgsPerSecond / f.raw.bestMsgsPerSecond).toFixed(2)}x`
    })
    const messagesRatio = ratioOf(f.transportMessages.msgsPerSecond, f.raw.msgsPerSecond)
    results.push({
      bench: "transport",
      name: `TransportTcp, ${f.label} Push of ${f.entries} entries (Codec)`,
      figures: figuresOf(f.transportMessages),
      baseline,
      ...(messagesRatio !== undefined ? { ratio: messagesRatio } : {}),
      ...goalOf(messagesRatio),
      notes: `as above plus msgpack encode and decode + validation of every entry; cpu ${(f.transportMessages.cpuMicros / f.raw.cpuMicros).toFixed(2)}x raw's per message; best rounds ${(f.transportMessages.bestMsgsPerSecond / f.raw.bestMsgsPerSecond).toFixed(2)}x`
    })
  }
  return results
}

if (isMain(import.meta.url)) void main(run)
