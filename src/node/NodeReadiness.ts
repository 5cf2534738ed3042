/**
 * Where a starting node is, for `/readyz` and for the HTTP handlers that run before the
 * node can serve. The node's HTTP API starts first, so `/livez` answers (and a liveness
 * probe does not kill it) while a long WAL is replayed; the counter routes answer 503
 * until the services are attached, and `/readyz` says which step is missing:
 *
 *     wal     the data directory is locked and the WAL recovered (CounterStore built)
 *     gossip  the gossip listener is up (Transport built)
 *     http    the HTTP API listens
 *
 * `attach` hands the running services over once every step is done; `stopping` is set
 * when the node begins to stop, so `/readyz` fails before anything closes.
 */
import { Context, Effect, Layer } from "effect"
import { PeerManager } from "./PeerManager.js"
import { CounterStore } from "./CounterStore.js"

export type Step = "wal" | "gossip" | "http"

/** What the HTTP handlers need from a running node. */
export interface Running {
  readonly store: CounterStore["Type"]
  readonly peers: PeerManager["Type"]
}

export interface Status {
  readonly wal: boolean
  readonly gossip: boolean
  readonly http: boolean
  readonly stopping: boolean
}

export class NodeReadiness extends Context.Tag("dcounter/NodeReadiness")<
  NodeReadiness,
  {
    readonly done: (step: Step) => Effect.Effect<void>
    readonly attach: (running: Running) => Effect.Effect<void>
    readonly stopping: Effect.Effect<void>
    readonly status: Effect.Effect<Status>
    /**
     * `f` over the running services, or `otherwise` before `attach`. The choice is made
     * when it is called, not when the result runs, so the Effect `f` returns is handed back
     * as it is (a `Callback` stays one: the handlers' fiberless hot path).
     */
    readonly whenRunning: <A, E, B, E2>(
      f: (running: Running) => Effect.Effect<A, E>,
      otherwise: Effect.Effect<B, E2>
    ) => Effect.Effect<A | B, E | E2>
  }
>() {}

export const make = Effect.sync((): NodeReadiness["Type"] => {
  // plain mutable state: every access is synchronous
  const steps = { wal: false, gossip: false, http: false }
  let stopping = false
  let running: Running | undefined
  return {
    done: (step) =>
      Effect.sync(() => {
        steps[step] = true
      }),
    attach: (r) =>
      Effect.sync(() => {
        running = r
      }),
    stopping: Effect.sync(() => {
      stopping = true
    }),
    status: Effect.sync(() => ({ ...steps, stopping })),
    whenRunning: (f, otherwise) => (running === undefined ? otherwise : f(running))
  }
})

export const layer: Layer.Layer<NodeReadiness> = Layer.effect(NodeReadiness, make)

/** A node that is already running (tests serving the HTTP API over ready-made services). */
export const layerRunning: Layer.Layer<NodeReadiness, never, CounterStore | PeerManager> = Layer.effect(
  NodeReadiness,
  Effect.gen(function*() {
    const readiness = yield* make
    yield* readiness.attach({ store: yield* CounterStore, peers: yield* PeerManager })
    yield* Effect.forEach(["wal", "gossip", "http"] as const, readiness.done)
    return readiness
  })
)
