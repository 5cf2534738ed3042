/**
 * An `Effect.async` that `ApiServer` can run without a fiber.
 *
 * A handler for a hot endpoint (a durable write: the request waits for a group commit)
 * spends most of its CPU not in its own code but in the fiber that waits: forking it,
 * suspending it, resuming it through the scheduler, and the garbage all that leaves. A
 * handler that returns `Callback.make(register)` gives `ApiServer` the register function
 * itself: the server calls it with a function that writes the answer, and no fiber is
 * created. Measured on the node's durable `POST /increment` (bench/http), this is the
 * difference between the fiber path and the fiberless one in the same run.
 *
 * The value is still an ordinary `Effect` (`Effect.async(register)`), so the same handler
 * works anywhere an Effect does: under `HttpApiBuilder.serve()`, in tests, composed with
 * other effects (composing it gives an ordinary Effect, run on a fiber as usual).
 *
 * The contract of `register`: it calls `resume` exactly once, with an `Exit`, now or later;
 * it does not throw (a throw is a defect: a 500 on the direct path). There is no
 * interruption: what it started completes (a durable write under way stays made), as on
 * `ApiServer`'s fiber path, whose handlers are not interrupted when a client goes away.
 */
import { Effect, Exit } from "effect"

export const TypeId: unique symbol = Symbol.for("dcounter/http/Callback")
export type TypeId = typeof TypeId

/** The register function of a callback effect: calls `resume` once with the result. */
export type Register<A, E> = (resume: (exit: Exit.Exit<A, E>) => void) => void

export interface Callback<A, E> extends Effect.Effect<A, E> {
  readonly [TypeId]: Register<A, E>
}

/** An Effect that completes when `register` calls back; `ApiServer` runs it without a fiber. */
export const make = <A, E>(register: Register<A, E>): Callback<A, E> => {
  // a plain assignment: `Object.defineProperty` cost 4x the whole Effect.async here (150 ns)
  const effect = Effect.async<A, E>((resume) => register(resume)) as Effect.Effect<A, E> & { [TypeId]?: Register<A, E> }
  effect[TypeId] = register
  return effect as Callback<A, E>
}

/**
 * `Effect.sync(evaluate)` that `ApiServer` runs without a fiber: `evaluate` runs each time
 * the effect runs (not when it is built), and must not throw (a throw is a defect).
 */
export const sync = <A>(evaluate: () => A): Callback<A, never> =>
  make((resume) => resume(Exit.succeed(evaluate())))

export const isCallback = (u: unknown): u is Callback<unknown, unknown> =>
  typeof u === "object" && u !== null && TypeId in u
