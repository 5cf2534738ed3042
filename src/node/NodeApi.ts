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
import { ApiError } from "../api/ApiError.js"
import { By, CountBody } from "../api/CountBody.js"
import { PageQuery } from "../api/PageQuery.js"
import { ProbesGroup } from "../api/Probes.js"

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
  counters: Schema.Array(Schema.Struct({ name: Schema.String, value: Int })),
  /** present when more counters follow: pass it as `after` for the next page */
  next: Schema.optionalWith(Schema.String, { exact: true })
}).annotations({
  identifier: "CountersResponse",
  description: "One page of counters, sorted by name or (`order=recent`) most recently written first; `next` (pass " +
    "it as `after`) when more follow"
})

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
// batch (internal: gateway -> node)

/**
 * The most writes in one `POST /batch`. At 128-character names a full batch stays under
 * the 64 KB body limit, so a batch of valid writes is never refused for its size.
 */
export const MAX_BATCH_WRITES = 256

/** One write of a batch: every key required, no other key. */
export const BatchWrite = Schema.Struct({
  name: CounterName,
  kind: Schema.Literal("inc", "dec"),
  by: By
}).annotations({
  identifier: "BatchWrite",
  description: "One increment (inc) or decrement (dec) of a named counter",
  parseOptions: { onExcessProperty: "error" }
})
export type BatchWrite = typeof BatchWrite.Type

export const BatchRequest = Schema.Struct({
  writes: Schema.Array(BatchWrite).pipe(
    Schema.minItems(1, { message: () => "a batch holds at least one write" }),
    Schema.maxItems(MAX_BATCH_WRITES, { message: () => `a batch holds at most ${MAX_BATCH_WRITES} writes` })
  )
}).annotations({
  identifier: "BatchRequest",
  description: `1 to ${MAX_BATCH_WRITES} writes, applied in order`,
  parseOptions: { onExcessProperty: "error" }
})
export type BatchRequest = typeof BatchRequest.Type

/** The outcome of one write of a batch: its counter's new value, or why it was not counted. */
export const BatchResult = Schema.Union(
  Schema.Struct({ value: Int }).annotations({ identifier: "BatchWriteDone", description: "Durable: the counter's new value" }),
  Schema.Struct({ error: Schema.String, message: Schema.String }).annotations({
    identifier: "BatchWriteFailed",
    description: "Not counted: `overflow` (the counter would pass 2^53-1) or `unavailable` (not made durable)"
  })
)
export type BatchResult = typeof BatchResult.Type

export const BatchResponse = Schema.Struct({
  nodeId: Schema.String,
  /** one per write, in the order of the request */
  results: Schema.Array(BatchResult)
}).annotations({ identifier: "BatchResponse" })
export type BatchResponse = typeof BatchResponse.Type

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
  .addError(Unavailable)
{}

/** Named counters: `/counters`, `/counters/:name`, `/counters/:name/increment|decrement`. */
export class CountersGroup extends HttpApiGroup.make("counters")
  .add(
    HttpApiEndpoint.get("list", "/counters")
      .setUrlParams(PageQuery)
      .addSuccess(CountersResponse)
      .annotate(OpenApi.Summary, "List the named counters")
      .annotate(
        OpenApi.Description,
        "Counters sorted by name, one page at a time: `limit` (default 100, max 1000), `after` (the previous " +
          "page's `next`), `prefix`; a bad parameter is refused with 400. With `order=recent`, most recently " +
          "written first (as this node saw the writes): `next` is a cursor of this node, a page may hold fewer " +
          "than `limit` counters while `next` is present, and a cursor issued by another node (or by this one " +
          "before a restart) is answered 503"
      )
  )
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
  .addError(Unavailable)
  .annotate(OpenApi.Description, "Named counters: as many per cluster as you like, each 1 to 128 characters of [A-Za-z0-9._:-]")
{}

/**
 * `POST /batch`: several writes in one request, for the gateway (it forwards the writes
 * queued for one node together). Each write is made like a single one (the same checks,
 * durable before it is answered) and all of them share the WAL's group commits. A batch
 * that fails validation is refused whole (400) and changes nothing; a write that is valid
 * but cannot be made (overflow, WAL failure) fails alone, in its result.
 */
export class BatchGroup extends HttpApiGroup.make("batch")
  .add(
    HttpApiEndpoint.post("write", "/batch")
      .setPayload(BatchRequest)
      .addSuccess(BatchResponse)
      .annotate(OpenApi.Summary, "Several writes in one request (gateway to node)")
      .annotate(
        OpenApi.Description,
        "Internal (gateway to node): several writes in one request; answers once every write is durable or failed, " +
          "one result per write in order"
      )
  )
  .addError(Unavailable)
  .annotate(OpenApi.Description, "Internal: the gateway forwards the writes queued for this node in one request")
{}

/** Membership and health: `/peers`, `/health`. */
export class ClusterGroup extends HttpApiGroup.make("cluster")
  .add(HttpApiEndpoint.get("peers", "/peers").annotate(OpenApi.Summary, "The peers this node knows").annotate(OpenApi.Description, "Every known peer with its failure-detection status (alive, suspect, dead) and where it was learned from.").addSuccess(PeersResponse))
  .add(HttpApiEndpoint.get("health", "/health").annotate(OpenApi.Summary, "Whether this node is up").annotate(OpenApi.Description, "Its id, addresses, peer counts by status and number of counters.").addSuccess(HealthResponse))
  .annotate(OpenApi.Description, "Membership and health of this node")
  .addError(Unavailable)
{}

export class NodeApi extends HttpApi.make("node")
  .add(CounterGroup)
  .add(CountersGroup)
  .add(ClusterGroup)
  .add(BatchGroup)
  .add(ProbesGroup)
  .addError(BadRequest)
  .addError(PayloadTooLarge)
  .annotate(OpenApi.Title, "dcounter node")
  .annotate(
    OpenApi.Description,
    "A node of a dcounter cluster: named PN-counters, replicated by gossip; writes are acknowledged once durable"
  )
{}
