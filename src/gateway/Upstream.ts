/**
 * Forwarding a request to the nodes, with the contract's retry rule:
 * - a read goes to the next healthy node whenever one fails (reads change nothing);
 * - a write goes to the next healthy node ONLY when the previous one provably did not
 *   receive it (`NotReached`: the connection was never established, or `Busy`: it never
 *   left the gateway); any other failure (`Indeterminate`) is answered 503
 *   `indeterminate` and never retried, since the write may have been counted.
 * A node that could not be reached is taken out of rotation until its next health check.
 * Each node is tried at most once per request.
 *
 * This is the gateway's hot path, so it runs without a fiber: `read`, `write` and `count`
 * are typed as plain Effects but return a `Callback` (internal/Callback.ts), which
 * `ApiServer` answers straight from the node's reply, and the handler's mapping of the
 * answer (`decode`) is applied in the same callback. The ports it uses (`NodeClient.request`,
 * `NodePool.candidates` / `markDown` / `recordRequest`) are Callbacks as well, run here with
 * `Callback.run`. No span per request (a span and a fiber per request were most of the
 * gateway's CPU in bench/http); the counters below are updated directly.
 *
 * Increments and decrements (`count`) are forwarded in batches: the writes bound for one
 * node travel together in one `POST /batch`, under the same retry rule applied to the
 * batch as a whole (internal/writeBatcher.ts).
 */
import { Cause, Context, Duration, Effect, Exit, Layer, Metric, Runtime } from "effect"
import * as Callback from "../internal/Callback.js"
import { Unavailable } from "./GatewayApi.js"
import type { Counted, Write, WriteError } from "./internal/writeBatcher.js"
import { WriteBatcher } from "./internal/writeBatcher.js"
import type { NodeRequestError, NodeResponse, NodeResult, RequestOptions } from "./NodeClient.js"
import { NodeClient, resultOf } from "./NodeClient.js"
import { NodePool } from "./NodePool.js"
import * as Prometheus from "../observability/Prometheus.js"

export interface Answer {
  /** `host:port` of the node that answered */
  readonly node: string
  readonly response: NodeResponse
}

export type { Counted, Write, WriteError } from "./internal/writeBatcher.js"

export interface UpstreamOptions {
  readonly readTimeout: Duration.DurationInput
  /** bound on one forwarded write, or one batch of writes */
  readonly writeTimeout: Duration.DurationInput
  /** most writes in one batch request (the node takes at most 256) */
  readonly maxBatch?: number | undefined
  /**
   * most batch requests in flight per node. 1 (the default): the writes that arrive while
   * a batch is in flight all go in the next one, so each WAL commit on the node carries a
   * full batch; with 2, the second batch was often a small one that cost the node a
   * commit (an fdatasync) of its own, and throughput dropped (bench/http, gateway rows).
   */
  readonly maxInFlight?: number | undefined
  /** most writes waiting per node; beyond, a write is answered 503 at once */
  readonly maxQueued?: number | undefined
}

export const defaultOptions: UpstreamOptions = {
  readTimeout: Duration.seconds(2),
  writeTimeout: Duration.seconds(10),
  maxBatch: 256,
  maxInFlight: 1,
  maxQueued: 4096
}

const forwarded = Metric.counter("dcounter_gateway_forwarded_total", {
  description: "Requests the gateway forwarded to a node",
  incremental: true
})
const failovers = Metric.counter("dcounter_gateway_failovers_total", {
  description: "Requests sent to another node after one failed (reads) or was not reached (writes)",
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
const batches = Metric.counter("dcounter_gateway_batches_total", {
  description: "Batch requests (POST /batch) sent to nodes; forwarded writes / batches is the mean batch size",
  incremental: true
})
const noTags: ReadonlyArray<never> = []
for (const m of [forwarded, failovers, indeterminate, unavailable]) Prometheus.declared(m)
const count = (metric: Metric.Metric.Counter<number>) => metric.unsafeUpdate(1, noTags)

/** How long a node without `POST /batch` (an older version) gets single writes before it is asked again. */
const SINGLE_WRITES_MILLIS = 60_000

/** Maps a node's answer to the handler's result (an `Exit`: no Effect to run). */
export type Decode<A, E> = (answer: Answer) => Exit.Exit<A, E>

export class Upstream extends Context.Tag("dcounter/Upstream")<
  Upstream,
  {
    /** GET `path` on a healthy node, failing over on any failure; `decode` maps the answer. */
    readonly read: <A, E>(path: string, decode: Decode<A, E>) => Effect.Effect<A, E | Unavailable>
    /**
     * POST `body` (JSON text) to `path` on a healthy node, failing over only when it was
     * not reached; `decode` maps the answer.
     */
    readonly write: <A, E>(path: string, body: string, decode: Decode<A, E>) => Effect.Effect<A, E | Unavailable>
    /**
     * An increment or decrement, forwarded in one batch with the other writes bound for
     * the same node; `map` shapes the durable result.
     */
    readonly count: <A>(write: Write, map: (counted: Counted) => A) => Effect.Effect<A, WriteError>
  }
>() {}

const noHealthyNode = new Unavailable({
  error: "no_healthy_node",
  message: "no node is healthy right now; try again shortly"
})

/** How a failed attempt ends a request: try the next node, or answer now. */
type Verdict = "next" | Unavailable

export const make = (options: UpstreamOptions = defaultOptions, schedule: (f: () => void) => void = setImmediate): Effect.Effect<Upstream["Type"], never, NodePool | NodeClient> =>
  Effect.gen(function*() {
    const pool = yield* NodePool
    const client = yield* NodeClient
    const runtime = yield* Effect.runtime<never>()
    const logWarning = (message: string) => Runtime.runSync(runtime)(Effect.logWarning(message))
    const readMillis = Duration.toMillis(options.readTimeout)
    const writeMillis = Duration.toMillis(options.writeTimeout)

    // The pool's and the client's Effects at the callback level (`Callback.run`): no fiber
    // when they are Callbacks, as NodePool's and NodeClient's are. They cannot fail; a
    // defect is logged (and an empty candidate list answers 503).
    const reportDefect = (what: string) => (exit: Exit.Exit<unknown, unknown>): void => {
      if (Exit.isFailure(exit)) Runtime.runSync(runtime)(Effect.logError(`${what} failed unexpectedly`, exit.cause))
    }
    const candidatesFailed = reportDefect("NodePool.candidates")
    const markDownFailed = reportDefect("NodePool.markDown")
    const recordFailed = reportDefect("NodePool.recordRequest")
    /**
     * The healthy nodes now. `candidates` completes at once (a `Callback.sync`; an
     * `Effect.sync` stand-in runs to its end on the spot too); had it not, no node is listed.
     */
    const candidates = (): ReadonlyArray<string> => {
      let nodes: ReadonlyArray<string> = []
      Callback.run(pool.candidates, (exit) => {
        if (Exit.isSuccess(exit)) nodes = exit.value
        else candidatesFailed(exit)
      })
      return nodes
    }
    const markDown = (node: string, reason: string): void => Callback.run(pool.markDown(node, reason), markDownFailed)
    const recordRequest = (node: string): void => Callback.run(pool.recordRequest(node), recordFailed)
    const send = (node: string, request: RequestOptions, reply: (result: NodeResult) => void): void =>
      Callback.run(client.request(node, request), (exit) => reply(resultOf(node, exit)))

    /**
     * Tries the healthy nodes in turn: `judge` decides, for each failure, whether the next
     * node may be tried. Calls `done` once.
     */
    const forward = (
      method: "GET" | "POST",
      path: string,
      body: string | undefined,
      timeoutMillis: number,
      accept: (response: NodeResponse) => boolean,
      judge: (failure: NodeRequestError | string, node: string) => Verdict,
      done: (exit: Exit.Exit<Answer, Unavailable>) => void
    ): void => {
      const nodes = candidates()
      if (nodes.length === 0) {
        count(unavailable)
        return done(Exit.fail(noHealthyNode))
      }
      const request = { method, path, body, timeoutMillis }
      let lastError = ""
      const attempt = (i: number): void => {
        if (i === nodes.length) {
          count(unavailable)
          return done(Exit.fail(
            new Unavailable({
              error: "unavailable",
              message: method === "GET"
                ? `no node answered (${nodes.length} tried; last: ${lastError})`
                : `no node took the request (${nodes.length} tried; last: ${lastError}); nothing was counted`
            })
          ))
        }
        const node = nodes[i]!
        if (i > 0) count(failovers)
        count(forwarded)
        recordRequest(node)
        send(node, request, (result: NodeResult) => {
          if (result._tag === "Right" && accept(result.right)) return done(Exit.succeed({ node, response: result.right }))
          const failure = result._tag === "Left" ? result.left : `${node} answered ${result.right.status}`
          const verdict = judge(failure, node)
          if (verdict !== "next") return done(Exit.fail(verdict))
          lastError = typeof failure === "string" ? failure : failure.message
          attempt(i + 1)
        })
      }
      attempt(0)
    }

    const anyAnswer = () => true
    /** reads: a 5xx answer or any failure moves on; an unreachable node is taken out */
    const readAnswer = (response: NodeResponse) => response.status < 500
    const judgeRead = (failure: NodeRequestError | string, node: string): Verdict => {
      if (typeof failure !== "string" && failure.reason === "NotReached") markDown(node, failure.message)
      return "next"
    }
    /** writes: only what provably did not reach the node moves on */
    const judgeWrite = (failure: NodeRequestError | string, node: string): Verdict => {
      if (typeof failure === "string") return "next" // not produced: every answer is accepted
      switch (failure.reason) {
        case "NotReached":
          markDown(node, failure.message)
          return "next"
        case "Busy":
          return "next"
        case "Indeterminate":
          count(indeterminate)
          markDown(node, failure.message)
          logWarning(`write ${failure.message}: indeterminate, not retried`)
          return new Unavailable({
            error: "indeterminate",
            message: `the request reached node ${node}, which failed before answering; it may or may not have been ` +
              `counted, and was not retried (${failure.message})`,
            node
          })
      }
    }

    /** Resumes with the decoded answer, or the failure; a throwing `decode` is a defect (500). */
    const finish = <A, E>(decode: Decode<A, E>, resume: (exit: Exit.Exit<A, E | Unavailable>) => void) =>
    (exit: Exit.Exit<Answer, Unavailable>): void => {
      if (Exit.isFailure(exit)) return resume(Exit.failCause(exit.cause))
      let decoded: Exit.Exit<A, E>
      try {
        decoded = decode(exit.value)
      } catch (defect) {
        decoded = Exit.die(defect)
      }
      resume(decoded)
    }

    const read = <A, E>(path: string, decode: Decode<A, E>): Callback.Callback<A, E | Unavailable> =>
      Callback.make((resume) => forward("GET", path, undefined, readMillis, readAnswer, judgeRead, finish(decode, resume)))

    const write = <A, E>(path: string, body: string, decode: Decode<A, E>): Callback.Callback<A, E | Unavailable> =>
      Callback.make((resume) => forward("POST", path, body, writeMillis, anyAnswer, judgeWrite, finish(decode, resume)))

    const batcher = new WriteBatcher({
      candidates,
      send: (node, path, body, reply) => {
        if (path === "/batch") count(batches)
        send(node, { method: "POST", path, body, timeoutMillis: writeMillis }, reply)
      },
      now: () => performance.now(),
      markDown,
      forwarded: (node, failover) => {
        if (failover) count(failovers)
        count(forwarded)
        recordRequest(node)
      },
      indeterminate: (_node, writes, message) => {
        indeterminate.unsafeUpdate(writes, noTags)
        logWarning(`batch of ${writes} write(s) ${message}: indeterminate, not retried`)
      },
      unavailable: () => count(unavailable),
      defect: (message, cause) => Runtime.runSync(runtime)(Effect.logError(message, Cause.die(cause))),
      schedule
    }, {
      maxBatch: options.maxBatch ?? defaultOptions.maxBatch!,
      maxInFlight: options.maxInFlight ?? defaultOptions.maxInFlight!,
      maxQueued: options.maxQueued ?? defaultOptions.maxQueued!,
      singleMillis: SINGLE_WRITES_MILLIS
    })

    const countWrite = <A>(w: Write, map: (counted: Counted) => A): Callback.Callback<A, WriteError> =>
      Callback.make((resume) =>
        batcher.submit(w, (exit) => {
          let mapped: Exit.Exit<A, WriteError>
          try {
            mapped = Exit.map(exit, map)
          } catch (defect) {
            mapped = Exit.die(defect)
          }
          resume(mapped)
        })
      )

    return Upstream.of({ read, write, count: countWrite })
  })

export const layer = (options: UpstreamOptions = defaultOptions): Layer.Layer<Upstream, never, NodePool | NodeClient> =>
  Layer.effect(Upstream, make(options))
