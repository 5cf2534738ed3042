import { describe, expect, it } from "../support/vitest.js"
import { Duration, Effect, Layer, Option } from "effect"
import { DiscoveryConfig } from "../../src/config/DiscoveryConfig.js"
import * as DiscoveryRole from "../../src/discoveryServer/DiscoveryRole.js"
import { Registry } from "../../src/discoveryServer/Registry.js"
import { ApiServer } from "../../src/http/ApiServer.js"
import { call, key, startDiscovery } from "./startDiscovery.js"

const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  call(url, { method: "POST", body: typeof body === "string" ? body : JSON.stringify(body), headers })

const n1 = { addr: "127.0.0.1:9001", httpAddr: "127.0.0.1:8011", nodeId: "n1" }
const n2 = { addr: "127.0.0.1:9002", httpAddr: "127.0.0.1:8012", nodeId: "n2" }

const isIso = (s: unknown) => typeof s === "string" && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(s)

describe("DiscoveryRole (live HTTP)", () => {
  it.scopedLive("DiscoveryRole.layer listens on the configured address and serves its registry", () =>
    Effect.gen(function*() {
      const context = yield* Layer.build(
        DiscoveryRole.layer.pipe(Layer.provide(DiscoveryConfig.layer({ addr: "127.0.0.1:0", maxPeers: 1 })))
      )
      const { url } = yield* Effect.provide(ApiServer, context)
      const registry = yield* Effect.provide(Registry, context)
      expect((yield* post(`${url}/register`, n1)).status).toBe(200)
      expect((yield* post(`${url}/register`, n2)).status).toBe(507) // maxPeers from the config
      expect((yield* registry.peers).map((p) => p.addr)).toEqual([n1.addr])
    }))

  it.scopedLive("register, list, heartbeat, deregister", () =>
    Effect.gen(function*() {
      const d = yield* startDiscovery()
      expect(yield* post(`${d.url}/register`, n1)).toMatchObject({ status: 200, json: {} })
      expect(yield* post(`${d.url}/register`, n2)).toMatchObject({ status: 200, json: {} })

      const listed = yield* call(`${d.url}/peers`)
      expect(listed.status).toBe(200)
      expect(listed.contentType).toContain("application/json")
      const peers = listed.json as ReadonlyArray<Record<string, unknown>>
      expect(peers.map(({ lastSeen: _, ...rest }) => rest)).toEqual([n1, n2])
      expect(peers.every((p) => isIso(p.lastSeen))).toBe(true)

      expect(yield* post(`${d.url}/heartbeat`, { addr: n1.addr })).toMatchObject({ status: 200, json: {} })
      expect(yield* post(`${d.url}/deregister`, { addr: n1.addr })).toMatchObject({ status: 200, json: {} })
      // deregister is idempotent
      expect(yield* post(`${d.url}/deregister`, { addr: n1.addr })).toMatchObject({ status: 200, json: {} })
      const after = (yield* call(`${d.url}/peers`)).json as ReadonlyArray<{ addr: string }>
      expect(after.map((p) => p.addr)).toEqual([n2.addr])

      expect(yield* call(`${d.url}/health`)).toMatchObject({
        status: 200,
        json: { status: "ok", role: "discovery", peers: 1 }
      })
    }))

  it.scopedLive("heartbeat for an unknown address is 404 not_registered; registering again fixes it", () =>
    Effect.gen(function*() {
      const d = yield* startDiscovery()
      const unknown = yield* post(`${d.url}/heartbeat`, { addr: n1.addr })
      expect(unknown.status).toBe(404)
      expect(unknown.json).toMatchObject({ error: "not_registered" })
      expect(typeof (unknown.json as { message: unknown }).message).toBe("string")
      yield* post(`${d.url}/register`, n1)
      expect((yield* post(`${d.url}/heartbeat`, { addr: n1.addr })).status).toBe(200)
    }))

  it.scopedLive("TTL: a peer without heartbeats drops out of /peers and its heartbeat is 404", () =>
    Effect.gen(function*() {
      const d = yield* startDiscovery({ peerTtl: Duration.seconds(1) })
      yield* post(`${d.url}/register`, n1)
      yield* post(`${d.url}/register`, n2)
      // keep n2 alive, let n1 expire
      for (let i = 0; i < 8; i++) {
        yield* Effect.sleep("200 millis")
        yield* post(`${d.url}/heartbeat`, { addr: n2.addr })
      }
      const peers = (yield* call(`${d.url}/peers`)).json as ReadonlyArray<{ addr: string }>
      expect(peers.map((p) => p.addr)).toEqual([n2.addr])
      expect((yield* post(`${d.url}/heartbeat`, { addr: n1.addr })).status).toBe(404)
    }))

  it.scopedLive("bad bodies are 400 bad_request and change nothing", () =>
    Effect.gen(function*() {
      const d = yield* startDiscovery()
      yield* post(`${d.url}/register`, n1)
      const before = (yield* call(`${d.url}/peers`)).json

      const bad: ReadonlyArray<readonly [string, unknown]> = [
        ["/register", "{not json"],
        ["/register", "{\"addr\": \"127.0.0.1:9003\", "],
        ["/register", ""],
        ["/register", "null"],
        ["/register", "[]"],
        ["/register", { addr: "127.0.0.1:9003", httpAddr: "127.0.0.1:8013" }],
        ["/register", { addr: "127.0.0.1:9003", nodeId: "n3" }],
        ["/register", { addr: "nohostport", httpAddr: "127.0.0.1:8013", nodeId: "n3" }],
        ["/register", { addr: "127.0.0.1:70000", httpAddr: "127.0.0.1:8013", nodeId: "n3" }],
        ["/register", { addr: "127.0.0.1:9003", httpAddr: "http://x:1/", nodeId: "n3" }],
        ["/register", { addr: 9003, httpAddr: "127.0.0.1:8013", nodeId: "n3" }],
        ["/register", { addr: "127.0.0.1:9003", httpAddr: "127.0.0.1:8013", nodeId: 3 }],
        ["/register", { addr: "127.0.0.1:9003", httpAddr: "127.0.0.1:8013", nodeId: "" }],
        ["/register", { addr: "127.0.0.1:9003", httpAddr: "127.0.0.1:8013", nodeId: "x".repeat(129) }],
        ["/heartbeat", "{"],
        ["/heartbeat", {}],
        ["/heartbeat", { addr: ["127.0.0.1:9001"] }],
        ["/deregister", "}"],
        ["/deregister", { addr: null }],
        ["/deregister", { addr: "127.0.0.1" }]
      ]
      for (const [path, body] of bad) {
        const res = yield* post(`${d.url}${path}`, body)
        expect({ path, body, status: res.status }).toEqual({ path, body, status: 400 })
        expect(res.json).toMatchObject({ error: "bad_request" })
        expect(typeof (res.json as { message: unknown }).message).toBe("string")
      }
      expect((yield* call(`${d.url}/peers`)).json).toEqual(before)
      expect(yield* d.registry.size).toBe(1)
    }))

  it.scopedLive("unknown route is 404 JSON, wrong method is 405 JSON", () =>
    Effect.gen(function*() {
      const d = yield* startDiscovery()
      expect(yield* call(`${d.url}/nope`)).toMatchObject({ status: 404, json: { error: "not_found" } })
      expect(yield* call(`${d.url}/register`)).toMatchObject({ status: 405, json: { error: "method_not_allowed" } })
      expect(yield* post(`${d.url}/peers`, {})).toMatchObject({ status: 405, json: { error: "method_not_allowed" } })
    }))

  it.scopedLive("the registry is bounded: a new address past the bound is 507 registry_full", () =>
    Effect.gen(function*() {
      const d = yield* startDiscovery({ maxPeers: 2 })
      yield* post(`${d.url}/register`, n1)
      yield* post(`${d.url}/register`, n2)
      const full = yield* post(`${d.url}/register`, { addr: "127.0.0.1:9003", httpAddr: "127.0.0.1:8013", nodeId: "n3" })
      expect(full).toMatchObject({ status: 507, json: { error: "registry_full" } })
      // re-registering a known address still works
      expect((yield* post(`${d.url}/register`, { ...n1, nodeId: "n1b" })).status).toBe(200)
      const peers = (yield* call(`${d.url}/peers`)).json as ReadonlyArray<{ nodeId: string }>
      expect(peers.map((p) => p.nodeId)).toEqual(["n1b", "n2"])
      // a freed slot can be taken
      yield* post(`${d.url}/deregister`, { addr: n2.addr })
      expect((yield* post(`${d.url}/register`, { addr: "127.0.0.1:9003", httpAddr: "127.0.0.1:8013", nodeId: "n3" })).status)
        .toBe(200)
    }))

  it.scopedLive("with a cluster key: 401 without or with a wrong key, 200 with it; /health is open", () =>
    Effect.gen(function*() {
      const d = yield* startDiscovery({ clusterKey: Option.some(key("s3cret")) })
      const auth = { authorization: "Bearer s3cret" }
      const wrong = { authorization: "Bearer s3cret2" }

      for (const headers of [{}, wrong, { authorization: "Bearer " }, { authorization: "s3cret" }]) {
        const res = yield* post(`${d.url}/register`, n1, headers)
        expect(res).toMatchObject({ status: 401, json: { error: "unauthorized" } })
        expect((yield* post(`${d.url}/heartbeat`, { addr: n1.addr }, headers)).status).toBe(401)
        expect((yield* post(`${d.url}/deregister`, { addr: n1.addr }, headers)).status).toBe(401)
        expect((yield* call(`${d.url}/peers`, { headers })).status).toBe(401)
      }
      expect(yield* d.registry.size).toBe(0)
      // a body that does not match the schema, without the key, is 401, not 400: auth first
      // (malformed JSON is answered 400 by ApiServer before any middleware runs)
      expect((yield* post(`${d.url}/register`, { addr: "nope" }, wrong)).status).toBe(401)
      expect((yield* post(`${d.url}/heartbeat`, {}, {})).status).toBe(401)

      expect((yield* post(`${d.url}/register`, n1, auth)).status).toBe(200)
      expect((yield* post(`${d.url}/heartbeat`, { addr: n1.addr }, auth)).status).toBe(200)
      const peers = yield* call(`${d.url}/peers`, { headers: auth })
      expect(peers.status).toBe(200)
      expect((peers.json as ReadonlyArray<unknown>).length).toBe(1)
      expect((yield* post(`${d.url}/deregister`, { addr: n1.addr }, auth)).status).toBe(200)
      expect((yield* call(`${d.url}/health`)).status).toBe(200)
      // the API description needs the key too
      for (const path of ["/openapi.json", "/docs"]) {
        expect((yield* call(`${d.url}${path}`, { headers: wrong })).status, path).toBe(401)
        expect((yield* call(`${d.url}${path}`)).status, path).toBe(401)
        expect((yield* call(`${d.url}${path}`, { headers: auth })).status, path).toBe(200)
      }
      // /metrics is open too, and carries the discovery metrics
      const metrics = yield* call(`${d.url}/metrics`)
      expect(metrics.status).toBe(200)
      expect(String(metrics.json)).toContain("dcounter_discovery_registered_peers")
      expect(String(metrics.json)).toContain("dcounter_discovery_unauthorized_total")
    }))

  it.scopedLive("serves /openapi.json (with the bearer scheme) and /docs", () =>
    Effect.gen(function*() {
      const d = yield* startDiscovery()
      const spec = yield* call(`${d.url}/openapi.json`)
      expect(spec.status).toBe(200)
      const doc = spec.json as {
        openapi: string
        paths: Record<string, unknown>
        components: { securitySchemes: Record<string, { type: string; scheme: string }> }
      }
      expect(doc.openapi).toMatch(/^3\./)
      expect(Object.keys(doc.paths).sort()).toEqual(["/deregister", "/health", "/heartbeat", "/livez", "/peers", "/readyz", "/register"])
      expect(Object.values(doc.components.securitySchemes)).toContainEqual(
        expect.objectContaining({ type: "http", scheme: "bearer" })
      )
      const docs = yield* call(`${d.url}/docs`)
      expect(docs.status).toBe(200)
      expect(docs.contentType).toContain("text/html")
    }))
})
