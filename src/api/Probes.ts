/**
 * `GET /livez` and `GET /readyz`, the probes every role serves (CONTRACT.md, "on every
 * role"), as one `HttpApiGroup` each role's API adds, so OpenAPI shows them.
 *
 * - `/livez`: 200 while the process and its event loop answer. It checks nothing else on
 *   purpose: an orchestrator restarts a process whose liveness fails, and a node that is
 *   busy recovering its WAL or a gateway that lost its nodes must not be restarted for it.
 * - `/readyz`: 200 when the role can serve, else 503 `{"error": "not_ready", "message",
 *   "checks"}`; `checks` names every condition and whether it holds, `message` says why not.
 *   Neither needs the cluster key: probes come from the platform, which has none.
 */
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as OpenApi from "@effect/platform/OpenApi"
import { Effect, Schema } from "effect"

const Checks = Schema.Record({ key: Schema.String, value: Schema.Boolean }).annotations({
  description: "Each readiness condition of the role and whether it holds"
})

export const Live = Schema.Struct({
  status: Schema.Literal("ok")
}).annotations({ identifier: "Live" })

export const Ready = Schema.Struct({
  status: Schema.Literal("ready"),
  checks: Checks
}).annotations({ identifier: "Ready" })

/** 503: the role cannot serve yet (or any more); `message` says why. */
export class NotReady extends Schema.Class<NotReady>("NotReady")(
  { error: Schema.Literal("not_ready"), message: Schema.String, checks: Checks },
  HttpApiSchema.annotations({ status: 503, description: "The role cannot serve now; message and checks say why" })
) {}

export class ProbesGroup extends HttpApiGroup.make("probes")
  .add(
    HttpApiEndpoint.get("livez", "/livez")
      .addSuccess(Live)
      .annotate(OpenApi.Summary, "Liveness probe")
      .annotate(OpenApi.Description, "200 while the process and its event loop answer (liveness probe)")
  )
  .add(
    HttpApiEndpoint.get("readyz", "/readyz")
      .addSuccess(Ready)
      .addError(NotReady)
      .annotate(OpenApi.Summary, "Readiness probe")
      .annotate(OpenApi.Description, "200 when this role can serve, else 503 saying why (readiness probe)")
  )
  .annotate(OpenApi.Description, "Liveness and readiness probes, for Kubernetes and load balancers")
{}

/** One readiness condition: its name, whether it holds, and what to say when it does not. */
export interface Check {
  readonly name: string
  readonly ok: boolean
  readonly unmet: string
}

export const live = { status: "ok" as const }

/** Ready when every check holds; else `NotReady` naming the unmet ones, in order. */
export const readiness = (checks: ReadonlyArray<Check>): Effect.Effect<typeof Ready.Type, NotReady> => {
  const record = Object.fromEntries(checks.map((c) => [c.name, c.ok]))
  const unmet = checks.filter((c) => !c.ok)
  return unmet.length === 0
    ? Effect.succeed({ status: "ready" as const, checks: record })
    : Effect.fail(new NotReady({ error: "not_ready", message: unmet.map((c) => c.unmet).join("; "), checks: record }))
}
