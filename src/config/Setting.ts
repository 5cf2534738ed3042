/**
 * One option of dcounter, declared once: its flag name, what its value looks like, what it
 * does and its default (the help and docs/configuration.md are rendered from these), and
 * the `Config` that reads and validates it. The key of that `Config` is the flag name
 * (`sync-interval`): the command line is a `ConfigProvider` over those keys and the
 * environment one over `DCOUNTER_SYNC_INTERVAL` (ConfigSource.ts), so a flag, its variable,
 * its parser and its default cannot drift apart.
 *
 * A value that does not parse fails with `ConfigError.InvalidData` at the option's path,
 * carrying only what was expected; ConfigSource turns it into the one line that names the
 * flag or the variable the value came from. A check across options fails with the whole
 * line at the empty path (`fail`).
 */
import { Config, ConfigError, Either, type Option } from "effect"
import type { Parsed } from "./Values.js"

/** What the help says about an option. */
export interface SettingDoc {
  /** without the leading `--` */
  readonly name: string
  /** what the value looks like, for the help (`host:port`, `duration`) */
  readonly value: string
  readonly description: string
  /** the default as the user would type it, or a sentence when it is derived; none: required */
  readonly default?: string | undefined
}

/** An option: its documentation and the `Config` reading it from the key `name`. */
export interface Setting<A> extends SettingDoc {
  readonly config: Config.Config<A>
}

/** `--data-dir` -> `DCOUNTER_DATA_DIR` */
export const envName = (flag: string): string => `DCOUNTER_${flag.toUpperCase().replaceAll("-", "_")}`

/** The raw text at key `name`, parsed; a parse failure is `InvalidData` at `[name]`. */
export const read = <A>(name: string, parse: (raw: string) => Parsed<A>): Config.Config<A> =>
  Config.nested(
    Config.string().pipe(
      Config.mapOrFail((raw) => Either.mapLeft(parse(raw), (expected) => ConfigError.InvalidData([], expected)))
    ),
    name
  )

/** An option with a fixed default, shown in the help as `shown`. */
export const withDefault = <A>(
  doc: Omit<SettingDoc, "default"> & { readonly default: string },
  parse: (raw: string) => Parsed<A>,
  fallback: A
): Setting<A> => ({ ...doc, config: read(doc.name, parse).pipe(Config.withDefault(fallback)) })

/** An option that may be unset (none); its help default says what unset means. */
export const optional = <A>(
  doc: Omit<SettingDoc, "default"> & { readonly default: string },
  parse: (raw: string) => Parsed<A>
): Setting<Option.Option<A>> => ({ ...doc, config: Config.option(read(doc.name, parse)) })

/** A failed check across options: `message` is the whole line the user sees. */
export const fail = (message: string): ConfigError.ConfigError => ConfigError.InvalidData([], message)
