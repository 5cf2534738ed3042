/**
 * Turns the command line and the environment into one fully validated `Invocation`, or a
 * `UsageError` whose message is one line naming the option at fault. Nothing starts before
 * this has succeeded, so a process never runs half-configured.
 *
 * @effect/cli reads the flags (`Options.processCommandLine` over `Flags.commandLine`); the
 * command's `Config` (NodeConfig.config, ...) then reads them, else the `DCOUNTER_*`
 * variables, else the defaults, through one `ConfigProvider` (config/ConfigSource.ts), and
 * validates them once. The parser does not go through `Command.run`, whose built-in
 * `--log-level` would swallow ours and whose errors are not one line with exit status 2.
 */
import type * as CliApp from "@effect/cli/CliApp"
import * as CliConfig from "@effect/cli/CliConfig"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import { Config, Data, Effect, Option } from "effect"
import * as CommonSettings from "../config/CommonSettings.js"
import * as ConfigSource from "../config/ConfigSource.js"
import type { DiscoveryConfigShape } from "../config/DiscoveryConfig.js"
import * as DiscoveryConfig from "../config/DiscoveryConfig.js"
import type { GatewayConfigShape } from "../config/GatewayConfig.js"
import * as GatewayConfig from "../config/GatewayConfig.js"
import type { NodeConfigShape } from "../config/NodeConfig.js"
import * as NodeConfig from "../config/NodeConfig.js"
import { type Env, UsageError } from "../config/Usage.js"
import type { SimulateOptions } from "../simulate/SimulateOptions.js"
import type { Command } from "./Flags.js"
import { allFlagNames, commandLine, envName, flagNamesOf } from "./Flags.js"
import * as Help from "./Help.js"
import * as SimulateSettings from "./SimulateSettings.js"
import * as WalSettings from "./WalSettings.js"

export type LoggingOptions = CommonSettings.LoggingOptions

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

const isHelpFlag = (arg: string) => arg === "--help" || arg === "-h"

/** Parses `argv` (without the node executable and script) and `env` into an invocation. */
export const parse: (
  argv: ReadonlyArray<string>,
  env: Env
) => Effect.Effect<Invocation, UsageError, CliApp.CliApp.Environment> = Effect.fn("Invocation.parse")(
  function*(argv: ReadonlyArray<string>, env: Env) {
    const [first, second] = argv
    if (first === "help" || (argv.length === 1 && isHelpFlag(first!))) {
      return Invocation.Help({ text: Help.full() })
    }
    if (argv.includes("--version") || argv.includes("-V")) return Invocation.Version()
    if (first === "simulate") {
      const rest = argv.slice(1)
      if (rest.some(isHelpFlag)) return Invocation.Help({ text: Help.forCommand("simulate") })
      const given = yield* flags("simulate", rest)
      const read = Config.all({
        logging: CommonSettings.logging(SimulateSettings.defaults.logLevel),
        options: SimulateSettings.config
      })
      return Invocation.Simulate(yield* ConfigSource.load(read, given, env))
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
      const given = yield* flags("wal", argv.slice(2))
      const read = Config.all({ logging: CommonSettings.logging(), dataDir: WalSettings.config(second) })
      return Invocation.Wal({ ...(yield* ConfigSource.load(read, given, env)), action: second })
    }
    if (argv.some(isHelpFlag)) {
      const role = roleInArgv(argv)
      return Invocation.Help({ text: role === undefined ? Help.full() : Help.forCommand(role) })
    }
    const role = yield* resolveRole(argv, env)
    const given = yield* flags(role, argv)
    switch (role) {
      case "discovery":
        return Invocation.Discovery(yield* ConfigSource.load(roleConfig(DiscoveryConfig.config), given, env))
      case "node":
        return Invocation.Node(yield* ConfigSource.load(roleConfig(NodeConfig.config), given, env))
      case "gateway":
        return Invocation.Gateway(yield* ConfigSource.load(roleConfig(GatewayConfig.config), given, env))
    }
  }
)

/** What a role reads: the logger's settings and its own. */
const roleConfig = <A>(config: Config.Config<A>) => Config.all({ logging: CommonSettings.logging(), config })

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
 * Returns the flags given, by name, as typed (their `Config`s parse them).
 */
const flags = (
  command: Command,
  args: ReadonlyArray<string>
): Effect.Effect<ConfigSource.Flags, UsageError, CliApp.CliApp.Environment> =>
  Effect.gen(function*() {
    const [error, leftover, values] = yield* Options.processCommandLine(commandLine, args, cliConfig).pipe(
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
    return given
  })

const commandLabel = (command: Command): string =>
  command === "simulate" ? "dcounter simulate" : command === "wal" ? "dcounter wal" : `--role ${command}`

const helpHint = (command: Command): string =>
  command === "simulate" ? "simulate " : command === "wal" ? "wal " : `--role ${command} `
