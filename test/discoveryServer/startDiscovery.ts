/** Test helper: a real discovery role on an ephemeral loopback port. */
import { Effect, Layer, Redacted } from "effect"
import type { Scope } from "effect"
import type { DiscoveryConfigShape } from "../../src/config/DiscoveryConfig.js"
import { DiscoveryConfig } from "../../src/config/DiscoveryConfig.js"
import * as DiscoveryRole from "../../src/discoveryServer/DiscoveryRole.js"
import { ApiServer } from "../../src/http/ApiServer.js"
import * as Registry from "../../src/discoveryServer/Registry.js"

/** A call the registry received, in order. */
export interface RegistryCall {
  readonly op: "register" | "heartbeat" | "deregister"
  readonly addr: string
  readonly ok: boolean
}

export interface RunningDiscovery {
  /** `127.0.0.1:<port>` */
  readonly addr: string
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  readonly registry: Registry.Registry["Type"]
  /** every register / heartbeat / deregister the registry handled */
  readonly calls: ReadonlyArray<RegistryCall>
}

/** The configured registry, recording its calls into `calls`. */
const recordingRegistry = (calls: Array<RegistryCall>) =>
  Layer.scoped(
    Registry.Registry,
    Effect.gen(function*() {
      const config = yield* DiscoveryConfig
      const inner = yield* Registry.make({ ttl: config.peerTtl, capacity: config.maxPeers })
      const record = (op: RegistryCall["op"], addr: string) => <A, E>(effect: Effect.Effect<A, E>) =>
        Effect.tapBoth(effect, {
          onFailure: () => Effect.sync(() => calls.push({ op, addr, ok: false })),
          onSuccess: () => Effect.sync(() => calls.push({ op, addr, ok: true }))
        })
      return Registry.Registry.of({
        ...inner,
        register: (registration) => inner.register(registration).pipe(record("register", registration.addr)),
        heartbeat: (addr) => inner.heartbeat(addr).pipe(record("heartbeat", addr)),
        deregister: (addr) => inner.deregister(addr).pipe(record("deregister", addr))
      })
    })
  )

export const startDiscovery = (
  config: Partial<DiscoveryConfigShape> = {}
): Effect.Effect<RunningDiscovery, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const calls: Array<RegistryCall> = []
    const context = yield* Layer.build(
      DiscoveryRole.layerWithRegistry(recordingRegistry(calls)).pipe(
        Layer.provide(DiscoveryConfig.layer({ addr: "127.0.0.1:0", ...config }))
      )
    )
    const server = yield* Effect.provide(ApiServer, context)
    const registry = yield* Effect.provide(Registry.Registry, context)
    return { addr: `${server.address.host}:${server.address.port}`, url: server.url, registry, calls }
  })

/**
 * How many heartbeats `addr` sent to this discovery before it registered successfully
 * (undefined while it has not registered).
 */
export const heartbeatsBeforeRegistering = (calls: ReadonlyArray<RegistryCall>, addr: string): number | undefined => {
  let heartbeats = 0
  for (const call of calls) {
    if (call.addr !== addr) continue
    if (call.op === "register" && call.ok) return heartbeats
    if (call.op === "heartbeat") heartbeats++
  }
  return undefined
}

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
