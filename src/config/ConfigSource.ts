/**
 * Where a command's settings come from: the flags given on its command line, else the
 * `DCOUNTER_*` environment (a variable set to the empty string counts as unset), else the
 * defaults declared in the settings. Both sources are `ConfigProvider`s over the same keys
 * (the flag names), so a role's `Config` is read once, through `provider`, and validated
 * once, inside that `Config`.
 *
 * A `ConfigError` becomes the one-line `UsageError` the user sees (exit status 2): a value
 * that did not parse names the flag or the variable it came from, with the value as given.
 */
import { type Config, ConfigError, ConfigProvider, Effect } from "effect"
import { envName } from "./Setting.js"
import { type Env, UsageError } from "./Usage.js"

/** The flags given on the command line, by name (without `--`), as typed. */
export type Flags = Readonly<Record<string, string>>

const fromEnv = (env: Env): ConfigProvider.ConfigProvider =>
  ConfigProvider.fromMap(
    new Map(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1].trim() !== ""))
  ).pipe(ConfigProvider.mapInputPath(envName))

/** The flags, else the environment. */
export const provider = (flags: Flags, env: Env): ConfigProvider.ConfigProvider =>
  ConfigProvider.fromMap(new Map(Object.entries(flags))).pipe(ConfigProvider.orElse(() => fromEnv(env)))

/** The leaves of an error, left to right: the first is the first failing setting in declaration order. */
const leaves = (error: ConfigError.ConfigError): ReadonlyArray<ConfigError.ConfigError> => {
  switch (error._op) {
    case "And":
    case "Or":
      return [...leaves(error.left), ...leaves(error.right)]
    default:
      return [error]
  }
}

/** The line the user sees for a failed read of the settings. */
export const describe = (error: ConfigError.ConfigError, flags: Flags, env: Env): string => {
  const first = leaves(error)[0] ?? error
  if (first._op === "InvalidData" || first._op === "MissingData") {
    const [name, ...rest] = first.path
    if (name === undefined || rest.length > 0) return first.message
    if (first._op === "MissingData") return `missing --${name}`
    const flag = flags[name]
    return flag !== undefined
      ? `invalid --${name} "${flag}": ${first.message}`
      : `invalid ${envName(name)}="${env[envName(name)] ?? ""}" (--${name}): ${first.message}`
  }
  return first._op === "SourceUnavailable" || first._op === "Unsupported" ? first.message : String(first)
}

/** Reads `config` from the flags, else the environment; a failure is one `UsageError` line. */
export const load = <A>(config: Config.Config<A>, flags: Flags, env: Env): Effect.Effect<A, UsageError> =>
  provider(flags, env).load(config).pipe(
    Effect.mapError((error) => new UsageError({ message: describe(error, flags, env) })),
    Effect.withSpan("ConfigSource.load")
  )
