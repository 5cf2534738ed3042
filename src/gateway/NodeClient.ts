/**
 * HTTP client from the gateway to the nodes, over keep-alive connections (one `node:http`
 * Agent for the gateway's lifetime). Every failure says whether the request provably did
 * not reach the node:
 * - `NotReached`: the connection was never established (refused, unreachable, DNS, or the
 *   connect timed out), so not one byte of the request was sent: safe to send elsewhere;
 * - `Indeterminate`: the connection was up and the request may have been read and acted
 *   on (reset, hang-up, timeout while waiting for the answer): never to be retried for a
 *   write, since it may have been counted.
 * A reused keep-alive connection counts as established. Idle connections are closed by the
 * gateway after `idleTimeout`, well before nodes close them (65s), so that a request is
 * not sent on a connection the node is closing.
 */
import * as Http from "node:http"
import type { Scope } from "effect"
import { Context, Data, Duration, Effect, Layer } from "effect"

export class NodeRequestError extends Data.TaggedError("NodeRequestError")<{
  readonly reason: "NotReached" | "Indeterminate"
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
  readonly path: string
  readonly body?: unknown
  /** bound on the whole exchange; past it the request is aborted */
  readonly timeout: Duration.DurationInput
}

export interface NodeClientOptions {
  /** most concurrent connections per node */
  readonly maxSockets: number
  /** idle keep-alive connections are closed after this long */
  readonly idleTimeout: Duration.DurationInput
  /** bound on establishing a connection */
  readonly connectTimeout: Duration.DurationInput
}

export const defaultOptions: NodeClientOptions = {
  maxSockets: 256,
  idleTimeout: Duration.seconds(30),
  connectTimeout: Duration.seconds(1)
}

/** Largest answer body read from a node. */
const MAX_BODY_BYTES = 1 << 20

export class NodeClient extends Context.Tag("dcounter/NodeClient")<
  NodeClient,
  {
    /** One request to the node at `host:port`; never retried here. */
    readonly request: (node: string, options: RequestOptions) => Effect.Effect<NodeResponse, NodeRequestError>
  }
>() {}

const hostAndPort = (node: string): { readonly host: string; readonly port: number } => {
  const i = node.lastIndexOf(":")
  const host = node.slice(0, i)
  return { host: host.startsWith("[") ? host.slice(1, -1) : host, port: Number(node.slice(i + 1)) }
}

const describe = (cause: unknown): string =>
  cause instanceof Error ? ("code" in cause && typeof cause.code === "string" ? `${cause.code}: ${cause.message}` : cause.message) : String(cause)

export const make = (options: NodeClientOptions = defaultOptions): Effect.Effect<NodeClient["Type"], never, Scope.Scope> =>
  Effect.gen(function*() {
    const agent = yield* Effect.acquireRelease(
      Effect.sync(() =>
        new Http.Agent({
          keepAlive: true,
          maxSockets: options.maxSockets,
          maxFreeSockets: options.maxSockets,
          scheduling: "lifo",
          timeout: Duration.toMillis(options.idleTimeout)
        })
      ),
      (agent) => Effect.sync(() => agent.destroy())
    )
    const connectTimeoutMs = Duration.toMillis(options.connectTimeout)

    const request = (node: string, req: RequestOptions): Effect.Effect<NodeResponse, NodeRequestError> =>
      Effect.async<NodeResponse, NodeRequestError>((resume) => {
        const { host, port } = hostAndPort(node)
        const payload = req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body))
        let connected = false
        let done = false
        const finish = (result: Effect.Effect<NodeResponse, NodeRequestError>) => {
          if (done) return
          done = true
          clearTimeout(connectTimer)
          clearTimeout(overallTimer)
          resume(result)
        }
        const fail = (cause: unknown, what: string) =>
          finish(
            Effect.fail(
              new NodeRequestError({
                reason: connected ? "Indeterminate" : "NotReached",
                node,
                message: `${req.method} ${req.path} on ${node}: ${what}`,
                cause
              })
            )
          )
        const outgoing = Http.request({
          agent,
          host,
          port,
          method: req.method,
          path: req.path,
          headers: {
            accept: "application/json",
            ...(payload === undefined
              ? { "content-length": "0" }
              : { "content-type": "application/json", "content-length": String(payload.length) })
          }
        })
        const connectTimer = setTimeout(() => {
          if (!connected) {
            fail(undefined, `no connection within ${connectTimeoutMs}ms`)
            outgoing.destroy()
          }
        }, connectTimeoutMs)
        const overallTimer = setTimeout(() => {
          fail(undefined, `no answer within ${Duration.format(req.timeout)}`)
          outgoing.destroy()
        }, Duration.toMillis(req.timeout))
        outgoing.on("socket", (socket) => {
          if (socket.connecting) socket.once("connect", () => (connected = true))
          else connected = true
        })
        outgoing.on("error", (error) => fail(error, describe(error)))
        outgoing.on("response", (response) => {
          const chunks: Array<Buffer> = []
          let size = 0
          response.on("data", (chunk: Buffer) => {
            size += chunk.length
            if (size > MAX_BODY_BYTES) {
              fail(undefined, `answer larger than ${MAX_BODY_BYTES} bytes`)
              outgoing.destroy()
              return
            }
            chunks.push(chunk)
          })
          response.on("error", (error) => fail(error, describe(error)))
          response.on("close", () => {
            if (!response.complete) fail(undefined, "the connection closed in the middle of the answer")
          })
          response.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8")
            let json: unknown = undefined
            try {
              json = text === "" ? undefined : JSON.parse(text)
            } catch {
              json = undefined
            }
            finish(Effect.succeed({ status: response.statusCode ?? 0, json, text }))
          })
        })
        outgoing.end(payload)
        return Effect.sync(() => {
          done = true
          clearTimeout(connectTimer)
          clearTimeout(overallTimer)
          outgoing.destroy()
        })
      })

    return NodeClient.of({ request })
  })

export const layer = (options: NodeClientOptions = defaultOptions): Layer.Layer<NodeClient> =>
  Layer.scoped(NodeClient, make(options))
