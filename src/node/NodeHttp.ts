/**
 * The node's HTTP handlers (`ApiServer.group` layers over `NodeApi`: standard
 * `HttpApiBuilder.group` builders, also registered for ApiServer's direct path) and the one
 * function that serves them (`serve`). Handlers only translate: CounterStore and
 * PeerManager do the work; a write answers once it is durable; a bad request changes
 * nothing (it is refused by the schema before a handler runs).
 */
import { Cause, Effect, Exit, Layer, Option } from "effect"
import { advertisedAddr, advertisedHttpAddr, NodeConfig } from "../config/NodeConfig.js"
import type { CounterPage } from "../crdt/CounterMap.js"
import type { CounterName } from "../crdt/CounterName.js"
import { DEFAULT_COUNTER } from "../crdt/CounterName.js"
import { byOf } from "../api/CountBody.js"
import { pageRequestOf } from "../api/PageQuery.js"
import * as ApiServer from "../http/ApiServer.js"
import * as Callback from "../internal/Callback.js"
import * as Probes from "../api/Probes.js"
import type { PeerManager } from "./PeerManager.js"
import type { CounterStore, WriteError } from "./CounterStore.js"
import * as CounterStoreModule from "./CounterStore.js"
import type { BatchResponse, BatchResult, BatchWrite } from "./NodeApi.js"
import { BadRequest, CounterOverflow, MAX_BODY_BYTES, NodeApi, Unavailable } from "./NodeApi.js"
import * as NodeReadinessModule from "./NodeReadiness.js"
import { NodeReadiness, type Running } from "./NodeReadiness.js"

// ---------------------------------------------------------------------------------------
// handlers


const toHttpError = (e: WriteError): CounterOverflow | Unavailable =>
  e._tag === "Overflow" ? CounterOverflow.of(e.message) : Unavailable.of(e.message)

/**
 * A durable write as a handler's answer: the store's write mapped with `Callback.mapExit`,
 * so it stays a `Callback` that ApiServer answers from the committer, without a fiber per
 * request (see internal/Callback.ts); it resolves with `answer(newValue)` once durable.
 */
const write = <A>(
  store: CounterStore["Type"],
  name: CounterName,
  kind: "inc" | "dec",
  by: number,
  answer: (value: number) => A
): Effect.Effect<A, CounterOverflow | Unavailable> =>
  Callback.mapExit(
    CounterStoreModule.write(store, name, kind, by),
    Exit.mapBoth({ onFailure: toHttpError, onSuccess: answer })
  )

/** A counter's value as a handler's answer; a `Callback` still (ApiServer reads it without a fiber). */
const read = <A>(store: CounterStore["Type"], name: CounterName, answer: (value: number) => A): Effect.Effect<A> =>
  Callback.mapExit(store.value(name), Exit.map(answer))

/** Before the node's services are attached (WAL recovery) and once it stops: 503. */
const notRunning = (readiness: NodeReadiness["Type"]) =>
  Effect.flatMap(readiness.status, (status) =>
    Effect.fail(
      Unavailable.of(
        status.stopping ? "the node is shutting down" : "the node is starting: its write-ahead log is being recovered"
      )
    ))

/**
 * Runs `f` over the running services, or answers 503. Synchronous, so a `Callback`
 * returned by `f` stays one (the fiberless path of ApiServer).
 */
const withRunning = (readiness: NodeReadiness["Type"]) => {
  const refused = notRunning(readiness)
  return <A, E>(f: (running: Running) => Effect.Effect<A, E>) => (): Effect.Effect<A, E | Unavailable> =>
    readiness.whenRunning(f, refused)
}

export const CounterHandlers = ApiServer.group(NodeApi, "counter", (handlers) =>
  Effect.gen(function*() {
    const readiness = yield* NodeReadiness
    const answer = (store: CounterStore["Type"]) => (value: number) => ({ value, nodeId: store.replicaId as string })
    const run = withRunning(readiness)
    return handlers
      .handle("counter", run(({ store }) => read(store, DEFAULT_COUNTER, answer(store))))
      .handle("increment", ({ payload }) =>
        run(({ store }) => write(store, DEFAULT_COUNTER, "inc", byOf(payload), answer(store)))())
      .handle("decrement", ({ payload }) =>
        run(({ store }) => write(store, DEFAULT_COUNTER, "dec", byOf(payload), answer(store)))())
      .handle("localCounter", run(({ store }) => Effect.map(store.localValue(DEFAULT_COUNTER), answer(store))))
      .handle("state", run(({ store }) =>
        Effect.map(store.counterState(DEFAULT_COUNTER), (s) => ({
          nodeId: store.replicaId as string,
          increments: s.increments,
          decrements: s.decrements,
          value: s.value
        }))))
  }))

export const CountersHandlers = ApiServer.group(NodeApi, "counters", (handlers) =>
  Effect.gen(function*() {
    const readiness = yield* NodeReadiness
    const answer = (store: CounterStore["Type"], name: CounterName) => (value: number) => ({
      name,
      value,
      nodeId: store.replicaId as string
    })
    const run = withRunning(readiness)
    return handlers
      .handle("list", ({ urlParams }) => run(({ store }) => Effect.flatMap(store.page(pageRequestOf(urlParams)), listed))())
      .handle("get", ({ path }) =>
        run(({ store }) => read(store, path.name, answer(store, path.name)))())
      .handle("increment", ({ path, payload }) =>
        run(({ store }) => write(store, path.name, "inc", byOf(payload), answer(store, path.name)))())
      .handle("decrement", ({ path, payload }) =>
        run(({ store }) => write(store, path.name, "dec", byOf(payload), answer(store, path.name)))())
  }))

/**
 * A page as answered. A recency cursor this node did not issue is a 503, not a 400: the
 * request is sound, only this node cannot resume that walk, and the gateway then asks the
 * other nodes until the one that issued it answers.
 */
const listed = (page: CounterPage): Effect.Effect<CounterPage, BadRequest | Unavailable> =>
  page.rejected === undefined
    ? Effect.succeed(page)
    : Effect.fail(page.rejected.reason === "NotACursor" ? BadRequest.of(page.rejected.message) : Unavailable.of(page.rejected.message))

/** One write's result in a batch answer: its error as the single endpoint would name it. */
const batchResult = (exit: Exit.Exit<number, WriteError>): BatchResult => {
  if (Exit.isSuccess(exit)) return { value: exit.value }
  const failure = Cause.failureOption(exit.cause)
  if (Option.isNone(failure)) return { error: "unavailable", message: "the write failed unexpectedly; it was not counted" }
  const e = toHttpError(failure.value)
  return { error: e.error, message: e.message }
}

/**
 * A batch as one `Callback`: every write is run (`Callback.run`) in this synchronous run, so
 * they join the same WAL group commit, and the answer goes out when the last one settled.
 */
const writeBatch = (
  store: CounterStore["Type"],
  writes: ReadonlyArray<BatchWrite>
): Effect.Effect<BatchResponse> =>
  Callback.make((resume) => {
    const results = new Array<BatchResult>(writes.length)
    let left = writes.length
    for (let i = 0; i < writes.length; i++) {
      const w = writes[i]!
      Callback.run(CounterStoreModule.write(store, w.name, w.kind, w.by), (exit) => {
        results[i] = batchResult(exit)
        if (--left === 0) resume(Exit.succeed({ nodeId: store.replicaId as string, results }))
      })
    }
  })

export const BatchHandlers = ApiServer.group(NodeApi, "batch", (handlers) =>
  Effect.gen(function*() {
    const readiness = yield* NodeReadiness
    const run = withRunning(readiness)
    return handlers.handle("write", ({ payload }) => run(({ store }) => writeBatch(store, payload.writes))())
  }))

export const ClusterHandlers = ApiServer.group(NodeApi, "cluster", (handlers) =>
  Effect.gen(function*() {
    const readiness = yield* NodeReadiness
    const config = yield* NodeConfig
    const run = withRunning(readiness)
    return handlers
      .handle("peers", run(({ peers }) =>
        Effect.map(peers.peers, (list) => ({
          peers: list.map((p) => ({
            addr: p.addr,
            status: p.status,
            httpAddr: p.httpAddr ?? null,
            nodeId: p.replicaId ?? null,
            fails: p.fails,
            lastSeen: new Date(p.lastSeen).toISOString(),
            heard: p.heard,
            sources: p.sources
          }))
        }))))
      .handle("health", run(({ peers, store }) =>
        Effect.gen(function*() {
          const list = yield* peers.peers
          const count = (s: string) => list.filter((p) => p.status === s).length
          return {
            status: "ok" as const,
            role: "node" as const,
            nodeId: store.replicaId,
            addr: advertisedAddr(config),
            httpAddr: advertisedHttpAddr(config),
            peers: { alive: count("alive"), suspect: count("suspect"), dead: count("dead") },
            counters: yield* store.count
          }
        })))
  }))

/** `/livez` always; `/readyz` from the start-up steps (NodeReadiness). */
export const ProbesHandlers = ApiServer.group(NodeApi, "probes", (handlers) =>
  Effect.gen(function*() {
    const readiness = yield* NodeReadiness
    return handlers
      .handle("livez", () => Effect.succeed(Probes.live))
      .handle("readyz", () =>
        Effect.flatMap(readiness.status, (status) =>
          Probes.readiness([
            { name: "wal", ok: status.wal, unmet: "the write-ahead log is being recovered" },
            { name: "gossip", ok: status.gossip, unmet: "the gossip listener is not up yet" },
            { name: "http", ok: status.http, unmet: "the HTTP API is not listening yet" },
            { name: "running", ok: !status.stopping, unmet: "the node is shutting down" }
          ])))
  }))

// ---------------------------------------------------------------------------------------
// serving

/**
 * Serves the node API on `addr` (`host:port`; port 0 picks a free one) with `ApiServer`:
 * routes, decoders and encoders compiled from `NodeApi`, handlers called directly, the
 * contract's errors (400/404/405/413 JSON), `/openapi.json`, `/docs` and `/metrics`. The
 * only place that knows how the API is served. The handlers find the node's services
 * through `NodeReadiness`, so the server can listen before they exist.
 */
export const serveGated = (
  addr: string
): Layer.Layer<ApiServer.ApiServer, ApiServer.ApiServerError, NodeReadiness | NodeConfig> =>
  ApiServer.layer(NodeApi, { addr, bodyLimit: MAX_BODY_BYTES }).pipe(
    Layer.provide([CounterHandlers, CountersHandlers, ClusterHandlers, BatchHandlers, ProbesHandlers])
  )

/** Serves the node API over services that are already running. */
export const serve = (
  addr: string
): Layer.Layer<ApiServer.ApiServer, ApiServer.ApiServerError, CounterStore | PeerManager | NodeConfig> =>
  serveGated(addr).pipe(Layer.provide(NodeReadinessModule.layerRunning))

/**
 * The node's HTTP server on `--http-addr`, started before the node's services: it marks the
 * `http` step done once it listens.
 */
export const layer: Layer.Layer<
  ApiServer.ApiServer,
  ApiServer.ApiServerError,
  NodeReadiness | NodeConfig
> = Layer.unwrapEffect(Effect.map(NodeConfig, (config) => serveGated(config.httpAddr))).pipe(
  Layer.tap(() => Effect.flatMap(NodeReadiness, (readiness) => readiness.done("http")))
)
