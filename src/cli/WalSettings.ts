/**
 * The option of `dcounter wal check|repair`, declared once (see config/Setting.ts): the
 * data directory of a stopped node, required.
 */
import { Config, Either, Option } from "effect"
import * as Setting from "../config/Setting.js"
import * as Values from "../config/Values.js"

const dataDir = Setting.optional(
  {
    name: "data-dir",
    value: "path",
    description:
      "Data directory of a node. check: read the snapshot and every record, change nothing, report damage " +
      "(exit 1 when the node could not start on it). repair (the node must be stopped): cut damaged records " +
      "back to the last intact one so the node can start; if acknowledged records were lost, the node gets a " +
      "new replica id so nothing is counted twice and peers give back what they hold.",
    default: "required"
  },
  Values.nonEmpty
)

export const settings: ReadonlyArray<Setting.SettingDoc> = [dataDir]

/** The data directory `wal <action>` works on. */
export const config = (action: "check" | "repair"): Config.Config<string> =>
  dataDir.config.pipe(
    Config.mapOrFail(
      Option.match({
        onNone: () =>
          Either.left(Setting.fail(`missing --data-dir: "dcounter wal ${action}" needs the node's data directory`)),
        onSome: Either.right
      })
    )
  )
