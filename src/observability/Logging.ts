/**
 * Logging for every role: `Logging.layer({ level, format })` replaces Effect's default
 * logger and sets the minimum level, so `Effect.log*` anywhere in the program goes through
 * one place.
 *
 * - `json`: one JSON object per line, for machines (`docker logs`, Loki, jq):
 *   `{"timestamp","level","message","annotations","spans","fiber","cause"?}`. Values that
 *   JSON cannot carry (bigint, cycles, errors) are rendered rather than thrown on. Besides
 *   the process's own fields (`role`, `addr`, `httpAddr`, `nodeId`), a line written while
 *   handling an HTTP request carries `requestId`, and a gossip line about a peer `peer`
 *   (its address) and, where known, `peerId` (its replica id).
 * - `pretty`: one human-readable line per entry (plus the cause's lines, indented):
 *   `2025-01-01T12:00:00.000Z INFO  gossip started addr=127.0.0.1:9000 sync=12ms`,
 *   coloured when the output is a terminal and `NO_COLOR` is unset.
 *
 * Both go to stderr: stdout stays free for what a command prints as its result (the
 * simulate report, benchmark tables), and process managers and Docker collect both.
 * Writes to stderr are synchronous on Linux, so lines logged right before exit are kept.
 */
import { Array as Arr, Cause, FiberId, HashMap, Inspectable, Layer, List, Logger, LogLevel } from "effect"

export type Level = "debug" | "info" | "warn" | "error"
export type Format = "pretty" | "json"

export interface Options {
  readonly level: Level
  readonly format: Format
  /**
   * Where lines go (without the trailing newline); default: stderr. Tests capture here.
   */
  readonly sink?: (line: string) => void
  /** Colours in `pretty`; default: when stderr is a terminal and NO_COLOR is unset. */
  readonly colors?: boolean
}

export const levels: ReadonlyArray<Level> = ["debug", "info", "warn", "error"]

export const toLogLevel = (level: Level): LogLevel.LogLevel => {
  switch (level) {
    case "debug":
      return LogLevel.Debug
    case "info":
      return LogLevel.Info
    case "warn":
      return LogLevel.Warning
    case "error":
      return LogLevel.Error
  }
}

/** Effect's level as our lower-case name; Fatal is an error, Trace is debug. */
const levelName = (l: LogLevel.LogLevel): string => {
  switch (l._tag) {
    case "All":
    case "Trace":
      return "trace"
    case "Debug":
      return "debug"
    case "Info":
      return "info"
    case "Warning":
      return "warn"
    case "Error":
      return "error"
    case "Fatal":
      return "fatal"
    case "None":
      return "none"
  }
}

/**
 * JSON.stringify that never throws on what logs carry: bigint becomes a string, a cycle
 * becomes "[Circular]", an Error keeps its name and message, and a value whose getter
 * throws is replaced by a note saying so.
 */
export const safeStringify = (value: unknown): string => {
  const ancestors: Array<unknown> = []
  const replacer = function (this: unknown, _key: string, v: unknown): unknown {
    if (typeof v === "bigint") return v.toString()
    if (typeof v === "symbol" || typeof v === "function") return String(v)
    if (typeof v !== "object" || v === null) return v
    while (ancestors.length > 0 && ancestors[ancestors.length - 1] !== this) ancestors.pop()
    if (ancestors.includes(v)) return "[Circular]"
    ancestors.push(v)
    if (v instanceof Error) return { ...v, name: v.name, message: v.message }
    return v
  }
  try {
    return JSON.stringify(value, replacer) ?? "null"
  } catch (e) {
    return JSON.stringify(`[unserializable: ${e instanceof Error ? e.message : String(e)}]`)
  }
}

/**
 * A value as log text: strings as they are, anything else as (safe) JSON; a value whose
 * `toJSON` is a string (a date, a request id made when first logged) as that string.
 */
const text = (u: unknown): string => {
  if (typeof u === "string") return u
  if (typeof u === "number" || typeof u === "boolean" || typeof u === "bigint" || u === undefined) return String(u)
  const json = Inspectable.toJSON(u)
  return typeof json === "string" ? json : safeStringify(json)
}

const messageText = (message: unknown): string => Arr.ensure(message).map(text).join(" ")

/**
 * Annotations every line of a role carries (which process it is): fields for machines in
 * `json`, left out of `pretty`, where a reader sees them once in the start-up lines.
 */
export const processContext: ReadonlySet<string> = new Set(["role", "addr", "httpAddr", "nodeId"])

const annotationsObject = (annotations: HashMap.HashMap<string, unknown>): Record<string, unknown> => {
  const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>
  for (const [k, v] of annotations) out[k] = typeof v === "bigint" ? v.toString() : Inspectable.toJSON(v)
  return out
}

const spansObject = (spans: List.List<{ readonly label: string; readonly startTime: number }>, now: number) => {
  const out: Record<string, number> = Object.create(null) as Record<string, number>
  for (const s of spans) out[s.label] = now - s.startTime
  return out
}

/** The JSON line for one log entry. */
export const jsonLine = (o: Logger.Logger.Options<unknown>): string => {
  const line: Record<string, unknown> = {
    timestamp: o.date.toISOString(),
    level: levelName(o.logLevel),
    message: messageText(o.message),
    annotations: annotationsObject(o.annotations),
    spans: spansObject(o.spans, o.date.getTime()),
    fiber: FiberId.threadName(o.fiberId)
  }
  if (!Cause.isEmpty(o.cause)) line["cause"] = Cause.pretty(o.cause, { renderErrorCause: true })
  return safeStringify(line)
}

const COLORS: Record<string, string> = {
  trace: "90",
  debug: "36",
  info: "32",
  warn: "33",
  error: "31",
  fatal: "1;31"
}

const paint = (s: string, code: string | undefined, on: boolean) => (on && code !== undefined ? `\x1b[${code}m${s}\x1b[0m` : s)

/** `key=value`, quoting values with spaces, quotes or equals signs. */
const pair = (k: string, v: unknown): string => {
  const s = text(v)
  return `${k}=${/^[^\s"=]*$/.test(s) && s.length > 0 ? s : JSON.stringify(s)}`
}

/** The human-readable line(s) for one log entry. */
export const prettyLine = (o: Logger.Logger.Options<unknown>, colors = false): string => {
  const level = levelName(o.logLevel)
  const parts = [
    paint(o.date.toISOString(), "2", colors),
    paint(level.toUpperCase().padEnd(5), COLORS[level], colors),
    messageText(o.message)
  ]
  for (const [k, v] of o.annotations) if (!processContext.has(k)) parts.push(paint(pair(k, v), "2", colors))
  const now = o.date.getTime()
  for (const s of o.spans) parts.push(paint(`${s.label}=${now - s.startTime}ms`, "2", colors))
  let out = parts.join(" ")
  if (!Cause.isEmpty(o.cause)) {
    const cause = Cause.pretty(o.cause, { renderErrorCause: true })
    out += "\n" + cause.split("\n").map((l) => "    " + l).join("\n")
  }
  return out
}

/**
 * stderr can go away under a running server (`dcounter ... 2>&1 | head`, a closed pipe):
 * its asynchronous EPIPE would otherwise be an uncaught 'error' event that kills the
 * process. Logging stops instead; there is nowhere left to say so.
 */
let stderrGone = false
let stderrWatched = false
const watchStderr = (): void => {
  if (stderrWatched) return
  stderrWatched = true
  process.stderr.on("error", () => {
    stderrGone = true
  })
}

const defaultSink = (line: string): void => {
  if (!stderrGone) process.stderr.write(line + "\n")
}

const defaultColors = (): boolean =>
  process.stderr.isTTY === true && (process.env["NO_COLOR"] === undefined || process.env["NO_COLOR"] === "")

/** The logger alone (no level filter); `layer` is what programs want. */
export const make = (options: Options): Logger.Logger<unknown, void> => {
  if (options.sink === undefined) watchStderr()
  const sink = options.sink ?? defaultSink
  if (options.format === "json") return Logger.make((o) => sink(jsonLine(o)))
  const colors = options.colors ?? defaultColors()
  return Logger.make((o) => sink(prettyLine(o, colors)))
}

/** Replaces Effect's default logger with ours and sets the minimum level. */
export const layer = (options: Options): Layer.Layer<never> =>
  Layer.merge(Logger.replace(Logger.defaultLogger, make(options)), Logger.minimumLogLevel(toLogLevel(options.level)))
