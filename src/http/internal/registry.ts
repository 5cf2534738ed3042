/**
 * Where `ApiServer.group` records the handlers it is given, so that `ApiServer` can call
 * them directly instead of through the platform's router. The registry is a layer that is
 * memoised by reference, like `HttpApiBuilder.Router`: every group layer and the server
 * built in one `Layer` build share one instance.
 *
 * @internal
 */
import type { HttpApiEndpoint } from "@effect/platform"
import { Context, Layer } from "effect"
import type { Effect } from "effect"

export interface RegisteredHandler {
  readonly endpoint: HttpApiEndpoint.HttpApiEndpoint.AnyWithProps
  readonly handler: (request: never) => Effect.Effect<unknown, unknown, unknown>
  /** registered with `handleRaw`: served through the platform route */
  readonly withFullRequest: boolean
  readonly uninterruptible: boolean
  /** the context the group layer was built in (its dependencies) */
  readonly context: Context.Context<never>
}

export class HandlerRegistry extends Context.Tag("dcounter/http/HandlerRegistry")<
  HandlerRegistry,
  { readonly handlers: Map<HttpApiEndpoint.HttpApiEndpoint.AnyWithProps, RegisteredHandler> }
>() {
  static readonly Live: Layer.Layer<HandlerRegistry> = Layer.sync(HandlerRegistry, () => ({ handlers: new Map() }))
}
