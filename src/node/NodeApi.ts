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
import { ProbesGroup } from "../http/Probes.js"

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
  description:
    "The node cannot serve: a write was not made durable (WAL failure; it was not counted), or the node is " +
    "starting (recovering its write-ahead log) or shutting down"
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
  .add(HttpApiEndpoint.get("counter", "/counter").addSuccess(CounterResponse))
  .add(
    HttpApiEndpoint.post("increment", "/increment")
      .setPayload(CountPayload)
      .addSuccess(CounterResponse)
      .addError(CounterOverflow)
      .addError(Unavailable)
      .annotate(OpenApi.Description, "Answers once the write is durable on this node")
  )
  .add(
    HttpApiEndpoint.post("decrement", "/decrement")
      .setPayload(CountPayload)
      .addSuccess(CounterResponse)
      .addError(CounterOverflow)
      .addError(Unavailable)
      .annotate(OpenApi.Description, "Answers once the write is durable on this node")
  )
  .add(
    HttpApiEndpoint.get("localCounter", "/local-counter")
      .addSuccess(CounterResponse)
      .annotate(OpenApi.Description, "This node's own contribution to the default counter")
  )
  .add(HttpApiEndpoint.get("state", "/state").addSuccess(StateResponse))
  .addError(Unavailable)
{}

/** Named counters: `/counters`, `/counters/:name`, `/counters/:name/increment|decrement`. */
export class CountersGroup extends HttpApiGroup.make("counters")
  .add(HttpApiEndpoint.get("list", "/counters").addSuccess(CountersResponse))
  .add(HttpApiEndpoint.get("get")`/counters/${nameParam}`.addSuccess(NamedCounterResponse))
  .add(
    HttpApiEndpoint.post("increment")`/counters/${nameParam}/increment`
      .setPayload(CountPayload)
      .addSuccess(NamedCounterResponse)
      .addError(CounterOverflow)
      .addError(Unavailable)
  )
  .add(
    HttpApiEndpoint.post("decrement")`/counters/${nameParam}/decrement`
      .setPayload(CountPayload)
      .addSuccess(NamedCounterResponse)
      .addError(CounterOverflow)
      .addError(Unavailable)
  )
  .addError(Unavailable)
{}

/** Membership and health: `/peers`, `/health`. */
export class ClusterGroup extends HttpApiGroup.make("cluster")
  .add(HttpApiEndpoint.get("peers", "/peers").addSuccess(PeersResponse))
  .add(HttpApiEndpoint.get("health", "/health").addSuccess(HealthResponse))
  .addError(Unavailable)
{}

export class NodeApi extends HttpApi.make("node")
  .add(CounterGroup)
  .add(CountersGroup)
  .add(ClusterGroup)
  .add(ProbesGroup)
  .addError(BadRequest)
  .addError(PayloadTooLarge)
  .annotate(OpenApi.Title, "dcounter node")
  .annotate(
    OpenApi.Description,
    "A node of a dcounter cluster: named PN-counters, replicated by gossip; writes are acknowledged once durable"
  )
{}
