/**
 * The node's HTTP handlers (`ApiServer.group` layers over `NodeApi`: standard
 * `HttpApiBuilder.group` builders, also registered for ApiServer's direct path) and the one
 * function that serves them (`serve`). Handlers only translate: CounterStore and
 * PeerManager do the work; a write answers once it is durable; a bad request changes
 * nothing (it is refused by the schema before a handler runs).
 */
import { Effect, Exit, Layer } from "effect"
import { advertisedAddr, advertisedHttpAddr, NodeConfig } from "../config/NodeConfig.js"
import type { CounterName } from "../crdt/CounterName.js"
import { DEFAULT_COUNTER } from "../crdt/CounterName.js"
import { byOf } from "../http/CountBody.js"
import * as ApiServer from "../http/ApiServer.js"
import * as Callback from "../http/Callback.js"
import { PeerManager } from "../membership/PeerManager.js"
import type { WriteError } from "./CounterStore.js"
import { CounterStore } from "./CounterStore.js"
import { CounterOverflow, MAX_BODY_BYTES, NodeApi, Unavailable } from "./NodeApi.js"

// ---------------------------------------------------------------------------------------
// handlers


const toHttpError = (e: WriteError): CounterOverflow | Unavailable =>
  e._tag === "Overflow" ? CounterOverflow.of(e.message) : Unavailable.of(e.message)

/**
 * A durable write as a handler's answer: a `Callback` (ApiServer answers it from the
 * committer, without a fiber per request; see http/Callback.ts) that resolves with
 * `answer(newValue)` once the write is durable.
 */
const write = <A>(
  store: CounterStore["Type"],
  name: CounterName,
  kind: "inc" | "dec",
  by: number,
  answer: (value: number) => A
): Callback.Callback<A, CounterOverflow | Unavailable> =>
  Callback.make((resume) =>
    store.submit(name, kind, by, (exit) => resume(Exit.mapBoth(exit, { onFailure: toHttpError, onSuccess: answer })))
  )

export const CounterHandlers = ApiServer.group(NodeApi, "counter", (handlers) =>
  Effect.gen(function*() {
    const store = yield* CounterStore
    const nodeId: string = store.replicaId
    const answer = (value: number) => ({ value, nodeId })
    return handlers
      .handle("counter", () => Callback.sync(() => answer(store.unsafeValue(DEFAULT_COUNTER))))
      .handle("increment", ({ payload }) => write(store, DEFAULT_COUNTER, "inc", byOf(payload), answer))
      .handle("decrement", ({ payload }) => write(store, DEFAULT_COUNTER, "dec", byOf(payload), answer))
      .handle("localCounter", () => Effect.map(store.localValue(DEFAULT_COUNTER), answer))
      .handle("state", () =>
        Effect.map(store.counterState(DEFAULT_COUNTER), (s) => ({
          nodeId,
          increments: s.increments,
          decrements: s.decrements,
          value: s.value
        })))
  }))

export const CountersHandlers = ApiServer.group(NodeApi, "counters", (handlers) =>
  Effect.gen(function*() {
    const store = yield* CounterStore
    const nodeId: string = store.replicaId
    const answer = (name: CounterName) => (value: number) => ({ name, value, nodeId })
    return handlers
      .handle("list", () => Effect.map(store.values, (counters) => ({ counters })))
      .handle("get", ({ path }) => Callback.sync(() => answer(path.name)(store.unsafeValue(path.name))))
      .handle("increment", ({ path, payload }) => write(store, path.name, "inc", byOf(payload), answer(path.name)))
      .handle("decrement", ({ path, payload }) => write(store, path.name, "dec", byOf(payload), answer(path.name)))
  }))

export const ClusterHandlers = ApiServer.group(NodeApi, "cluster", (handlers) =>
  Effect.gen(function*() {
    const store = yield* CounterStore
    const peers = yield* PeerManager
    const config = yield* NodeConfig
    return handlers
      .handle("peers", () =>
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
        })))
      .handle("health", () =>
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
            counters: (yield* store.values).length
          }
        }))
  }))

// ---------------------------------------------------------------------------------------
// serving

/**
 * Serves the node API on `addr` (`host:port`; port 0 picks a free one) with `ApiServer`:
 * routes, decoders and encoders compiled from `NodeApi`, handlers called directly, the
 * contract's errors (400/404/405/413 JSON), `/openapi.json`, `/docs` and `/metrics`. The
 * only place that knows how the API is served.
 */
export const serve = (
  addr: string
): Layer.Layer<ApiServer.ApiServer, ApiServer.ApiServerError, CounterStore | PeerManager | NodeConfig> =>
  ApiServer.layer(NodeApi, { addr, bodyLimit: MAX_BODY_BYTES }).pipe(
    Layer.provide([CounterHandlers, CountersHandlers, ClusterHandlers])
  )

/** The node's HTTP server on `--http-addr`, over the running node's services. */
export const layer: Layer.Layer<
  ApiServer.ApiServer,
  ApiServer.ApiServerError,
  CounterStore | PeerManager | NodeConfig
> = Layer.unwrapEffect(Effect.map(NodeConfig, (config) => serve(config.httpAddr)))
