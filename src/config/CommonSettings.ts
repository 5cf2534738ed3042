/**
 * The options every role takes (`--role`, `--log-level`, `--log-format`, `--cluster-key`,
 * `--cluster-key-file`), declared once (see Setting.ts), and their `Config`s.
 */
import { Config, Either, Option, Redacted } from "effect"
import { readFileSync } from "node:fs"
import type * as Logging from "../observability/Logging.js"
import * as Setting from "./Setting.js"
import * as Values from "./Values.js"

export interface LoggingOptions {
  readonly level: Logging.Level
  readonly format: Logging.Format
}

const levels: ReadonlyArray<Logging.Level> = ["debug", "info", "warn", "error"]
const formats: ReadonlyArray<Logging.Format> = ["pretty", "json"]

/** `--role`: chosen before any role's settings are read (Invocation.ts), documented here. */
export const role: Setting.SettingDoc = {
  name: "role",
  value: "discovery|node|gateway",
  description: "Which server this process runs. Required."
}

/** `--log-level` with the given default (simulate keeps its progress bar readable with `error`). */
export const logLevel = (fallback: Logging.Level = "info", shown: string = fallback): Setting.Setting<Logging.Level> =>
  Setting.withDefault(
    {
      name: "log-level",
      value: "debug|info|warn|error",
      description: "Minimum level of the log lines written.",
      default: shown
    },
    Values.oneOf(levels),
    fallback
  )

export const logFormat: Setting.Setting<Logging.Format> = Setting.withDefault(
  {
    name: "log-format",
    value: "pretty|json",
    description: "pretty: one readable line per event; json: one JSON object per line, for machines.",
    default: "pretty"
  },
  Values.oneOf(formats),
  "pretty"
)

/** The logger's settings, `--log-level` defaulting to `level`. */
export const logging = (level: Logging.Level = "info"): Config.Config<LoggingOptions> =>
  Config.all({ level: logLevel(level).config, format: logFormat.config })

export const clusterKey: Setting.Setting<Option.Option<string>> = Setting.optional(
  {
    name: "cluster-key",
    value: "secret",
    description:
      "Shared secret of the cluster. Nodes authenticate their gossip frames with it and drop frames without a " +
      "valid tag; discovery answers 401 to register, heartbeat and deregister calls without it. The nodes and " +
      "the discovery server of one cluster take the same key (the gateway accepts it and needs none).",
    default: "none (no authentication)"
  },
  Values.nonEmpty
)

export const clusterKeyFile: Setting.Setting<Option.Option<string>> = Setting.optional(
  {
    name: "cluster-key-file",
    value: "path",
    description:
      "Read the cluster key from this file (a mounted Secret), instead of --cluster-key (give one, not both). " +
      "Surrounding white space and the final newline are not part of the key; an empty or unreadable file is an error.",
    default: "none"
  },
  Values.nonEmpty
)

/** The settings shown in the help under "Options of every role". */
export const settings: ReadonlyArray<Setting.SettingDoc> = [role, logLevel(), logFormat, clusterKey, clusterKeyFile]

/** Reads a secret file, or says why it cannot be read. */
export const readSecretFile = (path: string): Either.Either<string, string> =>
  Either.try({
    try: () => readFileSync(path, "utf8"),
    catch: (e) => `cannot read it (${e instanceof Error ? e.message : String(e)})`
  })

/**
 * `--cluster-key`, or the content of `--cluster-key-file` (never both). Reading the file
 * belongs to validation: a role never starts with a key it could not read.
 */
export const clusterKeyConfig: Config.Config<Option.Option<Redacted.Redacted<string>>> = Config.all([
  clusterKey.config,
  clusterKeyFile.config
]).pipe(
  Config.mapOrFail(([inline, file]) => {
    if (Option.isNone(file)) return Either.right(Option.map(inline, Redacted.make))
    if (Option.isSome(inline)) {
      return Either.left(Setting.fail("--cluster-key-file and --cluster-key exclude each other: give one of them"))
    }
    const path = file.value
    return readSecretFile(path).pipe(
      Either.map((text) => text.trim()),
      Either.filterOrLeft((key) => key !== "", () => "the file is empty"),
      Either.mapBoth({
        onLeft: (why) => Setting.fail(`invalid --cluster-key-file "${path}": ${why}`),
        onRight: (key) => Option.some(Redacted.make(key))
      })
    )
  })
)
