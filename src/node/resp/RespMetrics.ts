/**
 * Metrics of the Redis-protocol front end, recorded without an Effect per command (tag
 * arrays are built once and reused, as in observability/HttpMetrics.ts):
 * `dcounter_resp_commands_total{command}` (the commands the server takes by name, the rest
 * as `other`, so cardinality is bounded), `dcounter_resp_errors_total{kind}` (`reply`: an
 * error answered to a command, `protocol`: a malformed or oversized frame that closed its
 * connection), `dcounter_resp_connections` (open now) and
 * `dcounter_resp_connections_total` (accepted).
 */
import { Metric, MetricLabel } from "effect"
import { commandNames } from "./RespCommands.js"

export const commandsTotal = Metric.counter("dcounter_resp_commands_total", {
  description: "Redis-protocol commands received, by command name (other: commands the server does not take).",
  incremental: true
})

export const errorsTotal = Metric.counter("dcounter_resp_errors_total", {
  description: "Redis-protocol errors: reply (an error answered to a command), protocol (a bad frame; its connection closed).",
  incremental: true
})

export const connections = Metric.gauge("dcounter_resp_connections", {
  description: "Redis-protocol client connections open."
})

export const connectionsTotal = Metric.counter("dcounter_resp_connections_total", {
  description: "Redis-protocol client connections accepted.",
  incremental: true
})

const commandTags = new Map<string, ReadonlyArray<MetricLabel.MetricLabel>>(
  [...commandNames, "other"].map((n) => [n, [MetricLabel.make("command", n.toLowerCase())]])
)
const otherTags = commandTags.get("other")!
const replyErrorTags = [MetricLabel.make("kind", "reply")]
const protocolErrorTags = [MetricLabel.make("kind", "protocol")]
const noTags: ReadonlyArray<MetricLabel.MetricLabel> = []

/** One command received; `name` as `RespCommands.lookup` gives it (undefined: other). */
export const recordCommand = (name: string | undefined): void =>
  commandsTotal.unsafeUpdate(1, (name === undefined ? otherTags : commandTags.get(name)) ?? otherTags)

export const recordReplyError = (): void => errorsTotal.unsafeUpdate(1, replyErrorTags)
export const recordProtocolError = (): void => errorsTotal.unsafeUpdate(1, protocolErrorTags)

export const recordConnections = (open: number, accepted: boolean): void => {
  connections.unsafeUpdate(open, noTags)
  if (accepted) connectionsTotal.unsafeUpdate(1, noTags)
}
