/**
 * Runs a validated invocation: prints help, or builds the chosen role's layer (config,
 * logging) and launches it until interrupted, or runs `simulate` / `wal` to completion.
 * A role's modules are loaded only when that role runs, so `--help` and usage errors
 * answer without loading the whole program.
 */
import { Console, Data, Effect, Layer } from "effect"
import { DiscoveryConfig } from "../config/DiscoveryConfig.js"
import { GatewayConfig } from "../config/GatewayConfig.js"
import { NodeConfig } from "../config/NodeConfig.js"
import * as BuildInfo from "../observability/BuildInfo.js"
import * as Logging from "../observability/Logging.js"
import type { SimulateOptions } from "../simulate/SimulateOptions.js"
import type { Invocation, LoggingOptions } from "./Invocation.js"

/** `dcounter simulate` ended with nodes that disagree or miss writes (exit status 1). */
export class SimulationFailed extends Data.TaggedError("SimulationFailed")<{ readonly message: string }> {}

/** `dcounter wal check` found damage that stops the node from starting (exit status 1). */
export class WalDamaged extends Data.TaggedError("WalDamaged")<{ readonly message: string }> {}

/** The logger chosen by `--log-level` and `--log-format`. */
export const loggingLayer = (options: LoggingOptions): Layer.Layer<never> =>
  Logging.layer({ level: options.level, format: options.format })

/**
 * Builds a role's layer and keeps it running until interrupted (SIGINT/SIGTERM). Every log
 * line of the role carries `annotations` (its role and addresses) as fields, so JSON logs
 * from many processes can be told apart without parsing messages.
 */
const launch = <A, E>(
  role: Layer.Layer<A, E>,
  logging: LoggingOptions,
  annotations: Readonly<Record<string, string>>
): Effect.Effect<never, E> =>
  Layer.launch(Layer.annotateLogs(role, annotations)).pipe(Effect.provide(loggingLayer(logging)))

/** `dcounter simulate`: progress on stderr, the report on stdout; exit 1 if it did not converge. */
const simulate = (options: SimulateOptions) =>
  Effect.gen(function*() {
    const [Simulation, Report] = yield* Effect.promise(() =>
      Promise.all([import("../simulate/Simulation.js"), import("../simulate/Report.js")])
    )
    const result = yield* Effect.scoped(Simulation.run(options, Report.progressBar(process.stderr, options.duration)))
    yield* Console.log(Report.render(result))
    if (!result.ok) {
      return yield* new SimulationFailed({
        message: `the cluster did not converge to the expected value (seed ${result.seed}, see the table above)`
      })
    }
  })

/** `dcounter wal check|repair`: prints the report (one JSON object with `--log-format json`); a damaged WAL on check exits 1. */
const wal = (action: "check" | "repair", dataDir: string, json: boolean) =>
  Effect.gen(function*() {
    const WalTool = yield* Effect.promise(() => import("../storage/WalTool.js"))
    const report = yield* (action === "check" ? WalTool.check(dataDir) : WalTool.repair(dataDir))
    yield* Console.log(json ? JSON.stringify(report) : WalTool.render(report))
    if (WalTool.exitCode(report) !== 0) {
      return yield* new WalDamaged({
        message: `the WAL in ${dataDir} is damaged; see above, and \`dcounter wal repair --data-dir ${dataDir}\``
      })
    }
  })

/** The version in package.json. */
export const version = (): string => BuildInfo.version()

export const run = (invocation: Invocation): Effect.Effect<void, unknown> => {
  switch (invocation._tag) {
    case "Help":
      return Console.log(invocation.text)
    case "Version":
      return Console.log(`dcounter ${version()}`)
    case "Discovery":
      return Effect.flatMap(Effect.promise(() => import("../discoveryServer/DiscoveryRole.js")), (DiscoveryRole) =>
        launch(
          DiscoveryRole.layer.pipe(Layer.provide(Layer.succeed(DiscoveryConfig, invocation.config))),
          invocation.logging,
          { role: "discovery", addr: invocation.config.addr }
        ))
    case "Node":
      return Effect.flatMap(Effect.promise(() => import("../node/NodeRole.js")), (NodeRole) =>
        launch(
          NodeRole.layer.pipe(Layer.provide(Layer.succeed(NodeConfig, invocation.config))),
          invocation.logging,
          { role: "node", addr: invocation.config.addr, httpAddr: invocation.config.httpAddr }
        ))
    case "Gateway":
      return Effect.flatMap(Effect.promise(() => import("../gateway/GatewayRole.js")), (GatewayRole) =>
        launch(
          GatewayRole.layer.pipe(Layer.provide(Layer.succeed(GatewayConfig, invocation.config))),
          invocation.logging,
          { role: "gateway", addr: invocation.config.addr }
        ))
    case "Simulate":
      return simulate(invocation.options).pipe(Effect.provide(loggingLayer(invocation.logging)))
    case "Wal":
      return wal(invocation.action, invocation.dataDir, invocation.logging.format === "json").pipe(Effect.provide(loggingLayer(invocation.logging)))
  }
}
