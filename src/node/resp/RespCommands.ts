/**
 * What each Redis command means on a dcounter node: one function from a parsed command and
 * the connection's session to an `Outcome` (a reply now, a reply once a durable write
 * settles, or an Effect for the rare commands that need one). No sockets here: the server
 * (RespServer.ts) parses, calls `execute` in order and writes the replies in order.
 *
 * Keys are counter names. INCR / INCRBY / DECR / DECRBY are the store's writes (through the
 * server's `WriteCoalescer`), run with `Callback.run` like the HTTP write: no fiber per
 * write, the reply is sent once the write is durable, and the writes of one chunk of
 * pipelined commands are all submitted before any settles, so the WAL commits them
 * together. GET reads the store the same way. GET answers a counter's value as a bulk string, like
 * Redis; a counter this node has never seen answers nil (Redis's answer for a missing key,
 * and what EXISTS agrees with); one that was written and came back to 0 answers "0".
 *
 * Everything that would need other data types (SET, DEL, EXPIRE, ...) is refused with an
 * error saying dcounter holds counters only; nothing a command refuses changes state.
 */
import { timingSafeEqual, createHash } from "node:crypto"
import { Cause, Effect, Exit, Option, Redacted } from "effect"
import type { CounterName } from "../../crdt/CounterName.js"
import { isCounterName } from "../../crdt/CounterName.js"
import type { PeerManager } from "../PeerManager.js"
import type { CounterStore, WriteError } from "../CounterStore.js"
import * as Callback from "../../internal/Callback.js"
import type { Submit } from "./WriteCoalescer.js"
import { globMatch, literalPrefix } from "./Glob.js"
import type { Command } from "./RespParser.js"
import * as R from "./RespReply.js"
import type { Protocol, Reply } from "./RespReply.js"

/** Redis's version whose command set and replies this front end follows (HELLO, INFO). */
export const REDIS_COMPAT_VERSION = "7.2.0"

/** The state of one client connection. */
export interface Session {
  readonly id: number
  protocol: Protocol
  name: string | undefined
  libName: string | undefined
  libVersion: string | undefined
  authenticated: boolean
}

/** Counts the server keeps, for INFO. */
export interface ServerStats {
  readonly startedAt: number
  connections: number
  connectionsTotal: number
  commandsTotal: number
}

/** What the commands work on: the node's store and peers, and the server's settings. */
export interface CommandContext {
  readonly store: CounterStore["Type"]
  /** how writes reach the store: `WriteCoalescer.add` (the store's writes, joined per turn) */
  readonly submit: Submit
  readonly peers: PeerManager["Type"] | undefined
  readonly password: Option.Option<Redacted.Redacted<string>>
  /** `host:port` the RESP listener is bound to */
  readonly addr: string
  readonly version: string
  readonly stats: ServerStats
}

/**
 * The answer to one command: a reply at once; a reply later (`register` calls back once,
 * e.g. when a write is durable); an Effect to run for it (synchronous: reads of the store
 * and the peer list, run to completion on the spot); or a reply after which the connection
 * is closed (QUIT).
 */
export type Outcome =
  | Reply
  | { readonly _tag: "Later"; readonly register: (resume: (reply: Reply) => void) => void }
  | { readonly _tag: "Run"; readonly effect: Effect.Effect<Reply> }
  | { readonly _tag: "Close"; readonly reply: Reply }

const later = (register: (resume: (reply: Reply) => void) => void): Outcome => ({ _tag: "Later", register })
const run = (effect: Effect.Effect<Reply>): Outcome => ({ _tag: "Run", effect })

// ---------------------------------------------------------------------------------------
// errors (Redis's own texts where Redis has one)

export const errors = {
  invalidName: R.error("ERR invalid counter name"),
  notInteger: R.error("ERR value is not an integer or out of range"),
  overflow: R.error("ERR increment or decrement would overflow"),
  syntax: R.error("ERR syntax error"),
  noAuth: R.error("NOAUTH Authentication required."),
  wrongPass: R.error("WRONGPASS invalid username-password pair or user is disabled."),
  noPassword: R.error(
    "ERR AUTH <password> called without any password configured for the default user. " +
      "Are you sure your configuration is correct?"
  ),
  dbIndex: R.error("ERR DB index is out of range"),
  invalidCursor: R.error("ERR invalid cursor")
} as const

/** The answer when a read of the store died (a defect: the store's reads cannot fail). */
const readFailed = R.error("ERR internal error")

const wrongArity = (name: string): Reply => R.error(`ERR wrong number of arguments for '${name.toLowerCase()}' command`)

/** A name for messages: printable, bounded (it is the client's input). */
const printable = (s: string): string => {
  const cut = s.length > 64 ? `${s.slice(0, 64)}...` : s
  return cut.replace(/[^\x20-\x7e]/g, "?").replace(/'/g, "?")
}

const countersOnly = (name: string): Reply =>
  R.error(
    `ERR dcounter holds counters only: '${printable(name)}' is not supported ` +
      "(counters take INCR, INCRBY, DECR, DECRBY, GET, MGET, EXISTS, SCAN)"
  )

const writeError = (e: WriteError): Reply =>
  e._tag === "Overflow" ? errors.overflow : R.error(`ERR the write was not made: ${e.message}`)

// ---------------------------------------------------------------------------------------
// arguments

/**
 * An integer argument as Redis reads one (`string2ll`): an optional `-`, digits, no
 * leading zeros, no spaces, within a signed 64-bit integer. Returned as a number when it is
 * a safe integer; `"unsafe"` when it is a valid 64-bit integer beyond 2^53 (a counter cannot
 * take it: an overflow); undefined when it is no integer.
 */
export const parseInteger = (s: string): number | "unsafe" | undefined => {
  const n = s.length
  if (n === 0 || n > 20) return undefined
  let i = s.charCodeAt(0) === 45 ? 1 : 0
  if (i === n) return undefined
  if (s.charCodeAt(i) === 48 && n > i + 1) return undefined
  for (let j = i; j < n; j++) {
    const c = s.charCodeAt(j)
    if (c < 48 || c > 57) return undefined
  }
  if (s === "-0") return undefined
  const value = Number(s)
  if (Number.isSafeInteger(value)) return value
  const big = BigInt(s)
  return big >= -(2n ** 63n) && big < 2n ** 63n ? "unsafe" : undefined
}

// ---------------------------------------------------------------------------------------
// the commands

interface Spec {
  /** Redis's arity: N exactly N arguments (the name included), -N at least N */
  readonly arity: number
  readonly flags: ReadonlyArray<string>
  readonly group: string
  readonly summary: string
  /** first key, last key, step (COMMAND INFO) */
  readonly keys: readonly [number, number, number]
  /** allowed before AUTH when a password is set */
  readonly noAuth?: boolean
  readonly run: (ctx: CommandContext, session: Session, args: Command) => Outcome
}

const write = (ctx: CommandContext, name: string, kind: "inc" | "dec", by: number | "unsafe" | undefined): Outcome => {
  if (!isCounterName(name)) return errors.invalidName
  if (by === undefined) return errors.notInteger
  if (by === "unsafe") return errors.overflow
  if (by === 0) {
    return later((resume) =>
      Callback.run(ctx.store.value(name), (exit) => resume(Exit.isSuccess(exit) ? R.integer(exit.value) : readFailed))
    )
  }
  const k: "inc" | "dec" = by > 0 ? kind : kind === "inc" ? "dec" : "inc"
  return later((resume) =>
    ctx.submit(name, k, Math.abs(by), (exit) =>
      resume(
        Exit.isSuccess(exit)
          ? R.integer(exit.value)
          : Option.match(Cause.failureOption(exit.cause), {
            onNone: () => R.error("ERR the write failed unexpectedly"),
            onSome: writeError
          })
      ))
  )
}

/** Whether the node holds any entry of the counter (it was written somewhere and merged here). */
const exists = (store: CounterStore["Type"], name: CounterName): Effect.Effect<boolean> =>
  Effect.flatMap(store.value(name), (value) =>
    value !== 0
      ? Effect.succeed(true)
      : Effect.map(store.counterState(name), (s) => Object.keys(s.increments).length > 0))

/** A written counter at 0 and one never written both read 0: only the second has no entries. */
const zeroReply = (state: { readonly increments: Readonly<Record<string, number>> }): Reply =>
  Object.keys(state.increments).length > 0 ? R.bulk("0") : R.nil

const valueReply = (store: CounterStore["Type"], name: CounterName): Effect.Effect<Reply> =>
  Effect.flatMap(store.value(name), (value) =>
    value !== 0 ? Effect.succeed(R.bulk(String(value))) : Effect.map(store.counterState(name), zeroReply))

const ping: Spec["run"] = (_ctx, _session, args) => {
  if (args.length > 2) return wrongArity("ping")
  return args.length === 2 ? R.bulk(args[1]!) : R.simple("PONG")
}

const checkPassword = (ctx: CommandContext, given: string): boolean => {
  if (Option.isNone(ctx.password)) return false
  // compare digests in constant time: the lengths differ freely
  const a = createHash("sha256").update(Redacted.value(ctx.password.value), "utf8").digest()
  const b = createHash("sha256").update(given, "latin1").digest()
  return timingSafeEqual(a, b)
}

const auth: Spec["run"] = (ctx, session, args) => {
  if (args.length !== 2 && args.length !== 3) return wrongArity("auth")
  const user = args.length === 3 ? args[1]! : "default"
  // no password: the default user takes any (Redis's `nopass`), but a bare AUTH is a mistake
  if (Option.isNone(ctx.password)) return args.length === 2 ? errors.noPassword : user === "default" ? R.ok : errors.wrongPass
  if (user !== "default" || !checkPassword(ctx, args[args.length - 1]!)) return errors.wrongPass
  session.authenticated = true
  return R.ok
}

const hello: Spec["run"] = (ctx, session, args) => {
  let protocol: Protocol = session.protocol
  let i = 1
  if (args.length > 1) {
    const v = parseInteger(args[1]!)
    if (v === undefined || v === "unsafe") return R.error("ERR Protocol version is not an integer or out of range")
    if (v !== 2 && v !== 3) return R.error("NOPROTO unsupported protocol version")
    protocol = v
    i = 2
  }
  let name: string | undefined
  let authed = session.authenticated
  for (; i < args.length; i++) {
    const opt = args[i]!.toUpperCase()
    if (opt === "AUTH" && i + 2 < args.length) {
      if (args[i + 1] !== "default") return errors.wrongPass
      if (Option.isSome(ctx.password) && !checkPassword(ctx, args[i + 2]!)) return errors.wrongPass
      authed = true
      i += 2
    } else if (opt === "SETNAME" && i + 1 < args.length) {
      const n = args[i + 1]!
      if (!validClientName(n)) return badClientName
      name = n
      i += 1
    } else {
      return R.error(`ERR Syntax error in HELLO option '${printable(args[i]!)}'`)
    }
  }
  if (Option.isSome(ctx.password) && !authed) return errors.noAuth
  session.authenticated = authed
  session.protocol = protocol
  if (name !== undefined) session.name = name === "" ? undefined : name
  return R.record([
    ["server", R.bulk("dcounter")],
    ["version", R.bulk(REDIS_COMPAT_VERSION)],
    ["proto", R.integer(protocol)],
    ["id", R.integer(session.id)],
    ["mode", R.bulk("standalone")],
    ["role", R.bulk("master")],
    ["modules", R.array([])]
  ])
}

const validClientName = (name: string): boolean => {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i)
    if (c < 33 || c > 126) return false
  }
  return true
}
const badClientName = R.error("ERR Client names cannot contain spaces, newlines or special characters.")

const client: Spec["run"] = (_ctx, session, args) => {
  const sub = args[1]!.toUpperCase()
  switch (sub) {
    case "SETNAME":
      if (args.length !== 3) return wrongArity("client|setname")
      if (!validClientName(args[2]!)) return badClientName
      session.name = args[2] === "" ? undefined : args[2]
      return R.ok
    case "GETNAME":
      if (args.length !== 2) return wrongArity("client|getname")
      return session.name === undefined ? R.nil : R.bulk(session.name)
    case "SETINFO": {
      if (args.length !== 4) return wrongArity("client|setinfo")
      const attr = args[2]!.toUpperCase()
      if (!validClientName(args[3]!) && args[3] !== "") return badClientName
      if (attr === "LIB-NAME") session.libName = args[3]
      else if (attr === "LIB-VER") session.libVersion = args[3]
      else return R.error(`ERR Unrecognized option '${printable(args[2]!)}'`)
      return R.ok
    }
    case "ID":
      return R.integer(session.id)
    case "INFO":
      return R.verbatim(clientLine(session) + "\n")
    default:
      return R.error(`ERR unknown subcommand '${printable(args[1]!)}'. Try CLIENT SETNAME, GETNAME, SETINFO, ID, INFO.`)
  }
}

const clientLine = (s: Session): string =>
  `id=${s.id} name=${s.name ?? ""} db=0 resp=${s.protocol} lib-name=${s.libName ?? ""} lib-ver=${s.libVersion ?? ""}`

const select: Spec["run"] = (_ctx, _session, args) => {
  const db = parseInteger(args[1]!)
  if (db === undefined || db === "unsafe") return errors.notInteger
  return db === 0 ? R.ok : errors.dbIndex
}

const incr = (kind: "inc" | "dec"): Spec["run"] => (ctx, _session, args) => write(ctx, args[1]!, kind, 1)
const incrBy = (kind: "inc" | "dec"): Spec["run"] => (ctx, _session, args) =>
  write(ctx, args[1]!, kind, parseInteger(args[2]!))

const get: Spec["run"] = (ctx, _session, args) => {
  const name = args[1]!
  if (!isCounterName(name)) return errors.invalidName
  // `valueReply` at the callback level: the store's reads are `Callback`s, run without a fiber
  return later((resume) =>
    Callback.run(ctx.store.value(name), (exit) => {
      if (Exit.isFailure(exit)) return resume(readFailed)
      // a non-zero value exists; a zero may be a counter back at 0 or one never written
      if (exit.value !== 0) return resume(R.bulk(String(exit.value)))
      Callback.run(ctx.store.counterState(name), (state) => resume(Exit.isSuccess(state) ? zeroReply(state.value) : readFailed))
    })
  )
}

const mget: Spec["run"] = (ctx, _session, args) => {
  const names = args.slice(1)
  if (!names.every(isCounterName)) return errors.invalidName
  return run(Effect.map(Effect.forEach(names, (n) => valueReply(ctx.store, n)), R.array))
}

const existsCommand: Spec["run"] = (ctx, _session, args) => {
  const names = args.slice(1)
  if (!names.every(isCounterName)) return errors.invalidName
  return run(
    Effect.map(Effect.forEach(names, (n) => exists(ctx.store, n)), (found) => R.integer(found.filter((x) => x).length))
  )
}

const type: Spec["run"] = (ctx, _session, args) => {
  const name = args[1]!
  if (!isCounterName(name)) return errors.invalidName
  return run(Effect.map(exists(ctx.store, name), (found) => R.simple(found ? "string" : "none")))
}

const dbsize: Spec["run"] = (ctx) => run(Effect.map(ctx.store.values, (all) => R.integer(all.length)))

/** Most names one SCAN call examines, whatever COUNT asks. */
const MAX_SCAN_COUNT = 10_000

/**
 * SCAN over the counters in name order. The cursor is the position in that order where the
 * next call starts (0: start, and the answer's 0: done). Counters are never deleted, so a
 * counter that appears during a scan only moves later ones to the right: a name present for
 * the whole scan is returned at least once (one may be returned twice, as Redis allows).
 */
const scan: Spec["run"] = (ctx, _session, args) => {
  const cursor = parseInteger(args[1]!)
  if (cursor === undefined || cursor === "unsafe" || cursor < 0) return errors.invalidCursor
  let pattern: string | undefined
  let count = 10
  let typeFilter: string | undefined
  for (let i = 2; i < args.length; i += 2) {
    const opt = args[i]!.toUpperCase()
    const value = args[i + 1]
    if (value === undefined) return errors.syntax
    if (opt === "MATCH") pattern = value
    else if (opt === "COUNT") {
      const n = parseInteger(value)
      if (n === undefined || n === "unsafe") return errors.notInteger
      if (n < 1) return errors.syntax
      count = Math.min(n, MAX_SCAN_COUNT)
    } else if (opt === "TYPE") typeFilter = value.toLowerCase()
    else return errors.syntax
  }
  const prefix = pattern === undefined ? "" : literalPrefix(pattern)
  return run(
    Effect.map(ctx.store.values, (all) => {
      const from = Math.min(cursor, all.length)
      const to = Math.min(from + count, all.length)
      const keys: Array<Reply> = []
      if (typeFilter === undefined || typeFilter === "string") {
        for (let i = from; i < to; i++) {
          const name = all[i]!.name
          if (pattern === undefined || (name.startsWith(prefix) && globMatch(pattern, name))) keys.push(R.bulk(name))
        }
      }
      return R.array([R.bulk(String(to >= all.length ? 0 : to)), R.array(keys)])
    })
  )
}

const echo: Spec["run"] = (_ctx, _session, args) => R.bulk(args[1]!)

const quit: Spec["run"] = () => ({ _tag: "Close", reply: R.ok })

/** What `CONFIG GET` shows: how this server is durable, in Redis's terms (tools print them). */
const configValues: ReadonlyArray<readonly [string, string]> = [
  ["appendonly", "yes"],
  ["appendfsync", "always"],
  ["save", ""],
  ["databases", "1"]
]

const config: Spec["run"] = (_ctx, _session, args) => {
  if (args[1]!.toUpperCase() !== "GET" || args.length < 3) return countersOnly(`CONFIG ${args[1]}`)
  const patterns = args.slice(2).map((p) => p.toLowerCase())
  return R.map(
    configValues.filter(([k]) => patterns.some((p) => globMatch(p, k))).map(([k, v]) => [R.bulk(k), R.bulk(v)] as const)
  )
}

const info: Spec["run"] = (ctx, session, args) => {
  const wanted = new Set(args.slice(1).map((s) => s.toLowerCase()))
  const all = wanted.size === 0 || wanted.has("all") || wanted.has("everything") || wanted.has("default")
  const want = (s: string) => all || wanted.has(s)
  return run(
    Effect.gen(function*() {
      const peers = ctx.peers === undefined ? [] : yield* ctx.peers.peers
      const counters = yield* ctx.store.values
      const sections: Array<string> = []
      const port = ctx.addr.slice(ctx.addr.lastIndexOf(":") + 1)
      if (want("server")) {
        sections.push([
          "# Server",
          `redis_version:${REDIS_COMPAT_VERSION}`,
          `dcounter_version:${ctx.version}`,
          "redis_mode:standalone",
          `process_id:${process.pid}`,
          `tcp_port:${port}`,
          `uptime_in_seconds:${Math.floor((Date.now() - ctx.stats.startedAt) / 1000)}`,
          `node_id:${ctx.store.replicaId}`
        ].join("\r\n"))
      }
      if (want("clients")) sections.push(["# Clients", `connected_clients:${ctx.stats.connections}`].join("\r\n"))
      if (want("stats")) {
        sections.push([
          "# Stats",
          `total_connections_received:${ctx.stats.connectionsTotal}`,
          `total_commands_processed:${ctx.stats.commandsTotal}`
        ].join("\r\n"))
      }
      if (want("replication")) {
        // every node is a primary (multi-master); its peers stand where Redis lists replicas
        const lines = ["# Replication", "role:master", `connected_peers:${peers.filter((p) => p.status === "alive").length}`]
        peers.forEach((p, i) =>
          lines.push(`peer${i}:addr=${p.addr},status=${p.status},node_id=${p.replicaId ?? ""},fails=${p.fails}`)
        )
        sections.push(lines.join("\r\n"))
      }
      if (want("keyspace")) {
        sections.push(["# Keyspace", ...(counters.length > 0 ? [`db0:keys=${counters.length},expires=0,avg_ttl=0`] : [])].join("\r\n"))
      }
      const text = sections.join("\r\n\r\n") + "\r\n"
      return session.protocol === 3 ? R.verbatim(text) : R.bulk(text)
    })
  )
}

const commandInfo = (name: string, spec: Spec): Reply =>
  R.array([
    R.bulk(name.toLowerCase()),
    R.integer(spec.arity),
    R.set(spec.flags.map(R.simple)),
    R.integer(spec.keys[0]),
    R.integer(spec.keys[1]),
    R.integer(spec.keys[2]),
    R.set([]),
    R.set([]),
    R.array([]),
    R.array([])
  ])

const commandDoc = (spec: Spec): Reply =>
  R.record([
    ["summary", R.bulk(spec.summary)],
    ["since", R.bulk("1.0.0")],
    ["group", R.bulk(spec.group)],
    ["complexity", R.bulk("O(1)")],
    ["arguments", R.array([])]
  ])

const command: Spec["run"] = (_ctx, _session, args) => {
  const sub = args.length > 1 ? args[1]!.toUpperCase() : undefined
  const names = args.slice(2).map((s) => s.toUpperCase())
  switch (sub) {
    case undefined:
      return R.array([...table].map(([name, spec]) => commandInfo(name, spec)))
    case "COUNT":
      return R.integer(table.size)
    case "LIST":
      return R.array([...table.keys()].map((n) => R.bulk(n.toLowerCase())))
    case "INFO":
      return R.array(names.map((n) => {
        const spec = table.get(n)
        return spec === undefined ? R.nil : commandInfo(n, spec)
      }))
    case "DOCS": {
      const chosen = names.length === 0 ? [...table.keys()] : names.filter((n) => table.has(n))
      return R.map(chosen.map((n) => [R.bulk(n.toLowerCase()), commandDoc(table.get(n)!)] as const))
    }
    default:
      return R.error(`ERR unknown subcommand '${printable(args[1]!)}'. Try COMMAND COUNT, LIST, INFO, DOCS.`)
  }
}

const table: ReadonlyMap<string, Spec> = new Map<string, Spec>([
  ["INCR", { arity: 2, flags: ["write", "fast"], group: "string", summary: "Adds 1 to a counter; answers once durable.", keys: [1, 1, 1], run: incr("inc") }],
  ["DECR", { arity: 2, flags: ["write", "fast"], group: "string", summary: "Subtracts 1 from a counter; answers once durable.", keys: [1, 1, 1], run: incr("dec") }],
  ["INCRBY", { arity: 3, flags: ["write", "fast"], group: "string", summary: "Adds an integer to a counter; answers once durable.", keys: [1, 1, 1], run: incrBy("inc") }],
  ["DECRBY", { arity: 3, flags: ["write", "fast"], group: "string", summary: "Subtracts an integer from a counter; answers once durable.", keys: [1, 1, 1], run: incrBy("dec") }],
  ["GET", { arity: 2, flags: ["readonly", "fast"], group: "string", summary: "A counter's value (nil if never written).", keys: [1, 1, 1], run: get }],
  ["MGET", { arity: -2, flags: ["readonly", "fast"], group: "string", summary: "The values of several counters.", keys: [1, -1, 1], run: mget }],
  ["EXISTS", { arity: -2, flags: ["readonly", "fast"], group: "keyspace", summary: "How many of the counters exist.", keys: [1, -1, 1], run: existsCommand }],
  ["TYPE", { arity: 2, flags: ["readonly", "fast"], group: "keyspace", summary: "string for a counter, none otherwise.", keys: [1, 1, 1], run: type }],
  ["SCAN", { arity: -2, flags: ["readonly"], group: "keyspace", summary: "Iterates over the counters in name order.", keys: [0, 0, 0], run: scan }],
  ["DBSIZE", { arity: 1, flags: ["readonly", "fast"], group: "server", summary: "The number of counters.", keys: [0, 0, 0], run: dbsize }],
  ["PING", { arity: -1, flags: ["fast"], group: "connection", summary: "PONG, or the message.", keys: [0, 0, 0], run: ping }],
  ["ECHO", { arity: 2, flags: ["fast"], group: "connection", summary: "The message.", keys: [0, 0, 0], run: echo }],
  ["HELLO", { arity: -1, flags: ["noauth", "fast"], group: "connection", summary: "Handshake: protocol 2 or 3, AUTH, SETNAME.", keys: [0, 0, 0], noAuth: true, run: hello }],
  ["AUTH", { arity: -2, flags: ["noauth", "fast"], group: "connection", summary: "Authenticates with --resp-password.", keys: [0, 0, 0], noAuth: true, run: auth }],
  ["SELECT", { arity: 2, flags: ["fast"], group: "connection", summary: "Only database 0 exists.", keys: [0, 0, 0], run: select }],
  ["CLIENT", { arity: -2, flags: ["fast"], group: "connection", summary: "SETNAME, GETNAME, SETINFO, ID, INFO.", keys: [0, 0, 0], run: client }],
  ["INFO", { arity: -1, flags: [], group: "server", summary: "Server, clients, stats, replication (peers), keyspace.", keys: [0, 0, 0], run: info }],
  ["COMMAND", { arity: -1, flags: [], group: "server", summary: "The commands this server takes.", keys: [0, 0, 0], run: command }],
  ["CONFIG", { arity: -2, flags: [], group: "server", summary: "CONFIG GET: appendonly, appendfsync, save, databases (read only).", keys: [0, 0, 0], run: config }],
  ["QUIT", { arity: -1, flags: ["noauth", "fast"], group: "connection", summary: "Closes the connection.", keys: [0, 0, 0], noAuth: true, run: quit }]
])

/** Every command name this server takes, upper case (metrics label them; the rest is `other`). */
export const commandNames: ReadonlyArray<string> = [...table.keys()]

/**
 * Whether the command reads counters (GET, MGET, EXISTS, TYPE, SCAN, DBSIZE, INFO): it must
 * see every earlier write of its connection, so the server runs it only once those are
 * answered.
 */
export const readsCounters = (name: string | undefined): boolean =>
  name !== undefined && (name === "INFO" || (table.get(name)?.flags.includes("readonly") ?? false))

/** The spec of a command name (any case), if the server takes it. */
export const lookup = (name: string): string | undefined => {
  const upper = name.toUpperCase()
  return table.has(upper) ? upper : undefined
}

/**
 * Runs one command. `name` is `lookup(args[0])` (the caller has it for its metrics):
 * undefined for a command this server does not take.
 */
export const execute = (
  ctx: CommandContext,
  session: Session,
  name: string | undefined,
  args: Command
): Outcome => {
  const spec = name === undefined ? undefined : table.get(name)
  if (spec === undefined || name === undefined) {
    if (!session.authenticated) return errors.noAuth
    return countersOnly(args[0]!)
  }
  if (!session.authenticated && spec.noAuth !== true) return errors.noAuth
  if (spec.arity > 0 ? args.length !== spec.arity : args.length < -spec.arity) return wrongArity(name)
  return spec.run(ctx, session, args)
}
