/**
 * The shell client's command line: `dcounter get|inc|dec [NAME]`, `dcounter list`,
 * `dcounter status`, each with `--url` and `--json` (and `--by`, `--prefix` where they
 * apply), parsed into one validated `ClientCommand` or a one-line `UsageError` naming the
 * option (exit 2). Every option also reads `DCOUNTER_<NAME>`; a flag beats the variable.
 */
import { Data, Effect, Either } from "effect"
import { COUNTER_NAME_PATTERN } from "../crdt/CounterName.js"
import { type Env, UsageError } from "../config/Usage.js"

export const DEFAULT_URL = "http://127.0.0.1:8080"

export const clientCommands = ["get", "inc", "dec", "list", "status"] as const
export type ClientCommandName = typeof clientCommands[number]

export const isClientCommand = (word: string | undefined): word is ClientCommandName =>
  clientCommands.some((c) => c === word)

export interface Output {
  /** the gateway or node to talk to, without a trailing slash */
  readonly url: string
  readonly json: boolean
}

export type ClientCommand = Data.TaggedEnum<{
  Help: { readonly text: string }
  Get: Output & { readonly name: string | undefined }
  Add: Output & { readonly name: string | undefined; readonly sign: 1 | -1; readonly by: number | undefined }
  List: Output & { readonly prefix: string | undefined }
  Status: Output
}>
export const ClientCommand = Data.taggedEnum<ClientCommand>()

/** Usage lines, also shown by `dcounter --help`. */
export const usageLines: ReadonlyArray<readonly [string, string]> = [
  ["dcounter get [NAME] [--url U] [--json]", "print a counter's value (NAME default: the `default` counter)"],
  ["dcounter inc|dec [NAME] [--by N] [--url U] [--json]", "add or subtract N (default 1), print the new value"],
  ["dcounter list [--prefix P] [--url U] [--json]", "every named counter and its value"],
  ["dcounter status [--url U] [--json]", "every node: up or down, its value, whether they agree"]
]

export const helpText = (): string => {
  const width = Math.max(...usageLines.map(([cmd]) => cmd.length))
  return [
    "Usage (the shell client):",
    ...usageLines.map(([cmd, what]) => `  ${cmd.padEnd(width)}   ${what}`),
    "",
    "Options:",
    `  --url URL     the gateway or a node to talk to. Default: ${DEFAULT_URL}. Env: DCOUNTER_URL.`,
    "  --json        print the server's JSON answer instead of plain text. Env: DCOUNTER_JSON.",
    "  --by N        a positive integer up to 9007199254740991 (inc, dec). Default: 1. Env: DCOUNTER_BY.",
    "  --prefix P    only counters whose name starts with P (list). Env: DCOUNTER_PREFIX.",
    "",
    "Exit status: 0 ok, 1 refused by the server (4xx/5xx), 2 usage, 3 nothing answered at --url."
  ].join("\n")
}

const MAX_BY = Number.MAX_SAFE_INTEGER

type Flag = "url" | "json" | "by" | "prefix"
const flagsOf: Readonly<Record<ClientCommandName, ReadonlyArray<Flag>>> = {
  get: ["url", "json"],
  inc: ["url", "json", "by"],
  dec: ["url", "json", "by"],
  list: ["url", "json", "prefix"],
  status: ["url", "json"]
}
const takesName: Readonly<Record<ClientCommandName, boolean>> = {
  get: true,
  inc: true,
  dec: true,
  list: false,
  status: false
}

const usage = (message: string) => new UsageError({ message })

const envOf = (env: Env, flag: Flag): string | undefined => {
  const value = env[`DCOUNTER_${flag.toUpperCase()}`]
  return value === undefined || value.trim() === "" ? undefined : value
}

const parseUrl = (raw: string, from: string): Either.Either<string, UsageError> => {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return Either.left(usage(`invalid ${from} "${raw}": expected a URL like ${DEFAULT_URL}`))
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return Either.left(usage(`invalid ${from} "${raw}": expected an http:// or https:// URL`))
  }
  return Either.right(url.href.replace(/\/+$/, ""))
}

const parseBy = (raw: string, from: string): Either.Either<number, UsageError> => {
  const n = /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : NaN
  return Number.isSafeInteger(n) && n >= 1
    ? Either.right(n)
    : Either.left(usage(`invalid ${from} "${raw}": expected a positive integer up to ${MAX_BY}`))
}

const parseBoolean = (raw: string, from: string): Either.Either<boolean, UsageError> => {
  const v = raw.trim().toLowerCase()
  if (["1", "true", "yes", "on"].includes(v)) return Either.right(true)
  if (["0", "false", "no", "off"].includes(v)) return Either.right(false)
  return Either.left(usage(`invalid ${from} "${raw}": expected true or false`))
}

/** Parses `argv` (starting with the command word) and `env`. */
export const parse = (argv: ReadonlyArray<string>, env: Env): Effect.Effect<ClientCommand, UsageError> =>
  Effect.gen(function*() {
    const command = argv[0]
    if (!isClientCommand(command)) return yield* usage(`unknown command "${command}"`)
    const accepted = flagsOf[command]
    const given: Partial<Record<Flag, string>> = {}
    const positional: Array<string> = []
    const rest = argv.slice(1)
    for (let i = 0; i < rest.length; i++) {
      const arg = rest[i]!
      if (arg === "--help" || arg === "-h") return ClientCommand.Help({ text: helpText() })
      if (arg === "--") {
        positional.push(...rest.slice(i + 1))
        break
      }
      if (!arg.startsWith("--")) {
        positional.push(arg)
        continue
      }
      const eq = arg.indexOf("=")
      const name = arg.slice(2, eq < 0 ? undefined : eq)
      const flag = accepted.find((f) => f === name)
      if (flag === undefined) {
        return yield* usage(
          (["url", "json", "by", "prefix"].includes(name)
            ? `--${name} does not apply to "dcounter ${command}"`
            : `unknown option --${name}`) + ` (see dcounter ${command} --help)`
        )
      }
      if (given[flag] !== undefined) return yield* usage(`--${flag} is given more than once`)
      if (flag === "json") {
        given.json = eq < 0 ? "true" : arg.slice(eq + 1)
        continue
      }
      const value = eq < 0 ? rest[++i] : arg.slice(eq + 1)
      if (value === undefined) return yield* usage(`--${flag} needs a value`)
      given[flag] = value
    }
    if (positional.length > (takesName[command] ? 1 : 0)) {
      const extra = positional[takesName[command] ? 1 : 0]!
      return yield* usage(`unexpected argument "${extra}" (see dcounter ${command} --help)`)
    }
    const name = positional[0]
    if (name !== undefined && !COUNTER_NAME_PATTERN.test(name)) {
      return yield* usage(`invalid counter name "${name}": 1 to 128 characters of [A-Za-z0-9._:-]`)
    }

    const read = <A>(flag: Flag, parser: (raw: string, from: string) => Either.Either<A, UsageError>) => {
      const fromFlag = given[flag]
      if (fromFlag !== undefined) return Either.map(parser(fromFlag, `--${flag}`), (a): A | undefined => a)
      const fromEnv = accepted.includes(flag) ? envOf(env, flag) : undefined
      if (fromEnv !== undefined) {
        return Either.map(parser(fromEnv, `DCOUNTER_${flag.toUpperCase()} (--${flag})`), (a): A | undefined => a)
      }
      return Either.right(undefined)
    }
    const output: Output = {
      url: (yield* read("url", parseUrl)) ?? DEFAULT_URL,
      json: (yield* read("json", parseBoolean)) ?? false
    }
    switch (command) {
      case "get":
        return ClientCommand.Get({ ...output, name })
      case "inc":
      case "dec":
        return ClientCommand.Add({ ...output, name, sign: command === "inc" ? 1 : -1, by: yield* read("by", parseBy) })
      case "list":
        return ClientCommand.List({ ...output, prefix: yield* read("prefix", (raw) => Either.right(raw)) })
      case "status":
        return ClientCommand.Status(output)
    }
  })
