/** `dcounter`: parses the command line, picks the role's layer and runs it until a signal. */
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import * as Cli from "./cli/Cli.js"

Cli.program(process.argv.slice(2), process.env).pipe(
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true, teardown: Cli.teardown })
)
