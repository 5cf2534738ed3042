/**
 * Every option of `dcounter`, grouped by the role or command that takes it. Each option is
 * declared once, beside the `Config` that reads it (config/*Config.ts, CommonSettings.ts,
 * SimulateSettings.ts, WalSettings.ts); this module only gathers them: the help (Help.ts)
 * and the @effect/cli options that read the command line (`commandLine`) come from these
 * tables, so they cannot drift apart from what the `Config`s read.
 * Every option `--foo-bar` also reads the environment variable `DCOUNTER_FOO_BAR`; a flag
 * beats the variable.
 */
import * as Options from "@effect/cli/Options"
import * as CommonSettings from "../config/CommonSettings.js"
import * as DiscoveryConfig from "../config/DiscoveryConfig.js"
import * as GatewayConfig from "../config/GatewayConfig.js"
import * as NodeConfig from "../config/NodeConfig.js"
import type { SettingDoc } from "../config/Setting.js"
import * as SimulateSettings from "./SimulateSettings.js"
import * as WalSettings from "./WalSettings.js"

export { envName } from "../config/Setting.js"

/** What the help says about one option. */
export type FlagDoc = SettingDoc

export type Section = "common" | "discovery" | "node" | "gateway" | "simulate" | "wal" | "output"

export interface SectionDoc {
  readonly title: string
  readonly flags: ReadonlyArray<FlagDoc>
}

export const sections: Readonly<Record<Section, SectionDoc>> = {
  common: { title: "Options of every role", flags: CommonSettings.settings },
  discovery: { title: "--role discovery", flags: DiscoveryConfig.settings },
  node: { title: "--role node", flags: NodeConfig.settings },
  gateway: { title: "--role gateway", flags: GatewayConfig.settings },
  simulate: { title: "dcounter simulate", flags: SimulateSettings.settings },
  wal: { title: "dcounter wal check|repair", flags: WalSettings.settings },
  output: {
    title: "Output options (simulate, wal)",
    flags: [
      CommonSettings.logLevel("info", "info (simulate: error, to keep the progress bar readable)"),
      CommonSettings.logFormat
    ]
  }
}

/** The sections each command reads its options from. */
export const sectionsOf = {
  discovery: ["common", "discovery"],
  node: ["common", "node"],
  gateway: ["common", "gateway"],
  simulate: ["output", "simulate"],
  wal: ["output", "wal"]
} as const satisfies Record<string, ReadonlyArray<Section>>

export type Command = keyof typeof sectionsOf

/** Every distinct option name, for the parser. */
export const allFlagNames: ReadonlyArray<string> = [
  ...new Set(Object.values(sections).flatMap((s) => s.flags.map((f) => f.name)))
]

/** The option names a command accepts. */
export const flagNamesOf = (command: Command): ReadonlySet<string> =>
  new Set(sectionsOf[command].flatMap((s) => sections[s].flags.map((f) => f.name)))

/**
 * The command line as @effect/cli reads it: one optional text per option name. The text is
 * parsed and checked by the command's `Config` (config/ConfigSource.ts), not here, so that
 * a flag and its variable are validated by the same code with the same one-line errors.
 */
export const commandLine = Options.all(
  Object.fromEntries(allFlagNames.map((name) => [name, Options.optional(Options.text(name))] as const))
)
