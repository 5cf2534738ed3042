/**
 * Forwarding a request to the nodes, with the contract's retry rule:
 * - a read goes to the next healthy node whenever one fails (reads change nothing);
 * - a write goes to the next healthy node ONLY when the previous one provably did not
 *   receive it (`NotReached`: the connection was never established); any other failure
 *   (`Indeterminate`) is answered 503 `indeterminate` and never retried, since the write
 *   may have been counted.
 * A node that could not be reached is taken out of rotation until its next health check.
 */
import { Context, Duration, Effect, Layer, Metric } from "effect"
import { Unavailable } from "./GatewayApi.js"
import type { NodeResponse } from "./NodeClient.js"
import { NodeClient } from "./NodeClient.js"
import { NodePool } from "./NodePool.js"

export interface Answer {
  /** `host:port` of the node that answered */
  readonly node: string
  readonly response: NodeResponse
}

export interface UpstreamOptions {
  readonly readTimeout: Duration.DurationInput
  readonly writeTimeout: Duration.DurationInput
}

export const defaultOptions: UpstreamOptions = {
  readTimeout: Duration.seconds(2),
  writeTimeout: Duration.seconds(10)
}

const forwarded = Metric.counter("dcounter_gateway_forwarded_total", {
  description: "Requests the gateway forwarded to a node",
  incremental: true
})
const failovers = Metric.counter("dcounter_gateway_failovers_total", {
  description: "Requests sent to another node after one failed (reads) or refused the connection (writes)",
  incremental: true
})
const indeterminate = Metric.counter("dcounter_gateway_indeterminate_total", {
  description: "Writes answered 503 indeterminate: they reached a node that then failed to answer",
  incremental: true
})
const unavailable = Metric.counter("dcounter_gateway_unavailable_total", {
  description: "Requests answered 503 because no node could serve them",
  incremental: true
})

export class Upstream extends Context.Tag("dcounter/Upstream")<
  Upstream,
  {
    /** GET `path` on a healthy node, failing over on any failure. */
    readonly read: (path: string) => Effect.Effect<Answer, Unavailable>
    /** POST `body` to `path` on a healthy node, failing over only when it was not reached. */
    readonly write: (path: string, body: unknown) => Effect.Effect<Answer, Unavailable>
  }
>() {}

const noHealthyNode = new Unavailable({
  error: "no_healthy_node",
  message: "no node is healthy right now; try again shortly"
})

export const make = (options: UpstreamOptions = defaultOptions): Effect.Effect<Upstream["Type"], never, NodePool | NodeClient> =>
  Effect.gen(function*() {
    const pool = yield* NodePool
    const client = yield* NodeClient

    const read = Effect.fn("Upstream.read")(function*(path: string) {
      const nodes = yield* pool.candidates
      if (nodes.length === 0) return yield* Effect.fail(noHealthyNode).pipe(Effect.tap(() => Metric.increment(unavailable)))
      let lastError = ""
      for (const [i, node] of nodes.entries()) {
        if (i > 0) yield* Metric.increment(failovers)
        yield* pool.recordRequest(node)
        yield* Metric.increment(forwarded)
        const result = yield* Effect.either(client.request(node, { method: "GET", path, timeout: options.readTimeout }))
        if (result._tag === "Right") {
          if (result.right.status < 500) return { node, response: result.right }
          lastError = `${node} answered ${result.right.status}`
          continue
        }
        lastError = result.left.message
        if (result.left.reason === "NotReached") yield* pool.markDown(node, result.left.message)
      }
      yield* Metric.increment(unavailable)
      return yield* Effect.fail(
        new Unavailable({ error: "unavailable", message: `no node answered (${nodes.length} tried; last: ${lastError})` })
      )
    })

    const write = Effect.fn("Upstream.write")(function*(path: string, body: unknown) {
      const nodes = yield* pool.candidates
      if (nodes.length === 0) return yield* Effect.fail(noHealthyNode).pipe(Effect.tap(() => Metric.increment(unavailable)))
      let lastError = ""
      for (const [i, node] of nodes.entries()) {
        if (i > 0) yield* Metric.increment(failovers)
        yield* pool.recordRequest(node)
        yield* Metric.increment(forwarded)
        const result = yield* Effect.either(
          client.request(node, { method: "POST", path, body, timeout: options.writeTimeout })
        )
        if (result._tag === "Right") return { node, response: result.right }
        if (result.left.reason === "Indeterminate") {
          yield* Metric.increment(indeterminate)
          yield* pool.markDown(node, result.left.message)
          yield* Effect.logWarning(`write ${path} indeterminate: ${result.left.message}`)
          return yield* Effect.fail(
            new Unavailable({
              error: "indeterminate",
              message:
                `the request reached node ${node}, which failed before answering; it may or may not have been ` +
                `counted, and was not retried (${result.left.message})`,
              node
            })
          )
        }
        lastError = result.left.message
        yield* pool.markDown(node, result.left.message)
      }
      yield* Metric.increment(unavailable)
      return yield* Effect.fail(
        new Unavailable({
          error: "unavailable",
          message: `no node accepted the connection (${nodes.length} tried; last: ${lastError}); nothing was counted`
        })
      )
    })

    return Upstream.of({ read, write })
  })

export const layer = (options: UpstreamOptions = defaultOptions): Layer.Layer<Upstream, never, NodePool | NodeClient> =>
  Layer.effect(Upstream, make(options))
