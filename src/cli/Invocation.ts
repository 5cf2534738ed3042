/**
 * Turns the command line and the environment into one fully validated `Invocation`, or a
 * `UsageError` whose message is one line naming the option at fault. Nothing starts before
 * this has succeeded, so a process never runs half-configured.
 *
 * @effect/cli parses the flags (`Options.processCommandLine` over the options generated from
 * Flags.ts); every value is then checked here, so that errors are one line and the exit
 * status is ours (2). The parser does not go through `Command.run`, whose built-in
 * `--log-level` would swallow ours.
 */
import type * as CliApp from "@effect/cli/CliApp"
import * as CliConfig from "@effect/cli/CliConfig"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as FileSystem from "@effect/platform/FileSystem"
import { Data, Duration, Effect, Either, Option, Redacted } from "effect"
import { readFileSync } from "node:fs"
import type { DiscoveryConfigShape } from "../config/DiscoveryConfig.js"
import * as DiscoveryConfig from "../config/DiscoveryConfig.js"
import type { GatewayConfigShape } from "../config/GatewayConfig.js"
import * as GatewayConfig from "../config/GatewayConfig.js"
import type { NodeConfigShape } from "../config/NodeConfig.js"
import * as NodeConfig from "../config/NodeConfig.js"
import type * as Logging from "../observability/Logging.js"
import type { SimulateOptions } from "../simulate/SimulateOptions.js"
import type { Command } from "./Flags.js"
import { allFlagNames, envName, flagNamesOf, simulateDefaults } from "./Flags.js"
import * as Help from "./Help.js"
import * as Values from "../config/Values.js"
import { type Env, UsageError } from "../config/Usage.js"

export type LogLevelName = Logging.Level
export type LogFormat = Logging.Format

export interface LoggingOptions {
  readonly level: LogLevelName
  readonly format: LogFormat
}

export type Role = "discovery" | "node" | "gateway"
export const roles: ReadonlyArray<Role> = ["discovery", "node", "gateway"]

export type Invocation = Data.TaggedEnum<{
  Help: { readonly text: string }
  Version: {}
  Discovery: { readonly logging: LoggingOptions; readonly config: DiscoveryConfigShape }
  Node: { readonly logging: LoggingOptions; readonly config: NodeConfigShape }
  Gateway: { readonly logging: LoggingOptions; readonly config: GatewayConfigShape }
  Simulate: { readonly logging: LoggingOptions; readonly options: SimulateOptions }
  Wal: { readonly logging: LoggingOptions; readonly action: "check" | "repair"; readonly dataDir: string }
}>
export const Invocation = Data.taggedEnum<Invocation>()

const cliConfig = CliConfig.make({ isCaseSensitive: true, autoCorrectLimit: 2, showBuiltIns: false })

/** One optional text option per distinct flag name: values are checked by `Resolver`. */
const flagOptions = Options.all(
  Object.fromEntries(allFlagNames.map((name) => [name, Options.optional(Options.text(name))] as const))
)

const isHelpFlag = (arg: string) => arg === "--help" || arg === "-h"

/** Parses `argv` (without the node executable and script) and `env` into an invocation. */
export const parse = (
  argv: ReadonlyArray<string>,
  env: Env
): Effect.Effect<Invocation, UsageError, CliApp.CliApp.Environment> =>
  Effect.gen(function*() {
    const [first, second] = argv
    if (first === "help" || (argv.length === 1 && isHelpFlag(first!))) {
      return Invocation.Help({ text: Help.full() })
    }
    if (argv.includes("--version") || argv.includes("-V")) return Invocation.Version()
    if (first === "simulate") {
      const rest = argv.slice(1)
      if (rest.some(isHelpFlag)) return Invocation.Help({ text: Help.forCommand("simulate") })
      const resolver = yield* flags("simulate", rest, env)
      return yield* resolveSimulate(resolver)
    }
    if (first === "wal") {
      if (argv.some(isHelpFlag)) return Invocation.Help({ text: Help.forCommand("wal") })
      if (second !== "check" && second !== "repair") {
        return yield* new UsageError({
          message: `expected "wal check --data-dir D" or "wal repair --data-dir D", got "wal${
            second === undefined ? "" : ` ${second}`
          }"`
        })
      }
      const resolver = yield* flags("wal", argv.slice(2), env)
      return yield* resolveWal(resolver, second)
    }
    if (argv.some(isHelpFlag)) {
      const role = roleInArgv(argv)
      return Invocation.Help({ text: role === undefined ? Help.full() : Help.forCommand(role) })
    }
    const role = yield* resolveRole(argv, env)
    const resolver = yield* flags(role, argv, env)
    switch (role) {
      case "discovery":
        return yield* resolveDiscovery(resolver)
      case "node":
        return yield* resolveNode(resolver)
      case "gateway":
        return yield* resolveGateway(resolver)
    }
  })

/** `--role X` or `--role=X` as typed, for choosing which help to show. */
const roleInArgv = (argv: ReadonlyArray<string>): Role | undefined => {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    const value = arg === "--role" ? argv[i + 1] : arg.startsWith("--role=") ? arg.slice(7) : undefined
    if (value !== undefined) return roles.find((r) => r === value)
  }
  return undefined
}

const resolveRole = (argv: ReadonlyArray<string>, env: Env): Effect.Effect<Role, UsageError> => {
  const typed = argv.find((a) => !a.startsWith("-"))
  if (typed !== undefined && argv.indexOf(typed) === 0) {
    return Effect.fail(
      new UsageError({
        message: `unknown command "${typed}": expected --role discovery|node|gateway, simulate or wal (see dcounter --help)`
      })
    )
  }
  const fromFlag = argv.includes("--role") || argv.some((a) => a.startsWith("--role="))
  const raw = fromFlag ? roleInArgvRaw(argv) : nonEmptyEnv(env, "role")
  if (raw === undefined) {
    return Effect.fail(
      new UsageError({ message: "missing --role: choose discovery, node or gateway (see dcounter --help)" })
    )
  }
  const role = roles.find((r) => r === raw)
  return role === undefined
    ? Effect.fail(
      new UsageError({
        message: `${fromFlag ? `invalid --role "${raw}"` : `invalid ${envName("role")}="${raw}" (--role)`}: ` +
          `expected one of ${roles.join(", ")}`
      })
    )
    : Effect.succeed(role)
}

const roleInArgvRaw = (argv: ReadonlyArray<string>): string | undefined => {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === "--role") return argv[i + 1]
    if (arg.startsWith("--role=")) return arg.slice(7)
  }
  return undefined
}

const nonEmptyEnv = (env: Env, flag: string): string | undefined => {
  const value = env[envName(flag)]
  return value === undefined || value.trim() === "" ? undefined : value
}

const oneLine = (doc: HelpDoc.HelpDoc): string => HelpDoc.toAnsiText(doc).replace(/\u001b\[[0-9;]*m/g, "").replace(/\s+/g, " ").trim()

/**
 * Reads the flags with @effect/cli and checks that each one applies to the command.
 * Returns a resolver reading one option from its flag or else its environment variable.
 */
const flags = (
  command: Command,
  args: ReadonlyArray<string>,
  env: Env
): Effect.Effect<Resolver, UsageError, CliApp.CliApp.Environment> =>
  Effect.gen(function*() {
    const [error, leftover, values] = yield* Options.processCommandLine(flagOptions, args, cliConfig).pipe(
      Effect.mapError((e) => new UsageError({ message: oneLine(e.error) }))
    )
    if (Option.isSome(error)) return yield* new UsageError({ message: oneLine(error.value.error) })
    const [extra] = leftover
    if (extra !== undefined) {
      const name = extra.replace(/^--?/, "").split("=")[0]!
      return yield* new UsageError({
        message: !extra.startsWith("-")
          ? `unexpected argument "${extra}"`
          : allFlagNames.includes(name)
          ? `--${name} is given more than once`
          : `unknown option ${extra.split("=")[0]} (see dcounter ${helpHint(command)}--help)`
      })
    }
    const accepted = flagNamesOf(command)
    const given: Record<string, string> = {}
    for (const [name, value] of Object.entries(values)) {
      if (Option.isNone(value)) continue
      if (!accepted.has(name)) {
        return yield* new UsageError({
          message: `--${name} does not apply to ${commandLabel(command)} (see dcounter ${helpHint(command)}--help)`
        })
      }
      given[name] = value.value
    }
    return new Resolver(given, env)
  })

const commandLabel = (command: Command): string =>
  command === "simulate" ? "dcounter simulate" : command === "wal" ? "dcounter wal" : `--role ${command}`

const helpHint = (command: Command): string =>
  command === "simulate" ? "simulate " : command === "wal" ? "wal " : `--role ${command} `

/** Reads options: the flag if given, else `DCOUNTER_<NAME>` if set and not empty. */
export class Resolver {
  constructor(private readonly given: Readonly<Record<string, string>>, private readonly env: Env) {}

  /** The value of `--name`, parsed; none when neither flag nor variable is set. */
  optional<A>(name: string, parser: (raw: string) => Values.Parsed<A>): Either.Either<Option.Option<A>, UsageError> {
    const flag = this.given[name]
    if (flag !== undefined) {
      return Either.mapBoth(parser(flag), {
        onLeft: (expected) => new UsageError({ message: `invalid --${name} "${flag}": ${expected}` }),
        onRight: Option.some
      })
    }
    const variable = nonEmptyEnv(this.env, name)
    if (variable !== undefined) {
      return Either.mapBoth(parser(variable), {
        onLeft: (expected) =>
          new UsageError({ message: `invalid ${envName(name)}="${variable}" (--${name}): ${expected}` }),
        onRight: Option.some
      })
    }
    return Either.right(Option.none())
  }

  /** The value of `--name`, parsed, or `fallback`. */
  get<A>(name: string, parser: (raw: string) => Values.Parsed<A>, fallback: A): Either.Either<A, UsageError> {
    return Either.map(this.optional(name, parser), Option.getOrElse(() => fallback))
  }

  /** Whether `--name` was given on the command line or by its variable. */
  isSet(name: string): boolean {
    return this.given[name] !== undefined || nonEmptyEnv(this.env, name) !== undefined
  }
}

const logLevels: ReadonlyArray<LogLevelName> = ["debug", "info", "warn", "error"]
const logFormats: ReadonlyArray<LogFormat> = ["pretty", "json"]

const resolveLogging = (r: Resolver, level: LogLevelName = "info" as LogLevelName) =>
  Effect.gen(function*() {
    return {
      level: yield* r.get("log-level", Values.oneOf(logLevels), level),
      format: yield* r.get("log-format", Values.oneOf(logFormats), "pretty" as LogFormat)
    } satisfies LoggingOptions
  })

/** `--cluster-key`, or the content of `--cluster-key-file` (never both). */
const clusterKey = (r: Resolver) =>
  Effect.gen(function*() {
    const inline = yield* r.optional("cluster-key", Values.nonEmpty)
    const file = yield* r.optional("cluster-key-file", Values.nonEmpty)
    if (Option.isNone(file)) return Option.map(inline, Redacted.make)
    if (Option.isSome(inline)) {
      return yield* new UsageError({
        message: "--cluster-key-file and --cluster-key exclude each other: give one of them"
      })
    }
    const path = file.value
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(path).pipe(
      Effect.mapError((e) =>
        new UsageError({ message: `invalid --cluster-key-file "${path}": cannot read it (${e.message})` })
      )
    )
    const key = text.trim()
    if (key === "") return yield* new UsageError({ message: `invalid --cluster-key-file "${path}": the file is empty` })
    return Option.some(Redacted.make(key))
  })

/** `--resp-password`, or the content of `--resp-password-file` (one trailing newline dropped). */
const respPassword = (r: Resolver) =>
  Effect.gen(function*() {
    const given = yield* r.optional("resp-password", Values.nonEmpty)
    const file = yield* r.optional("resp-password-file", Values.nonEmpty)
    if (Option.isSome(given) && Option.isSome(file)) {
      return yield* new UsageError({ message: "--resp-password and --resp-password-file are exclusive: give one" })
    }
    if (Option.isSome(given)) return Option.some(Redacted.make(given.value))
    if (Option.isNone(file)) return Option.none()
    const read = yield* Effect.try({
      try: () => readFileSync(file.value, "utf8").replace(/\r?\n$/, ""),
      catch: (e) =>
        new UsageError({
          message: `invalid --resp-password-file "${file.value}": cannot read it (${e instanceof Error ? e.message : String(e)})`
        })
    })
    if (read === "") return yield* new UsageError({ message: `invalid --resp-password-file "${file.value}": it is empty` })
    return Option.some(Redacted.make(read))
  })

const resolveDiscovery = (r: Resolver) =>
  Effect.gen(function*() {
    const d = DiscoveryConfig.defaults
    const logging = yield* resolveLogging(r)
    const config: DiscoveryConfigShape = {
      addr: yield* r.get("addr", Values.hostPort, d.addr),
      peerTtl: yield* r.get("peer-ttl", Values.duration, d.peerTtl),
      maxPeers: yield* r.get("max-peers", Values.integer(1, 10_000_000), d.maxPeers),
      clusterKey: yield* clusterKey(r)
    }
    return Invocation.Discovery({ logging, config })
  })

const portOf = (addr: string): number => Number(addr.slice(addr.lastIndexOf(":") + 1))

const resolveNode = (r: Resolver) =>
  Effect.gen(function*() {
    const d = NodeConfig.defaults
    const logging = yield* resolveLogging(r)
    const addr = yield* r.get("addr", Values.hostPort, d.addr)
    const givenHttpAddr = yield* r.optional("http-addr", Values.hostPort)
    const httpAddr = Option.isSome(givenHttpAddr) ? givenHttpAddr.value : NodeConfig.defaultHttpAddr(addr)
    if (Option.isNone(givenHttpAddr)) {
      const port = portOf(httpAddr)
      if (!Number.isInteger(port) || port < 1 || port > 65535) {
        return yield* new UsageError({
          message: `invalid --addr "${addr}": the default --http-addr port 8010 + (${
            portOf(addr)
          } - 9000) is out of range; give --http-addr`
        })
      }
    }
    if (httpAddr === addr) {
      return yield* new UsageError({ message: `invalid --http-addr "${httpAddr}": it must differ from --addr` })
    }
    const advertise = yield* resolveAdvertise(r, addr, httpAddr)
    const discovery = yield* r.optional("discovery", Values.discoverySource)
    const syncInterval = yield* r.get("sync-interval", Values.duration, d.syncInterval)
    const config: NodeConfigShape = {
      addr,
      httpAddr,
      discovery: Option.flatMap(discovery, (source) => source._tag === "Server" ? Option.some(source.addr) : Option.none()),
      peers: yield* r.get("peers", Values.hostPortList, d.peers),
      dataDir: yield* r.get("data-dir", Values.nonEmpty, NodeConfig.defaultDataDir(addr)),
      syncInterval,
      fullSyncInterval: yield* r.get("full-sync-interval", Values.duration, Duration.times(syncInterval, 10)),
      maxSyncPeers: yield* r.get("max-sync-peers", Values.integer(1, 1000), d.maxSyncPeers),
      heartbeatInterval: yield* r.get("heartbeat-interval", Values.duration, d.heartbeatInterval),
      maxFails: yield* r.get("max-fails", Values.integer(1, 1000), d.maxFails),
      failureTimeout: yield* r.get("failure-timeout", Values.duration, d.failureTimeout),
      clusterKey: yield* clusterKey(r),
      eagerPush: yield* r.get("eager-push", Values.boolean, d.eagerPush),
      pushWindow: yield* r.get("push-window", Values.duration, d.pushWindow),
      respAddr: yield* r.optional("resp-addr", Values.hostPort),
      respPassword: yield* respPassword(r),
      advertiseAddr: advertise.addr,
      advertiseHttpAddr: advertise.httpAddr,
      discoveryDns: Option.flatMap(discovery, (source) => source._tag === "Dns" ? Option.some(source.dns) : Option.none()),
      dnsServer: yield* r.optional("dns-server", Values.dnsServer)
    }
    if (Option.isSome(config.respAddr) && (config.respAddr.value === addr || config.respAddr.value === httpAddr)) {
      return yield* new UsageError({
        message: `invalid --resp-addr "${config.respAddr.value}": it must differ from --addr and --http-addr`
      })
    }
    return Invocation.Node({ logging, config })
  })

/**
 * `--advertise-addr` and `--advertise-http-addr`. A wildcard bind (0.0.0.0, ::) is never
 * advertised: `--addr` on a wildcard needs `--advertise-addr`; `--http-addr` on a wildcard
 * is advertised with the host of the advertised gossip address (its own port kept).
 */
const resolveAdvertise = (r: Resolver, addr: string, httpAddr: string) =>
  Effect.gen(function*() {
    const givenAddr = yield* r.optional("advertise-addr", Values.advertisableHostPort)
    const givenHttp = yield* r.optional("advertise-http-addr", Values.advertisableHostPort)
    if (Option.isNone(givenAddr) && Values.isWildcardHost(Values.hostOf(addr))) {
      return yield* new UsageError({
        message: `missing --advertise-addr: --addr "${addr}" binds every interface, which cannot be advertised; ` +
          "give --advertise-addr host:port (the address peers reach this node at)"
      })
    }
    const gossipHost = Values.hostOf(Option.getOrElse(givenAddr, () => addr))
    const httpAddrOut = Option.isSome(givenHttp) || !Values.isWildcardHost(Values.hostOf(httpAddr))
      ? givenHttp
      : Option.some(`${gossipHost.includes(":") ? `[${gossipHost}]` : gossipHost}:${Values.portOf(httpAddr)}`)
    return { addr: givenAddr, httpAddr: httpAddrOut }
  })

const resolveGateway = (r: Resolver) =>
  Effect.gen(function*() {
    const d = GatewayConfig.defaults
    const logging = yield* resolveLogging(r)
    const nodes = yield* r.get("nodes", Values.nodeSources, { urls: d.nodes, dns: [] })
    const config: GatewayConfigShape = {
      addr: yield* r.get("addr", Values.hostPort, d.addr),
      discovery: yield* r.optional("discovery", Values.hostPort),
      nodes: nodes.urls,
      refreshInterval: yield* r.get("refresh-interval", Values.duration, d.refreshInterval),
      clusterKey: yield* clusterKey(r),
      nodesDns: nodes.dns,
      dnsServer: yield* r.optional("dns-server", Values.dnsServer)
    }
    if (Option.isNone(config.discovery) && config.nodes.length === 0 && nodes.dns.length === 0) {
      return yield* new UsageError({
        message: "the gateway needs --discovery host:port or --nodes http://host:port,... to find nodes"
      })
    }
    return Invocation.Gateway({ logging, config })
  })

const resolveSimulate = (r: Resolver) =>
  Effect.gen(function*() {
    const d = simulateDefaults
    const logging = yield* resolveLogging(r, d.logLevel)
    const options: SimulateOptions = {
      nodeCount: yield* r.get("node-count", Values.integer(1, 200), d.nodeCount),
      duration: yield* r.get("duration", Values.duration, d.duration),
      rate: yield* r.get("rate", Values.integer(1, 1_000_000), d.rate),
      partitions: yield* r.get("partitions", Values.integer(0, 1000), d.partitions),
      crashes: yield* r.get("crashes", Values.integer(0, 1000), d.crashes),
      seed: yield* r.optional("seed", Values.integer(0, 2 ** 32 - 1)),
      syncInterval: yield* r.get("sync-interval", Values.duration, d.syncInterval),
      convergeTimeout: yield* r.get("converge-timeout", Values.duration, d.convergeTimeout),
      drop: yield* r.get("drop", Values.decimal(0, 1), d.drop),
      delay: yield* r.get("delay", Values.durationOrZero, d.delay)
    }
    if (options.nodeCount < 2 && (options.partitions > 0 || options.crashes > 0)) {
      return yield* new UsageError({ message: "invalid --node-count: partitions and crashes need at least 2 nodes" })
    }
    return Invocation.Simulate({ logging, options })
  })

const resolveWal = (r: Resolver, action: "check" | "repair") =>
  Effect.gen(function*() {
    const logging = yield* resolveLogging(r)
    const dataDir = yield* r.optional("data-dir", Values.nonEmpty)
    if (Option.isNone(dataDir)) {
      return yield* new UsageError({ message: `missing --data-dir: "dcounter wal ${action}" needs the node's data directory` })
    }
    return Invocation.Wal({ logging, action, dataDir: dataDir.value })
  })
