/**
 * The node role's HTTP API (CONTRACT.md, "node" and "named counters"): the one definition
 * of routes, bodies, responses and errors, from which the server routes and decodes and
 * `/openapi.json` is generated. Errors are JSON `{"error": "<code>", "message": "<text>"}`.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import { CounterName } from "../crdt/CounterName.js"
import { ApiError } from "../http/ApiError.js"
import { CountBody } from "../http/CountBody.js"

// ---------------------------------------------------------------------------------------
// errors

/** Malformed JSON, a bad `by`, a bad counter name (400). Nothing changed. */
export const BadRequest = ApiError("NodeBadRequest", "bad_request", {
  status: 400,
  description: "The request is malformed; nothing changed"
})
export type BadRequest = InstanceType<typeof BadRequest>

/** The write would take a total or the counter past 2^53-1 (400). Nothing changed. */
export const CounterOverflow = ApiError("NodeCounterOverflow", "overflow", {
  status: 400,
  description: "The counter would pass 2^53-1; nothing changed"
})
export type CounterOverflow = InstanceType<typeof CounterOverflow>

/** The body is larger than 64 KB (413). */
export const PayloadTooLarge = ApiError("NodePayloadTooLarge", "payload_too_large", {
  status: 413,
  description: "The request body is larger than 64 KB"
})
export type PayloadTooLarge = InstanceType<typeof PayloadTooLarge>

/** The write could not be made durable (disk full, I/O error) or the node is stopping (503). */
export const Unavailable = ApiError("NodeUnavailable", "unavailable", {
  status: 503,
  description: "The write was not made durable (WAL failure) or the node is shutting down; it was not counted"
})
export type Unavailable = InstanceType<typeof Unavailable>

// ---------------------------------------------------------------------------------------
// bodies

/** The largest request body accepted. */
export const MAX_BODY_BYTES = 64 * 1024

/** The body of increment and decrement (shared with the gateway). */
export const CountPayload = CountBody

const Int = Schema.Int

export const CounterResponse = Schema.Struct({
  value: Int,
  nodeId: Schema.String
}).annotations({ identifier: "CounterResponse" })

export const NamedCounterResponse = Schema.Struct({
  name: Schema.String,
  value: Int,
  nodeId: Schema.String
}).annotations({ identifier: "NamedCounterResponse" })

export const CountersResponse = Schema.Struct({
  counters: Schema.Array(Schema.Struct({ name: Schema.String, value: Int }))
}).annotations({ identifier: "CountersResponse" })

export const StateResponse = Schema.Struct({
  nodeId: Schema.String,
  increments: Schema.Record({ key: Schema.String, value: Int }),
  decrements: Schema.Record({ key: Schema.String, value: Int }),
  value: Int
}).annotations({
  identifier: "StateResponse",
  description: "The `default` counter's per-replica totals on this node"
})

export const PeerStatus = Schema.Literal("alive", "suspect", "dead")

export const PeerEntry = Schema.Struct({
  addr: Schema.String,
  status: PeerStatus,
  httpAddr: Schema.NullOr(Schema.String),
  nodeId: Schema.NullOr(Schema.String),
  /** consecutive missed heartbeats */
  fails: Schema.NonNegativeInt,
  /** ISO-8601: last message from the peer (or when it was learned of) */
  lastSeen: Schema.String,
  /** whether this node ever heard from it directly */
  heard: Schema.Boolean,
  /** where it was learned from: static, discovery, exchange, contact */
  sources: Schema.Array(Schema.String)
}).annotations({ identifier: "PeerEntry" })

export const PeersResponse = Schema.Struct({
  peers: Schema.Array(PeerEntry)
}).annotations({ identifier: "PeersResponse" })

export const HealthResponse = Schema.Struct({
  status: Schema.Literal("ok"),
  role: Schema.Literal("node"),
  nodeId: Schema.String,
  addr: Schema.String,
  httpAddr: Schema.String,
  peers: Schema.Struct({ alive: Int, suspect: Int, dead: Int }),
  counters: Schema.NonNegativeInt
}).annotations({ identifier: "NodeHealth" })

const nameParam = HttpApiSchema.param("name", CounterName)

// ---------------------------------------------------------------------------------------
// API

/** The `default` counter: `/counter`, `/increment`, `/decrement`, `/local-counter`, `/state`. */
export class CounterGroup extends HttpApiGroup.make("counter")
  .add(HttpApiEndpoint.get("counter", "/counter").annotate(OpenApi.Summary, "Read the default counter").annotate(OpenApi.Description, "The value of the `default` counter as this node sees it (converged once gossip has caught up).").addSuccess(CounterResponse))
  .add(
    HttpApiEndpoint.post("increment", "/increment").annotate(OpenApi.Summary, "Add to the default counter")
      .setPayload(CountPayload)
      .addSuccess(CounterResponse)
      .addError(CounterOverflow)
      .addError(Unavailable)
      .annotate(OpenApi.Description, "Answers once the write is durable on this node")
  )
  .add(
    HttpApiEndpoint.post("decrement", "/decrement").annotate(OpenApi.Summary, "Subtract from the default counter")
      .setPayload(CountPayload)
      .addSuccess(CounterResponse)
      .addError(CounterOverflow)
      .addError(Unavailable)
      .annotate(OpenApi.Description, "Answers once the write is durable on this node")
  )
  .add(
    HttpApiEndpoint.get("localCounter", "/local-counter").annotate(OpenApi.Summary, "This node's own share of the default counter")
      .addSuccess(CounterResponse)
      .annotate(OpenApi.Description, "This node's own contribution to the default counter")
  )
  .add(HttpApiEndpoint.get("state", "/state").annotate(OpenApi.Summary, "The default counter's replicated state").annotate(OpenApi.Description, "Per-replica totals of the `default` counter held by this node: what gossip merges.").addSuccess(StateResponse))
  .annotate(OpenApi.Description, "The `default` counter, and this node's view of it")
{}

/** Named counters: `/counters`, `/counters/:name`, `/counters/:name/increment|decrement`. */
export class CountersGroup extends HttpApiGroup.make("counters")
  .add(HttpApiEndpoint.get("list", "/counters").annotate(OpenApi.Summary, "List the named counters").annotate(OpenApi.Description, "Every counter this node holds, with its value.").addSuccess(CountersResponse))
  .add(HttpApiEndpoint.get("get")`/counters/${nameParam}`.annotate(OpenApi.Summary, "Read a named counter").annotate(OpenApi.Description, "A counter that was never written reads as 0.").addSuccess(NamedCounterResponse))
  .add(
    HttpApiEndpoint.post("increment")`/counters/${nameParam}/increment`.annotate(OpenApi.Summary, "Add to a named counter").annotate(OpenApi.Description, "Answers once the write is durable on this node. No body counts as `by: 1`.")
      .setPayload(CountPayload)
      .addSuccess(NamedCounterResponse)
      .addError(CounterOverflow)
      .addError(Unavailable)
  )
  .add(
    HttpApiEndpoint.post("decrement")`/counters/${nameParam}/decrement`.annotate(OpenApi.Summary, "Subtract from a named counter").annotate(OpenApi.Description, "Answers once the write is durable on this node. No body counts as `by: 1`.")
      .setPayload(CountPayload)
      .addSuccess(NamedCounterResponse)
      .addError(CounterOverflow)
      .addError(Unavailable)
  )
  .annotate(OpenApi.Description, "Named counters: any number per cluster, each 1 to 128 characters of [A-Za-z0-9._:-]")
{}

/** Membership and health: `/peers`, `/health`. */
export class ClusterGroup extends HttpApiGroup.make("cluster")
  .add(HttpApiEndpoint.get("peers", "/peers").annotate(OpenApi.Summary, "The peers this node knows").annotate(OpenApi.Description, "Every known peer with its failure-detection status (alive, suspect, dead) and where it was learned from.").addSuccess(PeersResponse))
  .add(HttpApiEndpoint.get("health", "/health").annotate(OpenApi.Summary, "Whether this node is up").annotate(OpenApi.Description, "Its id, addresses, peer counts by status and number of counters.").addSuccess(HealthResponse))
  .annotate(OpenApi.Description, "Membership and health of this node")
{}

export class NodeApi extends HttpApi.make("node")
  .add(CounterGroup)
  .add(CountersGroup)
  .add(ClusterGroup)
  .addError(BadRequest)
  .addError(PayloadTooLarge)
  .annotate(OpenApi.Title, "dcounter node")
  .annotate(
    OpenApi.Description,
    "A node of a dcounter cluster: named PN-counters, replicated by gossip; writes are acknowledged once durable"
  )
{}
