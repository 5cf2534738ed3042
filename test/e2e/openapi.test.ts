/**
 * `/openapi.json` on every role against the server that serves it: a maintained linter
 * (Redocly's, with its recommended rules) finds nothing, and the real answers of every
 * route (success and each documented error) validate against the documented schema of
 * their status.
 */
import { createConfig, lintFromString } from "@redocly/openapi-core"
import { Ajv2020 } from "ajv/dist/2020.js"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as LocalCluster from "./LocalCluster.js"

interface Spec {
  readonly info: { readonly version: string }
  readonly paths: Record<string, Record<string, {
    readonly summary?: string
    readonly description?: string
    readonly requestBody?: { readonly required?: boolean }
    readonly responses: Record<string, { readonly content?: Record<string, { readonly schema: unknown }> }>
  }>>
  readonly components: Record<string, unknown>
}

const fetchSpec = (base: string) => Effect.promise(async () => (await (await fetch(`${base}/openapi.json`)).json()) as Spec)

const send = (url: string, method: string, body?: string) =>
  Effect.promise(async () => {
    const res = await fetch(url, {
      method,
      ...(body === undefined ? {} : { body, headers: { "content-type": "application/json" } })
    })
    return { status: res.status, body: JSON.parse(await res.text()) as unknown }
  })

/** Calls one route and checks the answer's status is documented and its body matches. */
const checker = (base: string, spec: Spec) => {
  const ajv = new Ajv2020({ strict: false, allErrors: true })
  ajv.addSchema({ $id: "spec", components: spec.components })
  const seen = new Set<string>()
  const check = (method: string, template: string, path: string, expected: number, body?: string) =>
    Effect.gen(function*() {
      const answer = yield* send(base + path, method.toUpperCase(), body)
      const where = `${method.toUpperCase()} ${path} ${body ?? ""}`
      expect(answer.status, `${where}: ${JSON.stringify(answer.body)}`).toBe(expected)
      const op = spec.paths[template]?.[method]
      expect(op, `${template} documented`).toBeDefined()
      const response = op!.responses[String(answer.status)]
      expect(response, `${where}: status ${answer.status} documented`).toBeDefined()
      const schema = response!.content?.["application/json"]?.schema
      expect(schema, `${where}: schema`).toBeDefined()
      const validate = ajv.compile(JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"spec#/components/')))
      expect(validate(answer.body), `${where}: ${JSON.stringify(answer.body)} ${ajv.errorsText(validate.errors)}`).toBe(true)
      seen.add(`${method} ${template}`)
    })
  return { check, seen }
}

const lint = (spec: Spec, name: string) =>
  Effect.promise(async () => {
    const config = await createConfig({ extends: ["recommended"] })
    const problems = await lintFromString({ source: JSON.stringify(spec), absoluteRef: `/${name}.json`, config })
    return problems.map((p) => `${p.severity} ${p.ruleId}: ${p.message} at ${p.location[0]?.pointer ?? "?"}`)
  })

/** Every operation of the spec was called at least once. */
const everyOperation = (spec: Spec, seen: ReadonlySet<string>) =>
  Object.entries(spec.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${path}`)).filter((op) => !seen.has(op))

describe("OpenAPI", () => {
  it.scopedLive("every role: the linter passes and every answer matches the document", () =>
    Effect.gen(function*() {
      const cluster = yield* LocalCluster.start({ nodes: 2 })
      const node = `http://${cluster.nodes[0]!.http}`
      const version = (JSON.parse(yield* Effect.promise(() => import("node:fs/promises").then((fs) => fs.readFile("package.json", "utf8")))) as { version: string }).version

      for (const [name, base] of [["node", node], ["gateway", cluster.gateway], ["discovery", cluster.discovery]] as const) {
        const spec = yield* fetchSpec(base)
        expect(yield* lint(spec, name), name).toEqual([])
        expect(spec.info.version).toBe(version)
        expect(JSON.stringify(spec)).not.toContain("HttpApiDecodeError")
        for (const [path, ops] of Object.entries(spec.paths)) {
          for (const [method, op] of Object.entries(ops)) {
            expect(op.summary, `${name} ${method} ${path}`).toBeTruthy()
            expect(op.description, `${name} ${method} ${path}`).toBeTruthy()
            if (op.requestBody !== undefined && /crement$/.test(path)) expect(op.requestBody.required).toBe(false)
          }
        }
      }

      const nodeSpec = yield* fetchSpec(node)
      const n = checker(node, nodeSpec)
      yield* n.check("post", "/increment", "/increment", 200)
      yield* n.check("post", "/increment", "/increment", 400, '{"by":0}')
      yield* n.check("post", "/decrement", "/decrement", 200, '{"by":2}')
      yield* n.check("post", "/decrement", "/decrement", 400, '{"by":"x"}')
      yield* n.check("get", "/counter", "/counter", 200)
      yield* n.check("get", "/local-counter", "/local-counter", 200)
      yield* n.check("get", "/state", "/state", 200)
      yield* n.check("get", "/counters", "/counters", 200)
      // by recency: the parameter is documented, its answers and refusals match
      const orderParam = (nodeSpec.paths["/counters"]?.["get"] as unknown as { parameters: Array<{ name: string; schema: unknown }> })
        .parameters.find((p) => p.name === "order")
      expect(JSON.stringify(orderParam?.schema)).toContain("recent")
      yield* n.check("get", "/counters", "/counters?order=recent&limit=1", 200)
      yield* n.check("get", "/counters", "/counters?order=newest", 400)
      yield* n.check("get", "/counters", "/counters?order=recent&after=x", 400)
      const other = `http://${cluster.nodes[1]!.http}`
      for (const name of ["r1", "r2"]) yield* send(`${other}/counters/${name}/increment`, "POST")
      const otherPage = (yield* send(`${other}/counters?order=recent&limit=1`, "GET")).body as { next?: string }
      expect(otherPage.next).toMatch(/^r\./)
      // a cursor another node issued: 503, so that the gateway asks the other nodes
      yield* n.check("get", "/counters", `/counters?order=recent&after=${otherPage.next}`, 503)
      yield* n.check("get", "/counters/{name}", "/counters/x", 200)
      yield* n.check("get", "/counters/{name}", "/counters/a%20b", 400)
      yield* n.check("post", "/counters/{name}/increment", "/counters/big/increment", 200, `{"by":${Number.MAX_SAFE_INTEGER}}`)
      yield* n.check("post", "/counters/{name}/increment", "/counters/big/increment", 400, '{"by":1}')
      yield* n.check("post", "/counters/{name}/decrement", "/counters/x/decrement", 200)
      yield* n.check("post", "/counters/{name}/decrement", "/counters/x/decrement", 413, JSON.stringify({ by: 1, pad: "x".repeat(70_000) }))
      yield* n.check("get", "/peers", "/peers", 200)
      yield* n.check("get", "/health", "/health", 200)
      yield* n.check("post", "/batch", "/batch", 200, '{"writes":[{"name":"x","kind":"inc","by":1},{"name":"y","kind":"dec","by":2}]}')
      yield* n.check("post", "/batch", "/batch", 400, '{"writes":[{"name":"x","kind":"add","by":1}]}')
      yield* n.check("get", "/livez", "/livez", 200)
      yield* n.check("get", "/readyz", "/readyz", 200)
      expect(everyOperation(nodeSpec, n.seen)).toEqual([])

      const discoverySpec = yield* fetchSpec(cluster.discovery)
      const d = checker(cluster.discovery, discoverySpec)
      const me = JSON.stringify({ addr: "127.0.0.1:1", httpAddr: "127.0.0.1:2", nodeId: "test" })
      yield* d.check("post", "/register", "/register", 200, me)
      yield* d.check("post", "/register", "/register", 400, "{}")
      yield* d.check("post", "/heartbeat", "/heartbeat", 200, '{"addr":"127.0.0.1:1"}')
      yield* d.check("post", "/heartbeat", "/heartbeat", 404, '{"addr":"127.0.0.1:3"}')
      yield* d.check("get", "/peers", "/peers", 200)
      yield* d.check("post", "/deregister", "/deregister", 200, '{"addr":"127.0.0.1:1"}')
      yield* d.check("get", "/health", "/health", 200)
      yield* d.check("get", "/livez", "/livez", 200)
      yield* d.check("get", "/readyz", "/readyz", 200)
      expect(everyOperation(discoverySpec, d.seen)).toEqual([])

      const gatewaySpec = yield* fetchSpec(cluster.gateway)
      const g = checker(cluster.gateway, gatewaySpec)
      yield* g.check("post", "/increment", "/increment", 200)
      yield* g.check("post", "/increment", "/increment", 400, '{"by":-1}')
      yield* g.check("post", "/decrement", "/decrement", 200, '{"by":1}')
      yield* g.check("get", "/counter", "/counter", 200)
      yield* g.check("get", "/counters", "/counters", 200)
      yield* g.check("get", "/counters", "/counters?order=recent&limit=1", 200)
      yield* g.check("get", "/counters", "/counters?order=newest", 400)
      // the node that issued a cursor is found whichever node the gateway asks first
      for (let i = 0; i < 4; i++) {
        const first = (yield* send(`${cluster.gateway}/counters?order=recent&limit=1`, "GET")).body as { next?: string; node: string }
        expect(first.next).toMatch(/^r\./)
        const second = (yield* send(`${cluster.gateway}/counters?order=recent&limit=1&after=${first.next}`, "GET")).body as {
          counters: Array<unknown>
          node: string
        }
        expect(second.node).toBe(first.node)
        expect(second.counters).toHaveLength(1)
      }
      yield* g.check("get", "/counters/{name}", "/counters/x", 200)
      yield* g.check("get", "/counters/{name}", "/counters/a%20b", 400)
      yield* g.check("post", "/counters/{name}/increment", "/counters/x/increment", 200)
      yield* g.check("post", "/counters/{name}/decrement", "/counters/x/decrement", 200)
      yield* g.check("get", "/nodes", "/nodes", 200)
      yield* g.check("get", "/health", "/health", 200)
      yield* g.check("get", "/livez", "/livez", 200)
      yield* g.check("get", "/readyz", "/readyz", 200)
      // no node left: 503s
      for (const nodeProcess of cluster.nodes) nodeProcess.child.kill("SIGKILL")
      for (const nodeProcess of cluster.nodes) yield* nodeProcess.child.exited
      yield* g.check("post", "/counters/{name}/increment", "/counters/x/increment", 503)
      yield* LocalCluster.waitUntil(
        Effect.map(send(`${cluster.gateway}/health`, "GET"), (a) => a.status === 503),
        "30 seconds",
        "the gateway sees no healthy node"
      )
      yield* g.check("get", "/health", "/health", 503)
      yield* g.check("get", "/counter", "/counter", 503)
      yield* g.check("get", "/readyz", "/readyz", 503)
      expect(everyOperation(gatewaySpec, g.seen)).toEqual([])
    }), { timeout: 240_000 })
})
