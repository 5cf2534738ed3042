/**
 * The HTTP side of the shell client: one gateway or node at `url`, asked through the
 * contract's routes. Every call is bounded by a timeout; nothing is retried (an increment
 * retried after a lost answer could count twice). Answers are decoded with small schemas
 * that ignore extra fields, so the client works against a gateway and a node alike.
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { Context, Duration, Effect, Layer, Option, Schema } from "effect"
import { ClientError } from "./ClientError.js"

export const CounterAnswer = Schema.Struct({ value: Schema.Number, name: Schema.optional(Schema.String) })
export type CounterAnswer = typeof CounterAnswer.Type

export const CounterPage = Schema.Struct({
  counters: Schema.Array(Schema.Struct({ name: Schema.String, value: Schema.Number })),
  next: Schema.optional(Schema.String)
})

export interface NodeStatus {
  readonly id: string | null
  readonly httpAddr: string
  readonly up: boolean
  readonly value: number | null
}

export interface ClusterStatus {
  /** what answered at the url */
  readonly role: "gateway" | "node"
  readonly nodes: ReadonlyArray<NodeStatus>
}

const GatewayNodes = Schema.Struct({
  nodes: Schema.Array(Schema.Struct({
    id: Schema.String,
    httpAddr: Schema.String,
    healthy: Schema.Boolean,
    value: Schema.NullOr(Schema.Number)
  }))
})
const NodeHealth = Schema.Struct({ nodeId: Schema.String, httpAddr: Schema.String })
const NodePeers = Schema.Struct({
  peers: Schema.Array(Schema.Struct({ httpAddr: Schema.NullOr(Schema.String), nodeId: Schema.NullOr(Schema.String) }))
})
const ErrorBody = Schema.Struct({ error: Schema.String, message: Schema.String })

/** The server's JSON answer, decoded (`body` is the raw JSON, for `--json`). */
export interface Answer<A> {
  readonly value: A
  readonly body: unknown
}

export class CounterClient extends Context.Tag("dcounter/client/CounterClient")<CounterClient, {
  /** `name` undefined: the `default` counter through `/counter` */
  readonly get: (name: string | undefined) => Effect.Effect<Answer<CounterAnswer>, ClientError>
  /** adds `sign * by` (by undefined: no body, which counts as 1) */
  readonly add: (name: string | undefined, sign: 1 | -1, by: number | undefined) => Effect.Effect<Answer<CounterAnswer>, ClientError>
  /** every counter (optionally under `prefix`), following the listing's `next` pages */
  readonly list: (prefix: string | undefined) => Effect.Effect<ReadonlyArray<{ readonly name: string; readonly value: number }>, ClientError>
  readonly status: Effect.Effect<ClusterStatus, ClientError>
}>() {}

const TIMEOUT = Duration.seconds(10)
/** per node when `status` asks every node behind a node's url */
const NODE_TIMEOUT = Duration.seconds(2)
const PAGE_SIZE = 1000
/** a bound on pages, against a server whose `next` never ends */
const MAX_PAGES = 100_000

export interface Options {
  readonly url: string
}

export const make = (options: Options) =>
  Effect.gen(function*() {
    const http = yield* HttpClient.HttpClient
    const base = options.url

    const unreachable = (url: string) => (e: HttpClientError.HttpClientError | { readonly _tag: "TimeoutException" }) =>
      new ClientError({
        reason: "Unreachable",
        message: e._tag === "TimeoutException"
          ? `${url} did not answer within ${Duration.format(TIMEOUT)}`
          : `nothing answered at ${url} (${e.message.replace(/\s+/g, " ")}); is the cluster running? (npm start)`,
        cause: e
      })

    /** Sends a request; a 2xx answer is decoded with `schema`, anything else is a ClientError. */
    const call = <A, I>(request: HttpClientRequest.HttpClientRequest, schema: Schema.Schema<A, I>, timeout = TIMEOUT) =>
      Effect.gen(function*() {
        const response = yield* http.execute(request).pipe(
          Effect.timeout(timeout),
          Effect.mapError(unreachable(request.url))
        )
        const text = yield* response.text.pipe(Effect.timeout(timeout), Effect.mapError(unreachable(request.url)))
        const body = parseJson(text)
        if (response.status >= 400) return yield* refused(request, response, body, text)
        const value = Schema.decodeUnknownOption(schema)(body)
        if (Option.isNone(value)) {
          return yield* new ClientError({
            reason: "BadAnswer",
            status: response.status,
            message: `${request.method} ${request.url} answered ${response.status} with something that is not a dcounter answer: ${
              text.slice(0, 120)
            }`
          })
        }
        return { value: value.value, body } satisfies Answer<A>
      }).pipe(Effect.scoped)

    const counterPath = (name: string | undefined) => name === undefined ? "/counter" : `/counters/${encodeURIComponent(name)}`

    const get = Effect.fn("CounterClient.get")(function*(name: string | undefined) {
      return yield* call(HttpClientRequest.get(base + counterPath(name)), CounterAnswer)
    })

    const add = Effect.fn("CounterClient.add")(function*(name: string | undefined, sign: 1 | -1, by: number | undefined) {
      const action = sign === 1 ? "increment" : "decrement"
      const path = name === undefined ? `/${action}` : `${counterPath(name)}/${action}`
      const request = HttpClientRequest.post(base + path)
      return yield* call(by === undefined ? request : HttpClientRequest.bodyUnsafeJson(request, { by }), CounterAnswer)
    })

    const list = Effect.fn("CounterClient.list")(function*(prefix: string | undefined) {
      const out: Array<{ readonly name: string; readonly value: number }> = []
      let after: string | undefined
      for (let page = 0; page < MAX_PAGES; page++) {
        const params: Record<string, string> = { limit: String(PAGE_SIZE) }
        if (after !== undefined) params["after"] = after
        if (prefix !== undefined) params["prefix"] = prefix
        const answer = yield* call(HttpClientRequest.get(`${base}/counters`, { urlParams: params }), CounterPage)
        // a server without paging returns every counter at once and ignores the prefix
        for (const c of answer.value.counters) if (prefix === undefined || c.name.startsWith(prefix)) out.push(c)
        const next = answer.value.next
        if (next === undefined || (after !== undefined && next <= after)) break
        after = next
      }
      return out
    })

    const ask = <A, I>(url: string, schema: Schema.Schema<A, I>) =>
      call(HttpClientRequest.get(url), schema, NODE_TIMEOUT).pipe(Effect.option)

    const status = Effect.gen(function*() {
      const fromGateway = yield* call(HttpClientRequest.get(`${base}/nodes`), GatewayNodes).pipe(
        Effect.map((a) => Option.some(a.value)),
        Effect.catchIf((e) => e.reason === "Refused" && e.status === 404, () => Effect.succeedNone)
      )
      if (Option.isSome(fromGateway)) {
        return {
          role: "gateway",
          nodes: fromGateway.value.nodes.map((n) => ({
            id: n.id === "" ? null : n.id,
            httpAddr: n.httpAddr,
            up: n.healthy,
            value: n.healthy ? n.value : null
          }))
        } satisfies ClusterStatus
      }
      // a node: itself and every peer it knows the HTTP address of, each asked directly
      const self = yield* call(HttpClientRequest.get(`${base}/health`), NodeHealth)
      const peers = yield* call(HttpClientRequest.get(`${base}/peers`), NodePeers)
      const targets = [
        { id: self.value.nodeId as string | null, httpAddr: self.value.httpAddr },
        ...peers.value.peers.flatMap((p) => p.httpAddr === null ? [] : [{ id: p.nodeId, httpAddr: p.httpAddr }])
      ]
      const nodes = yield* Effect.forEach(targets, (t) =>
        Effect.map(ask(httpUrl(t.httpAddr) + "/counter", CounterAnswer), (a): NodeStatus => ({
          id: t.id,
          httpAddr: t.httpAddr,
          up: Option.isSome(a),
          value: Option.isSome(a) ? a.value.value.value : null
        })), { concurrency: 8 })
      return { role: "node", nodes } satisfies ClusterStatus
    }).pipe(Effect.withSpan("CounterClient.status"))

    return CounterClient.of({ get, add, list, status })
  })

const httpUrl = (addr: string) => /^https?:\/\//.test(addr) ? addr.replace(/\/+$/, "") : `http://${addr}`

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

const refused = (
  request: HttpClientRequest.HttpClientRequest,
  response: HttpClientResponse.HttpClientResponse,
  body: unknown,
  text: string
) => {
  const error = Schema.decodeUnknownOption(ErrorBody)(body)
  return new ClientError({
    reason: "Refused",
    status: response.status,
    message: Option.isSome(error)
      ? `${request.method} ${request.url}: ${response.status} ${error.value.error}: ${error.value.message}`
      : `${request.method} ${request.url}: ${response.status} ${text.slice(0, 120).replace(/\s+/g, " ")}`
  })
}

export const layer = (options: Options): Layer.Layer<CounterClient> =>
  Layer.effect(CounterClient, make(options)).pipe(Layer.provide(FetchHttpClient.layer))
