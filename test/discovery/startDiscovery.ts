/** Test helper: a real discovery role on an ephemeral loopback port. */
import { HttpServer } from "@effect/platform"
import { Effect, Layer, Redacted } from "effect"
import type { Scope } from "effect"
import type { DiscoveryConfigShape } from "../../src/config/DiscoveryConfig.js"
import { DiscoveryConfig } from "../../src/config/DiscoveryConfig.js"
import * as DiscoveryRole from "../../src/discovery/DiscoveryRole.js"
import { Registry } from "../../src/discovery/Registry.js"

export interface RunningDiscovery {
  /** `127.0.0.1:<port>` */
  readonly addr: string
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  readonly registry: Registry["Type"]
}

export const startDiscovery = (
  config: Partial<DiscoveryConfigShape> = {}
): Effect.Effect<RunningDiscovery, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const context = yield* Layer.build(
      DiscoveryRole.layer.pipe(Layer.provide(DiscoveryConfig.layer({ addr: "127.0.0.1:0", ...config })))
    )
    const server = yield* Effect.provide(HttpServer.HttpServer, context)
    const registry = yield* Effect.provide(Registry, context)
    const port = server.address._tag === "TcpAddress" ? server.address.port : 0
    return { addr: `127.0.0.1:${port}`, url: `http://127.0.0.1:${port}`, registry }
  })

export const key = (secret: string) => Redacted.make(secret)

/** A plain fetch returning status and parsed JSON (or the raw text). */
export const call = (
  url: string,
  init: { readonly method?: string; readonly body?: string; readonly headers?: Record<string, string> } = {}
) =>
  Effect.promise(async () => {
    const response = await fetch(url, {
      method: init.method ?? "GET",
      ...(init.body !== undefined ? { body: init.body } : {}),
      headers: { "content-type": "application/json", ...init.headers },
      signal: AbortSignal.timeout(5_000)
    })
    const text = await response.text()
    let json: unknown = undefined
    try {
      json = text === "" ? undefined : JSON.parse(text)
    } catch {
      json = text
    }
    return { status: response.status, json, contentType: response.headers.get("content-type") ?? "" }
  })
