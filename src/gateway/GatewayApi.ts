/**
 * The gateway's HTTP API (see CONTRACT.md, "gateway" and "named counters"): one definition
 * of routes, bodies and errors, from which the server routes and decodes and OpenAPI is
 * generated. Bodies are validated here exactly as a node validates them, so a bad request
 * is answered 400 without reaching any node. Errors are `{"error", "message"}`.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import { CounterName } from "../crdt/CounterName.js"
import { ApiError } from "../api/ApiError.js"
import { CountBody } from "../api/CountBody.js"
import { PageQuery } from "../api/PageQuery.js"
import { ProbesGroup } from "../api/Probes.js"

// ---------------------------------------------------------------------------------------
// errors

/** Malformed JSON, a bad `by`, a bad counter name (400); nothing reached a node. */
export const BadRequest = ApiError("GatewayBadRequest", "bad_request", {
  status: 400,
  description: "The request is malformed; nothing changed"
})
export type BadRequest = InstanceType<typeof BadRequest>

/**
 * No node could serve (503): `no_healthy_node` (none is healthy), `unavailable` (every
 * healthy node refused the connection or failed to answer a read), `indeterminate` (a
 * write reached a node that then failed to answer: it may or may not have been counted,
 * and the gateway did not retry it), or the error code a node answered 503 with.
 */
export class Unavailable extends Schema.Class<Unavailable>("GatewayUnavailable")(
  {
    error: Schema.String,
    message: Schema.String,
    /** the node involved, when there is one */
    node: Schema.optional(Schema.String)
  },
  HttpApiSchema.annotations({ status: 503, description: "No node could serve the request" })
) {}

/** A node answered something the gateway does not understand (502). */
export class BadGateway extends Schema.Class<BadGateway>("GatewayBadGateway")(
  { error: Schema.Literal("bad_gateway"), message: Schema.String, node: Schema.String },
  HttpApiSchema.annotations({ status: 502, description: "A node gave an unexpected answer" })
) {}

// ---------------------------------------------------------------------------------------
// bodies

/** The body of increment and decrement (shared with the node). */
export const ChangeBody = CountBody
export type ChangeBody = CountBody

export const CounterValue = Schema.Struct({
  value: Schema.Int,
  /** HTTP address of the node that answered */
  node: Schema.String,
  nodeId: Schema.String
}).annotations({ identifier: "CounterValue" })
export type CounterValue = typeof CounterValue.Type

export const NamedCounterValue = Schema.Struct({
  name: Schema.String,
  value: Schema.Int,
  node: Schema.String,
  nodeId: Schema.String
}).annotations({ identifier: "NamedCounterValue" })
export type NamedCounterValue = typeof NamedCounterValue.Type

export const CounterList = Schema.Struct({
  counters: Schema.Array(Schema.Struct({ name: Schema.String, value: Schema.Int })),
  /** present when more counters follow: pass it as `after` for the next page */
  next: Schema.optionalWith(Schema.String, { exact: true }),
  node: Schema.String
}).annotations({
  identifier: "CounterList",
  description: "One page of counters, sorted by name or (`order=recent`) most recently written first, as the node " +
    "that answered holds them"
})
export type CounterList = typeof CounterList.Type

export const NodeInfo = Schema.Struct({
  id: Schema.String,
  gossipAddr: Schema.String,
  httpAddr: Schema.String,
  healthy: Schema.Boolean,
  value: Schema.NullOr(Schema.Int),
  sources: Schema.Array(Schema.Literal("static", "discovery")),
  lastCheck: Schema.NullOr(Schema.String),
  latencyMs: Schema.NullOr(Schema.Number),
  lastError: Schema.NullOr(Schema.String),
  requests: Schema.NonNegativeInt
}).annotations({ identifier: "NodeInfo" })

export const Nodes = Schema.Struct({ nodes: Schema.Array(NodeInfo) }).annotations({ identifier: "Nodes" })
export type Nodes = typeof Nodes.Type

export const Health = Schema.Struct({
  status: Schema.Literal("ok"),
  role: Schema.Literal("gateway"),
  healthyNodes: Schema.NonNegativeInt,
  nodes: Schema.NonNegativeInt
}).annotations({ identifier: "GatewayHealth" })

const NamePath = Schema.Struct({ name: CounterName })

// ---------------------------------------------------------------------------------------
// API

export class CounterGroup extends HttpApiGroup.make("counter")
  .add(HttpApiEndpoint.get("counter", "/counter").annotate(OpenApi.Summary, "Read the default counter").annotate(OpenApi.Description, "Asked of one healthy node; the answer names it.").addSuccess(CounterValue))
  .add(HttpApiEndpoint.post("increment", "/increment").annotate(OpenApi.Summary, "Add to the default counter").annotate(OpenApi.Description, "Forwarded to one healthy node; answered once durable there. No body counts as `by: 1`.").setPayload(ChangeBody).addSuccess(CounterValue))
  .add(HttpApiEndpoint.post("decrement", "/decrement").annotate(OpenApi.Summary, "Subtract from the default counter").annotate(OpenApi.Description, "Forwarded to one healthy node; answered once durable there. No body counts as `by: 1`.").setPayload(ChangeBody).addSuccess(CounterValue))
  .add(
    HttpApiEndpoint.get("counters", "/counters")
      .setUrlParams(PageQuery)
      .addSuccess(CounterList)
      .annotate(OpenApi.Summary, "List the named counters")
      .annotate(
        OpenApi.Description,
        "Counters sorted by name, one page at a time (`limit` default 100, max 1000; `after`: the previous " +
          "page's `next`; `prefix`), from one node; a bad parameter is refused with 400 before any node is asked. " +
          "With `order=recent`, most recently written first: `next` is a cursor of the node that answered, and " +
          "the next page is asked of each node in turn until that node answers (503 when it no longer can)"
      )
  )
  .add(HttpApiEndpoint.get("named", "/counters/:name").annotate(OpenApi.Summary, "Read a named counter").annotate(OpenApi.Description, "A counter that was never written reads as 0.").setPath(NamePath).addSuccess(NamedCounterValue))
  .add(
    HttpApiEndpoint.post("namedIncrement", "/counters/:name/increment").annotate(OpenApi.Summary, "Add to a named counter").annotate(OpenApi.Description, "Forwarded to one healthy node; answered once durable there. No body counts as `by: 1`.")
      .setPath(NamePath)
      .setPayload(ChangeBody)
      .addSuccess(NamedCounterValue)
  )
  .add(
    HttpApiEndpoint.post("namedDecrement", "/counters/:name/decrement").annotate(OpenApi.Summary, "Subtract from a named counter").annotate(OpenApi.Description, "Forwarded to one healthy node; answered once durable there. No body counts as `by: 1`.")
      .setPath(NamePath)
      .setPayload(ChangeBody)
      .addSuccess(NamedCounterValue)
  )
  .addError(Unavailable)
  .addError(BadGateway)
  .annotate(OpenApi.Description, "Counters, forwarded to a healthy node (round-robin)")
{}

export class ClusterGroup extends HttpApiGroup.make("cluster")
  .add(HttpApiEndpoint.get("nodes", "/nodes").annotate(OpenApi.Summary, "Every node and its health").annotate(OpenApi.Description, "The nodes the gateway knows (static and from discovery), whether each answers, its last value and latency.").addSuccess(Nodes))
  .add(HttpApiEndpoint.get("health", "/health").annotate(OpenApi.Summary, "Whether the gateway can serve").annotate(OpenApi.Description, "200 with the number of healthy nodes, 503 when there is none.").addSuccess(Health).addError(Unavailable))
  .annotate(OpenApi.Description, "The gateway's view of the nodes")
{}

export class GatewayApi extends HttpApi.make("gateway")
  .add(CounterGroup)
  .add(ClusterGroup)
  .add(ProbesGroup)
  .addError(BadRequest)
  .annotate(OpenApi.Title, "dcounter gateway")
  .annotate(
    OpenApi.Description,
    "HTTP front door of a dcounter cluster. A write is retried on another node only when it provably did not " +
      "reach the first one (connection refused); an outcome the gateway cannot know is answered 503 indeterminate."
  )
{}
