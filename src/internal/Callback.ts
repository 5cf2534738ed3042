/**
 * An `Effect.async` that a caller on a hot path can run without a fiber.
 *
 * Ports stay made of Effects: an implementation whose operation completes from a callback
 * (a group commit, a socket answer) returns `Callback.make(register)`, an ordinary Effect
 * that also carries its register function. A caller that knows the trick (`ApiServer`,
 * the store's write path, the gateway's forwarder) runs it with `Callback.run`, which calls
 * the register function directly when it is there and forks a fiber only when it is not;
 * everyone else just yields the Effect. The callback form is this module's business and
 * never appears in a port's type.
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
import { Effect, Effectable, Exit } from "effect"

export const TypeId: unique symbol = Symbol.for("dcounter/Callback")
export type TypeId = typeof TypeId

/** The register function of a callback effect: calls `resume` once with the result. */
export type Register<A, E> = (resume: (exit: Exit.Exit<A, E>) => void) => void

export interface Callback<A, E> extends Effect.Effect<A, E> {
  readonly [TypeId]: Register<A, E>
}

/**
 * A Callback is one small object: the `Effect.async` a fiber needs is built only when a
 * fiber runs it (`commit`), so the fiberless path allocates nothing else.
 */
class CallbackEffect<A, E> extends Effectable.Class<A, E> implements Callback<A, E> {
  readonly [TypeId]: Register<A, E>
  constructor(register: Register<A, E>) {
    super()
    this[TypeId] = register
  }
  commit(): Effect.Effect<A, E> {
    const register = this[TypeId]
    return Effect.async<A, E>((resume) => register(resume))
  }
}

/** A Callback whose operation can be called off when a fiber running it is interrupted. */
class InterruptibleCallback<A, E> extends CallbackEffect<A, E> {
  constructor(private readonly start: (resume: (exit: Exit.Exit<A, E>) => void) => () => void) {
    super((resume) => void start(resume))
  }
  override commit(): Effect.Effect<A, E> {
    return Effect.async<A, E>((resume) => {
      const cancel = this.start(resume)
      return Effect.sync(cancel)
    })
  }
}

/** An Effect that completes when `register` calls back; `ApiServer` runs it without a fiber. */
export const make = <A, E>(register: Register<A, E>): Callback<A, E> => new CallbackEffect(register)

/**
 * `make` for an operation that can be called off: `register` starts it and returns the
 * function that cancels it. Yielded on a fiber, interrupting the fiber calls that function
 * (the Effect is `Effect.async` with it as the canceler); run by `run` or `ApiServer` there
 * is no fiber to interrupt, so it is never called there and what was started completes.
 */
export const makeInterruptible = <A, E>(
  register: (resume: (exit: Exit.Exit<A, E>) => void) => () => void
): Callback<A, E> => new InterruptibleCallback(register)

/**
 * `Effect.sync(evaluate)` that `ApiServer` runs without a fiber: `evaluate` runs each time
 * the effect runs (not when it is built), and must not throw (a throw is a defect).
 */
export const sync = <A>(evaluate: () => A): Callback<A, never> =>
  make((resume) => resume(Exit.succeed(evaluate())))

export const isCallback = (u: unknown): u is Callback<unknown, unknown> =>
  typeof u === "object" && u !== null && TypeId in u

/**
 * `effect` with its exit mapped by `f`: a caller shapes a port's answer (a handler's
 * response, an HTTP error) and keeps the fiberless form. A `Callback` gives a `Callback`
 * whose register function runs the original's and maps its exit; any other Effect gives an
 * ordinary Effect (`Effect.exit` then `f`). A throw in `f` is a defect in both.
 */
export const mapExit = <A, E, B, E2>(
  effect: Effect.Effect<A, E>,
  f: (exit: Exit.Exit<A, E>) => Exit.Exit<B, E2>
): Effect.Effect<B, E2> => {
  if (!isCallback(effect)) return Effect.flatMap(Effect.exit(effect), f)
  const register = (effect as unknown as Callback<A, E>)[TypeId]
  return make<B, E2>((resume) =>
    register((exit) => {
      let mapped: Exit.Exit<B, E2>
      try {
        mapped = f(exit)
      } catch (defect) {
        mapped = Exit.die(defect)
      }
      resume(mapped)
    })
  )
}

/**
 * Runs `effect` and calls `resume` once with its exit: through the register function
 * without a fiber when `effect` is a `Callback`, else on a fiber of the default runtime
 * (an ordinary Effect, e.g. a test double of the port). Like `register`, what it started
 * completes: there is no interruption.
 *
 * @internal for the fast paths behind ports; application code yields the Effect.
 */
export const run = <A, E>(effect: Effect.Effect<A, E>, resume: (exit: Exit.Exit<A, E>) => void): void => {
  if (isCallback(effect)) {
    ;(effect as unknown as Callback<A, E>)[TypeId](resume)
    return
  }
  Effect.runCallback(effect, { onExit: resume })
}
