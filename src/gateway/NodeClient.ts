/**
 * HTTP client from the gateway to the nodes, over persistent keep-alive connections
 * (internal/connectionPool.ts: plain `node:net` with a small HTTP/1.1 response parser,
 * at most `maxSockets` connections and `maxWaiting` waiting requests per node, deadlines
 * checked by one sweep timer). Every failure says whether the request could have reached
 * the node:
 * - `NotReached`: the connection was never established (refused, unreachable, DNS, or the
 *   connect timed out), so not one byte of the request was sent: safe to send elsewhere;
 * - `Busy`: the request never left the gateway (no free connection to that node in time,
 *   or too many requests already waiting for one): safe to send elsewhere, and says
 *   nothing about the node's health;
 * - `Indeterminate`: the connection was up and the request may have been read and acted
 *   on (reset, hang-up, timeout while waiting for the answer, malformed answer): never to
 *   be retried for a write, since it may have been counted.
 * A reused keep-alive connection counts as established. Idle connections are closed after
 * `idleTimeout`, and one second before the node's own keep-alive timeout, so that a
 * request is not sent on a connection the node is closing.
 *
 * The port is one Effect, `request`. It is a `Callback` (internal/Callback.ts): the
 * gateway's forwarding runs it with `Callback.run`, straight from the connection's
 * callback, with no fiber per request; yielded on a fiber it is interruptible (an
 * interrupted request's connection is closed).
 */
import type { Scope } from "effect"
import { Cause, Context, Data, Duration, Effect, Either, Exit, Layer, Runtime } from "effect"
import * as Callback from "../internal/Callback.js"
import { ConnectionPool } from "./internal/connectionPool.js"
import type { Outcome } from "./internal/connectionPool.js"

export class NodeRequestError extends Data.TaggedError("NodeRequestError")<{
  readonly reason: "NotReached" | "Busy" | "Indeterminate"
  /** `host:port` of the node */
  readonly node: string
  readonly message: string
  readonly cause?: unknown
}> {}

export interface NodeResponse {
  readonly status: number
  /** the JSON body, or undefined when it was empty or not JSON */
  readonly json: unknown
  readonly text: string
}

export interface RequestOptions {
  readonly method: "GET" | "POST"
  /** origin-form path (`/counters/x/increment`), visible ASCII only */
  readonly path: string
  /** JSON text of the body, for a POST (none: an empty body) */
  readonly body?: string | undefined
  /** bound on the whole exchange in milliseconds, waiting for a connection included */
  readonly timeoutMillis: number
}

/** A request's result as data, for the callback-level forwarding (see `resultOf`). */
export type NodeResult = Either.Either<NodeResponse, NodeRequestError>

export interface NodeClientOptions {
  /** most concurrent connections per node */
  readonly maxSockets: number
  /** most requests waiting for a free connection, per node; more are refused as `Busy` */
  readonly maxWaiting: number
  /** idle keep-alive connections are closed after this long */
  readonly idleTimeout: Duration.DurationInput
  /** bound on establishing a connection */
  readonly connectTimeout: Duration.DurationInput
  /** how often deadlines are checked: timeouts are this precise */
  readonly sweepInterval: Duration.DurationInput
}

export const defaultOptions: NodeClientOptions = {
  maxSockets: 256,
  maxWaiting: 1024,
  idleTimeout: Duration.seconds(30),
  connectTimeout: Duration.seconds(1),
  sweepInterval: Duration.millis(50)
}

/** Largest answer body read from a node. */
const MAX_BODY_BYTES = 1 << 20
/** Largest answer head (status line and headers) read from a node. */
const MAX_HEAD_BYTES = 16 * 1024

export class NodeClient extends Context.Tag("dcounter/NodeClient")<
  NodeClient,
  {
    /**
     * One request to the node at `host:port`; never retried here. Interrupting it closes
     * its connection. (A `Callback`: the forwarding runs it without a fiber.)
     */
    readonly request: (node: string, options: RequestOptions) => Effect.Effect<NodeResponse, NodeRequestError>
  }
>() {}

/**
 * A request's exit as a `NodeResult`. A defect (no `NodeRequestError`: a bug, not the
 * network) is `Indeterminate`: nothing says the request did not reach the node.
 */
export const resultOf = (node: string, exit: Exit.Exit<NodeResponse, NodeRequestError>): NodeResult => {
  if (Exit.isSuccess(exit)) return Either.right(exit.value)
  const failure = Cause.failureOption(exit.cause)
  if (failure._tag === "Some") return Either.left(failure.value)
  return Either.left(
    new NodeRequestError({
      reason: "Indeterminate",
      node,
      message: `${node}: the request failed unexpectedly: ${Cause.pretty(exit.cause)}`,
      cause: Cause.squash(exit.cause)
    })
  )
}

const toExit = (node: string, outcome: Outcome): Exit.Exit<NodeResponse, NodeRequestError> => {
  if (!outcome.ok) {
    return Exit.fail(
      new NodeRequestError({
        reason: outcome.reason,
        node,
        message: outcome.message,
        ...(outcome.cause === undefined ? {} : { cause: outcome.cause })
      })
    )
  }
  const { body, status } = outcome.response
  const text = body.length === 0 ? "" : body.toString("utf8")
  let json: unknown = undefined
  if (text !== "") {
    try {
      json = JSON.parse(text)
    } catch {
      json = undefined
    }
  }
  return Exit.succeed({ status, json, text })
}

export const make = (options: NodeClientOptions = defaultOptions): Effect.Effect<NodeClient["Type"], never, Scope.Scope> =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<never>()
    const logDefect = (message: string, cause: unknown) =>
      Runtime.runSync(runtime)(Effect.logError(message, Cause.die(cause)))
    const pool = yield* Effect.acquireRelease(
      Effect.sync(() =>
        new ConnectionPool({
          maxSockets: options.maxSockets,
          maxWaiting: options.maxWaiting,
          connectMillis: Duration.toMillis(options.connectTimeout),
          idleMillis: Duration.toMillis(options.idleTimeout),
          sweepMillis: Duration.toMillis(options.sweepInterval),
          maxHeadBytes: MAX_HEAD_BYTES,
          maxBodyBytes: MAX_BODY_BYTES,
          onDefect: logDefect
        })
      ),
      (pool) => Effect.sync(() => pool.close())
    )

    const request = (node: string, req: RequestOptions): Effect.Effect<NodeResponse, NodeRequestError> =>
      Callback.makeInterruptible<NodeResponse, NodeRequestError>((resume) => {
        const pending = pool.send(node, req, (outcome) => resume(toExit(node, outcome)))
        return () => pool.cancel(pending)
      })

    return NodeClient.of({ request })
  })

export const layer = (options: NodeClientOptions = defaultOptions): Layer.Layer<NodeClient> =>
  Layer.scoped(NodeClient, make(options))
