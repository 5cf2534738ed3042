/**
 * Handlers of the gateway API (`ApiServer.group` layers, which are also standard
 * `HttpApiBuilder.group` layers): counters are forwarded through `Upstream` (with its retry
 * rule; increments and decrements in batches) and the node's answer is checked and relayed; `/nodes` and `/health` come from the
 * `NodePool`.
 */
import type { HttpApiGroup } from "@effect/platform"
import { Duration, Effect, Either, Exit, Layer, Option, Schema } from "effect"
import { DEFAULT_COUNTER } from "../crdt/CounterName.js"
import { byOf } from "../api/CountBody.js"
import { searchOf } from "../api/PageQuery.js"
import * as ApiServer from "../http/ApiServer.js"
import type { NodeView } from "./NodePool.js"
import { NodePool } from "./NodePool.js"
import { BadGateway, BadRequest, GatewayApi, Unavailable } from "./GatewayApi.js"
import type { Answer, Counted } from "./Upstream.js"
import { Upstream } from "./Upstream.js"
import * as Probes from "../api/Probes.js"

/** What a node answers for a counter (extra fields are ignored). */
const NodeCounter = Schema.Struct({ value: Schema.Int, nodeId: Schema.optional(Schema.String) })
const NodeNamedCounter = Schema.Struct({
  name: Schema.optional(Schema.String),
  value: Schema.Int,
  nodeId: Schema.optional(Schema.String)
})
const NodeCounterList = Schema.Struct({
  counters: Schema.Array(Schema.Struct({ name: Schema.String, value: Schema.Int })),
  next: Schema.optionalWith(Schema.String, { exact: true })
})
/** A node's error body. */
const NodeError = Schema.Struct({ error: Schema.String, message: Schema.optional(Schema.String) })

/** How long `/nodes` may show values before they are checked again. */
const NODES_MAX_AGE = Duration.millis(500)

/**
 * A node's answer as the gateway relays it: a 2xx body of the expected shape, a 400
 * (the node refused the request as malformed), a 503 (the node could not serve it), or
 * else a 502. An `Exit`, so that `Upstream` answers without running an Effect.
 */
const relay = <A>(
  decode: (u: unknown) => Either.Either<A, unknown>,
  answer: Answer
): Exit.Exit<A, BadRequest | Unavailable | BadGateway> => {
  const { node, response } = answer
  if (response.status >= 200 && response.status < 300) {
    const decoded = decode(response.json)
    if (Either.isRight(decoded)) return Exit.succeed(decoded.right)
    return Exit.fail(
      new BadGateway({ error: "bad_gateway", message: `node ${node} answered an unexpected body: ${response.text.slice(0, 200)}`, node })
    )
  }
  const error = decodeNodeError(response.json)
  const message = Option.isSome(error) ? (error.value.message ?? error.value.error) : response.text.slice(0, 200)
  if (response.status === 400) return Exit.fail(BadRequest.of(message))
  if (response.status === 503) {
    return Exit.fail(
      new Unavailable({ error: Option.isSome(error) ? error.value.error : "unavailable", message: `node ${node}: ${message}`, node })
    )
  }
  return Exit.fail(
    new BadGateway({ error: "bad_gateway", message: `node ${node} answered HTTP ${response.status}: ${message}`, node })
  )
}

const decodeNodeCounter = Schema.decodeUnknownEither(NodeCounter)
const decodeNodeNamedCounter = Schema.decodeUnknownEither(NodeNamedCounter)
const decodeNodeCounterList = Schema.decodeUnknownEither(NodeCounterList)
const decodeNodeError = Schema.decodeUnknownOption(NodeError)


const toNodeInfo = (n: NodeView) => ({
  ...n,
  lastCheck: n.lastCheck === 0 ? null : new Date(n.lastCheck).toISOString()
})

/** `{value, node, nodeId}` from a node's answer for the default counter. */
const counterValue = (answer: Answer) =>
  Exit.map(relay(decodeNodeCounter, answer), (body) => ({
    value: body.value,
    node: answer.node,
    nodeId: body.nodeId ?? answer.node
  }))

/** `{name, value, node, nodeId}` from a node's answer for a named counter. */
const namedValue = (name: string) => (answer: Answer) =>
  Exit.map(relay(decodeNodeNamedCounter, answer), (body) => ({
    name,
    value: body.value,
    node: answer.node,
    nodeId: body.nodeId ?? answer.node
  }))

/** `{value, node, nodeId}` from a batched write's result, for the default counter. */
const counted = (c: Counted) => ({ value: c.value, node: c.node, nodeId: c.nodeId })

/** `{name, value, node, nodeId}` from a batched write's result. */
const namedCounted = (name: string) => (c: Counted) => ({ name, value: c.value, node: c.node, nodeId: c.nodeId })

const counterList = (answer: Answer) =>
  Exit.map(relay(decodeNodeCounterList, answer), (body) =>
    body.next === undefined
      ? { counters: body.counters, node: answer.node }
      : { counters: body.counters, next: body.next, node: answer.node })

export const layerCounter = ApiServer.group(GatewayApi, "counter", (handlers) =>
  Effect.gen(function*() {
    const upstream = yield* Upstream
    return handlers
      .handle("counter", () => upstream.read("/counter", counterValue))
      .handle("increment", ({ payload }) => upstream.count({ name: DEFAULT_COUNTER, kind: "inc", by: byOf(payload) }, counted))
      .handle("decrement", ({ payload }) => upstream.count({ name: DEFAULT_COUNTER, kind: "dec", by: byOf(payload) }, counted))
      .handle("counters", ({ urlParams }) => upstream.read(`/counters${searchOf(urlParams)}`, counterList))
      .handle("named", ({ path }) => upstream.read(`/counters/${path.name}`, namedValue(path.name)))
      .handle("namedIncrement", ({ path, payload }) =>
        upstream.count({ name: path.name, kind: "inc", by: byOf(payload) }, namedCounted(path.name)))
      .handle("namedDecrement", ({ path, payload }) =>
        upstream.count({ name: path.name, kind: "dec", by: byOf(payload) }, namedCounted(path.name)))
  }))

export const layerCluster = ApiServer.group(GatewayApi, "cluster", (handlers) =>
  Effect.gen(function*() {
    const pool = yield* NodePool
    return handlers
      .handle("nodes", () =>
        Effect.gen(function*() {
          yield* pool.refreshIfOlder(NODES_MAX_AGE)
          const nodes = yield* pool.nodes
          return { nodes: nodes.map(toNodeInfo) }
        }))
      .handle("health", () =>
        Effect.gen(function*() {
          const nodes = yield* pool.nodes
          const healthyNodes = nodes.filter((n) => n.healthy).length
          if (healthyNodes === 0) {
            return yield* Effect.fail(
              new Unavailable({
                error: "no_healthy_node",
                message: nodes.length === 0 ? "the gateway knows no node yet" : `none of ${nodes.length} nodes is healthy`
              })
            )
          }
          return { status: "ok" as const, role: "gateway" as const, healthyNodes, nodes: nodes.length }
        }))
  }))

/** Ready while at least one node is healthy: with none, every counter request would be a 503. */
export const layerProbes = ApiServer.group(GatewayApi, "probes", (handlers) =>
  Effect.gen(function*() {
    const pool = yield* NodePool
    return handlers
      .handle("livez", () => Effect.succeed(Probes.live))
      .handle("readyz", () =>
        Effect.gen(function*() {
          const nodes = yield* pool.nodes
          const healthy = nodes.filter((n) => n.healthy).length
          return yield* Probes.readiness([{
            name: "healthyNode",
            ok: healthy > 0,
            unmet: nodes.length === 0 ? "the gateway knows no node yet" : `none of ${nodes.length} nodes is healthy`
          }])
        }))
  }))

/** Every handler group of the gateway API, given the pool and the upstream. */
export const layer: Layer.Layer<
  HttpApiGroup.ApiGroup<"gateway", "counter"> | HttpApiGroup.ApiGroup<"gateway", "cluster"> | HttpApiGroup.ApiGroup<"gateway", "probes">,
  never,
  NodePool | Upstream
> = Layer.mergeAll(layerCounter, layerCluster, layerProbes)
