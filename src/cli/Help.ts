/**
 * `dcounter --help`, `dcounter --role <role> --help`, `dcounter simulate --help` and
 * `dcounter wal --help`, rendered from the table in Flags.ts: every option with its value,
 * what it does, its default and its environment variable.
 */
import type { Command, FlagDoc, Section } from "./Flags.js"
import { envName, sections, sectionsOf } from "./Flags.js"

const WIDTH = 100
const INDENT = 4

const usageLines: ReadonlyArray<readonly [string, string]> = [
  ["dcounter --role discovery [options]", "the registry nodes find each other through"],
  ["dcounter --role node [options]", "a counter replica: HTTP API, write-ahead log, gossip"],
  ["dcounter --role gateway [options]", "HTTP front door and live dashboard over the nodes"],
  ["dcounter simulate [options]", "an in-process cluster under faults, then a report"],
  ["dcounter wal check|repair --data-dir D", "verify or repair a stopped node's write-ahead log"],
  ["dcounter get|inc|dec|list|status ...", "the shell client (dcounter get --help)"]
]

const notes = [
  "Every option --foo-bar can also be set by the environment variable DCOUNTER_FOO_BAR; a flag beats the " +
  "variable. Durations are written like 500ms, 2s or 1m. An invalid value stops dcounter with exit status 2 " +
  "and one line naming the option, before anything starts."
]

/** Splits `text` into lines of at most `width` characters (words longer than that stay whole). */
const wrap = (text: string, width: number): Array<string> => {
  const lines: Array<string> = []
  let line = ""
  for (const word of text.split(/\s+/).filter((w) => w !== "")) {
    if (line === "") line = word
    else if (line.length + 1 + word.length <= width) line += ` ${word}`
    else {
      lines.push(line)
      line = word
    }
  }
  if (line !== "") lines.push(line)
  return lines
}

const paragraph = (text: string, indent: number): Array<string> =>
  wrap(text, WIDTH - indent).map((l) => " ".repeat(indent) + l)

const flagLines = (flag: FlagDoc): Array<string> => [
  `  --${flag.name} ${flag.value}`,
  ...paragraph(flag.description, INDENT + 2),
  ...paragraph(
    `${flag.default === undefined ? "" : `Default: ${flag.default}. `}Env: ${envName(flag.name)}.`,
    INDENT + 2
  )
]

const section = (name: Section): Array<string> => {
  const { flags, title } = sections[name]
  return [`${title}:`, ...flags.flatMap((f) => [...flagLines(f), ""])]
}

const usage = (lines: ReadonlyArray<readonly [string, string]>): Array<string> => {
  const width = Math.max(...lines.map(([cmd]) => cmd.length))
  return ["Usage:", ...lines.map(([cmd, what]) => `  ${cmd.padEnd(width)}   ${what}`), ""]
}

/** The help of every role and command. */
export const full = (): string =>
  [
    "dcounter: a distributed counter that keeps counting through partitions and crashes,",
    "and never loses or double counts an acknowledged write.",
    "",
    ...usage(usageLines),
    ...(["common", "discovery", "node", "gateway", "simulate", "wal", "output"] as const).flatMap(section),
    "Notes:",
    ...notes.flatMap((n) => paragraph(n, 2)),
    ...paragraph("dcounter --role <role> --help shows only that role's options.", 2)
  ].join("\n")

const commandUsage = (command: Command): readonly [string, string] => {
  switch (command) {
    case "simulate":
      return usageLines[3]!
    case "wal":
      return usageLines[4]!
    case "discovery":
      return usageLines[0]!
    case "node":
      return usageLines[1]!
    case "gateway":
      return usageLines[2]!
  }
}

/** The help of one role or command: its usage line and only the options it takes. */
export const forCommand = (command: Command): string =>
  [
    ...usage([commandUsage(command)]),
    ...sectionsOf[command].flatMap(section),
    "Notes:",
    ...notes.flatMap((n) => paragraph(n, 2))
  ].join("\n")
