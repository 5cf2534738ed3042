import { describe, expect, it } from "../support/vitest.js"
import { Effect, Exit, FastCheck, Layer, Ref, Scope } from "effect"
import * as Http from "node:http"
import * as Net from "node:net"
import * as ApiServer from "../../src/http/ApiServer.js"
import { postStream, request } from "./client.js"
import { CountersLive, CountersStockLive, SampleApi, SampleStore } from "./SampleApi.js"

const json = { "content-type": "application/json" }

/** ApiServer with the sample API on an ephemeral port, in the current scope. */
const start = (options: Partial<ApiServer.Options> = {}) =>
  Effect.gen(function*() {
    const layer = ApiServer.layer(SampleApi, { addr: "127.0.0.1:0", ...options }).pipe(
      Layer.provide(CountersLive),
      Layer.provideMerge(SampleStore.layer)
    )
    const context = yield* Layer.build(layer)
    const server = yield* Effect.provide(ApiServer.ApiServer, context)
    const store = yield* Effect.provide(SampleStore, context)
    return { url: server.url, port: server.address.port, store }
  })

describe("ApiServer", () => {
  it.scopedLive("routes, decodes and encodes like the API says", () =>
    Effect.gen(function*() {
      const { url } = yield* start()
      const first = yield* request(`${url}/counter`)
      expect(first.status).toBe(200)
      expect(first.headers["content-type"]).toBe("application/json")
      expect(first.json).toEqual({ value: 0, nodeId: "n1" })

      const inc = yield* request(`${url}/increment`, { method: "POST", body: `{"by":2}`, headers: json })
      expect(inc.status).toBe(200)
      expect(inc.json).toEqual({ value: 2, nodeId: "n1" })

      const text = yield* request(`${url}/text`)
      expect(text.status).toBe(200)
      expect(text.headers["content-type"]).toMatch(/^text\/plain/)
      expect(text.text).toBe("plain text")

      const echo = yield* request(`${url}/echo?x=1`, {
        method: "POST",
        body: `{"a":[1,2]}`,
        headers: { ...json, "x-test": "yes" }
      })
      expect(echo.json).toEqual({ header: "yes", method: "POST", url: "/echo?x=1", body: { a: [1, 2] } })

      const created = yield* request(`${url}/created`, { method: "POST", body: `{"name":"a","value":1}`, headers: json })
      expect(created.status).toBe(201)
      expect(created.json).toEqual({ name: "a", value: 1 })
    }))

  it.scopedLive("accepts a missing or empty body when the payload fields are optional", () =>
    Effect.gen(function*() {
      const { url } = yield* start()
      const none = yield* request(`${url}/increment`, { method: "POST" })
      expect(none.status).toBe(200)
      expect(none.json).toEqual({ value: 1, nodeId: "n1" })
      const empty = yield* request(`${url}/increment`, { method: "POST", body: "", headers: json })
      expect(empty.status).toBe(200)
      expect(empty.json).toEqual({ value: 2, nodeId: "n1" })
      const required = yield* request(`${url}/created`, { method: "POST" })
      expect(required.status).toBe(400)
      expect(required.json).toMatchObject({ error: "bad_request" })
    }))

  it.scopedLive("decodes path and query parameters", () =>
    Effect.gen(function*() {
      const { url } = yield* start()
      const inc = yield* request(`${url}/counters/a.b:c-1/increment`, { method: "POST", body: `{"by":5}`, headers: json })
      expect(inc.status).toBe(200)
      expect(inc.json).toEqual({ name: "a.b:c-1", value: 5 })
      const read = yield* request(`${url}/counters/a.b%3Ac-1`)
      expect(read.status).toBe(200)
      expect(read.json).toEqual({ name: "a.b:c-1", value: 5 })
      const badName = yield* request(`${url}/counters/bad!name`)
      expect(badName.status).toBe(400)
      expect(badName.json).toMatchObject({ error: "bad_request" })
      expect((badName.json as { message: string }).message).toMatch(/^name must be /)
      const badEscape = yield* request(`${url}/counters/%E0%A4%A`)
      expect(badEscape.status).toBe(400)

      const many = yield* request(`${url}/search?q=hi&tag=a&tag=b`)
      expect(many.json).toEqual({ q: "hi", tags: ["a", "b"] })
      const one = yield* request(`${url}/search?q=hi&tag=a`)
      expect(one.json).toEqual({ q: "hi", tags: ["a"] })
      const missing = yield* request(`${url}/search?tag=a`)
      expect(missing.status).toBe(400)
      expect((missing.json as { message: string }).message).toMatch(/^query parameter q is missing$/)
    }))

  it.scopedLive("answers unknown routes 404 and wrong methods 405 with Allow", () =>
    Effect.gen(function*() {
      const { url } = yield* start()
      const notFound = yield* request(`${url}/nope`)
      expect(notFound.status).toBe(404)
      expect(notFound.json).toMatchObject({ error: "not_found" })
      const trailing = yield* request(`${url}/counter/`)
      expect(trailing.status).toBe(404)
      const wrong = yield* request(`${url}/counter`, { method: "POST" })
      expect(wrong.status).toBe(405)
      expect(wrong.headers["allow"]).toBe("GET, HEAD")
      expect(wrong.json).toMatchObject({ error: "method_not_allowed" })
      const twoMethods = yield* request(`${url}/counters/x`, { method: "PUT" })
      expect(twoMethods.status).toBe(405)
      expect(twoMethods.headers["allow"]).toBe("GET, HEAD, DELETE")
    }))

  it.scopedLive("answers HEAD like GET, with the GET body's length and no body", () =>
    Effect.gen(function*() {
      const { url, port } = yield* start({
        extraRoutes: [{
          method: "GET",
          path: "/page",
          handler: (_req, res) => ApiServer.writeJson(res, 200, { page: "dashboard" })
        }]
      })
      // endpoints (a success and a typed error), built-in and raw routes
      for (const path of ["/counter", "/counters/missing", "/openapi.json", "/metrics", "/page", "/docs"]) {
        const get = yield* request(`${url}${path}`)
        const head = yield* request(`${url}${path}`, { method: "HEAD" })
        expect(head.status, path).toBe(get.status)
        expect(head.headers["content-type"], path).toBe(get.headers["content-type"])
        expect(head.text, path).toBe("")
        if (path !== "/metrics") expect(head.headers["content-length"], path).toBe(String(Buffer.byteLength(get.text)))
        else expect(Number(head.headers["content-length"])).toBeGreaterThan(0)
      }
      expect((yield* request(`${url}/counters/missing`, { method: "HEAD" })).status).toBe(404)
      // HEAD is no way around a 404 or a 405; with GET, Allow lists HEAD
      expect((yield* request(`${url}/nope`, { method: "HEAD" })).status).toBe(404)
      const postOnly = yield* request(`${url}/increment`, { method: "HEAD" })
      expect(postOnly.status).toBe(405)
      expect(postOnly.headers["allow"]).toBe("POST")
      expect(postOnly.text).toBe("")

      // on the wire: the answer to HEAD ends with its headers, the next answer follows at once
      const raw = yield* Effect.async<string, Error>((resume) => {
        const socket = Net.connect(port, "127.0.0.1")
        const chunks: Array<Buffer> = []
        socket.on("data", (c: Buffer) => chunks.push(c))
        socket.on("end", () => resume(Effect.succeed(Buffer.concat(chunks).toString("latin1"))))
        socket.on("error", (e) => resume(Effect.fail(e)))
        socket.write(
          "HEAD /counter HTTP/1.1\r\nhost: x\r\n\r\n" +
            "GET /counter HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
        )
      }).pipe(Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("raw HEAD timed out") }))
      const body = JSON.stringify({ value: 0, nodeId: "n1" })
      const answers = raw.split(/(?=HTTP\/1\.1 )/)
      expect(answers).toHaveLength(2)
      expect(answers[0]).toMatch(/^HTTP\/1\.1 200 OK\r\n/)
      expect(answers[0]).toContain(`content-length: ${body.length}\r\n`)
      expect(answers[0]!.endsWith("\r\n\r\n")).toBe(true)
      expect(answers[1]!.endsWith(`\r\n\r\n${body}`)).toBe(true)
    }))

  it.scopedLive("answers HEAD on a platform route (a stock group) with the GET body's length", () =>
    Effect.gen(function*() {
      const context = yield* Layer.build(
        ApiServer.layer(SampleApi, { addr: "127.0.0.1:0" }).pipe(
          Layer.provide(CountersStockLive),
          Layer.provideMerge(SampleStore.layer)
        )
      )
      const { url } = yield* Effect.provide(ApiServer.ApiServer, context)
      for (const path of ["/counter", "/counters/missing"]) {
        const get = yield* request(`${url}${path}`)
        const head = yield* request(`${url}${path}`, { method: "HEAD" })
        expect(head.status, path).toBe(get.status)
        expect(head.headers["content-length"], path).toBe(String(Buffer.byteLength(get.text)))
        expect(head.text, path).toBe("")
      }
    }))

  it.scopedLive("answers bad bodies 400 with a message naming the problem, without calling the handler", () =>
    Effect.gen(function*() {
      const { store, url } = yield* start()
      const malformed = yield* request(`${url}/increment`, { method: "POST", body: `{"by":`, headers: json })
      expect(malformed.status).toBe(400)
      expect(malformed.json).toMatchObject({ error: "bad_request" })
      expect((malformed.json as { message: string }).message).toMatch(/malformed JSON/)
      for (const body of [`{"by":-1}`, `{"by":0}`, `{"by":1.5}`, `{"by":"2"}`, `[]`, `"x"`, `null`]) {
        const answer = yield* request(`${url}/increment`, { method: "POST", body, headers: json })
        expect(answer.status, body).toBe(400)
        expect(answer.json, body).toMatchObject({ error: "bad_request" })
      }
      const negative = yield* request(`${url}/increment`, { method: "POST", body: `{"by":-1}`, headers: json })
      expect((negative.json as { message: string }).message).toMatch(/^by must be /)
      expect(yield* Ref.get(store.seen)).toBe(0)
    }))

  it.scopedLive("answers bodies over the limit 413 without reading them", () =>
    Effect.gen(function*() {
      const { store, url } = yield* start()
      const declared = yield* request(`${url}/increment`, {
        method: "POST",
        body: `{"by":1,"pad":"${"x".repeat(70 * 1024)}"}`,
        headers: json
      })
      expect(declared.status).toBe(413)
      expect(declared.json).toMatchObject({ error: "payload_too_large" })
      expect(declared.headers["connection"]).toBe("close")
      const streamed = yield* postStream(`${url}/increment`, 1024 * 1024, { ...json, "transfer-encoding": "chunked" })
      expect(streamed.status).toBe(413)
      expect(JSON.parse(streamed.text)).toMatchObject({ error: "payload_too_large" })
      const small = yield* ApiServer.layer(SampleApi, { addr: "127.0.0.1:0", bodyLimit: 10 }).pipe(
        Layer.provide(CountersLive),
        Layer.provide(SampleStore.layer),
        Layer.build,
        Effect.flatMap((ctx) => Effect.provide(ApiServer.ApiServer, ctx))
      )
      const limited = yield* request(`${small.url}/increment`, { method: "POST", body: `{"by": 1000000}`, headers: json })
      expect(limited.status).toBe(413)
      expect(yield* Ref.get(store.seen)).toBe(0)
    }))

  it.scopedLive("maps typed errors to their annotated status and defects to 500", () =>
    Effect.gen(function*() {
      const { url } = yield* start()
      const conflict = yield* request(`${url}/conflict`, { method: "POST" })
      expect(conflict.status).toBe(409)
      expect(conflict.json).toEqual({ _tag: "Conflict", error: "conflict", message: "always conflicts" })
      const notFound = yield* request(`${url}/counters/missing`)
      expect(notFound.status).toBe(404)
      expect(notFound.json).toMatchObject({ error: "not_found" })
      const boom = yield* request(`${url}/boom`, { method: "POST" })
      expect(boom.status).toBe(500)
      expect(boom.json).toMatchObject({ error: "internal_error" })
      yield* request(`${url}/counters/gone/increment`, { method: "POST" })
      const removed = yield* request(`${url}/counters/gone`, { method: "DELETE" })
      expect(removed.status).toBe(204)
      expect(removed.text).toBe("")
      const again = yield* request(`${url}/counters/gone`, { method: "DELETE" })
      expect(again.status).toBe(404)
    }))

  it.scopedLive("serves an OpenAPI 3 document of the API", () =>
    Effect.gen(function*() {
      const { url } = yield* start()
      const answer = yield* request(`${url}/openapi.json`)
      expect(answer.status).toBe(200)
      const spec = answer.json as {
        openapi: string
        info: { title: string }
        paths: Record<string, Record<string, { responses: Record<string, unknown> }>>
      }
      expect(spec.openapi).toMatch(/^3\./)
      expect(spec.paths["/increment"]?.["post"]).toBeDefined()
      expect(spec.paths["/counters/{name}"]?.["get"]?.responses["404"]).toBeDefined()
      expect(spec.paths["/counters/{name}"]?.["delete"]).toBeDefined()
      expect(spec.paths["/conflict"]?.["post"]?.responses["409"]).toBeDefined()
    }))

  it.scopedLive("serves interactive docs whose assets come from the server itself", () =>
    Effect.gen(function*() {
      const { url } = yield* start()
      const page = yield* request(`${url}/docs`)
      expect(page.status).toBe(200)
      expect(page.headers["content-type"]).toMatch(/^text\/html/)
      const refs = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!)
      expect(refs.length).toBeGreaterThanOrEqual(3)
      for (const ref of refs) {
        expect(ref.startsWith("/"), ref).toBe(true)
        const asset = yield* request(`${url}${ref}`)
        expect(asset.status, ref).toBe(200)
        expect(asset.text.length, ref).toBeGreaterThan(50)
      }
      const js = yield* request(`${url}/docs/swagger-ui.js`)
      expect(js.text).toContain("SwaggerUIBundle")
      const init = yield* request(`${url}/docs/init.js`)
      expect(init.text).toContain("/openapi.json")
      const none = yield* request(`${url}/docs/nothing.js`)
      expect(none.status).toBe(404)
    }))

  it.scopedLive("serves Prometheus metrics that include its own request counts", () =>
    Effect.gen(function*() {
      const { url } = yield* start()
      yield* request(`${url}/increment`, { method: "POST" })
      yield* request(`${url}/nope`)
      const answer = yield* request(`${url}/metrics`)
      expect(answer.status).toBe(200)
      expect(answer.headers["content-type"]).toMatch(/^text\/plain; version=0\.0\.4/)
      const lines = answer.text.split("\n").filter((l) => l !== "")
      const sample = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? (-?[0-9.e+-]+|\+Inf|-Inf|NaN)$/
      for (const line of lines) {
        if (line.startsWith("# ")) expect(line, line).toMatch(/^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .*/)
        else expect(line, line).toMatch(sample)
      }
      const count = lines.find((l) =>
        l.startsWith(`dcounter_http_requests_total{method="POST",route="/increment",status="200"}`)
      )
      expect(count).toBeDefined()
      expect(Number(count!.split(" ")[1])).toBeGreaterThanOrEqual(1)
      expect(lines.some((l) => l.startsWith(`dcounter_http_requests_total{method="*",route="unmatched",status="404"}`)))
        .toBe(true)
      expect(lines.some((l) => l.startsWith("dcounter_http_request_duration_seconds_bucket{"))).toBe(true)
      expect(lines.some((l) => l.startsWith("process_resident_memory_bytes "))).toBe(true)
    }))

  it.scopedLive("keeps connections alive between requests", () =>
    Effect.gen(function*() {
      const { url } = yield* start()
      const agent = new Http.Agent({ keepAlive: true, maxSockets: 1 })
      yield* Effect.addFinalizer(() => Effect.sync(() => agent.destroy()))
      const answers = []
      for (let i = 0; i < 3; i++) answers.push(yield* request(`${url}/increment`, { method: "POST", agent }))
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200])
      expect(answers.map((a) => a.reusedSocket)).toEqual([false, true, true])
      expect(answers[2]!.headers["connection"]).toBe("keep-alive")
    }))

  it.scopedLive("serves extra raw routes", () =>
    Effect.gen(function*() {
      const { url } = yield* start({
        extraRoutes: [{
          method: "GET",
          path: "/",
          handler: (_req, res) => {
            res.writeHead(200, { "content-type": "text/html" })
            res.end("<h1>dashboard</h1>")
          }
        }, {
          method: "GET",
          path: "/hello/:who",
          handler: (_req, res, params) => ApiServer.writeJson(res, 200, { hello: params["who"] })
        }]
      })
      const page = yield* request(`${url}/`)
      expect(page.status).toBe(200)
      expect(page.text).toBe("<h1>dashboard</h1>")
      const hello = yield* request(`${url}/hello/w%20x`)
      expect(hello.json).toEqual({ hello: "w x" })
    }))

  it.live("closes gracefully: in-flight requests finish, then the port is free", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const { port, url } = yield* Scope.extend(start(), scope)
      const agent = new Http.Agent({ keepAlive: true })
      // an idle keep-alive connection, and a request in flight when the scope closes
      yield* request(`${url}/counter`, { agent })
      const idleSocketClosed = Effect.async<void>((resume) => {
        const sockets = Object.values(agent.freeSockets).flat()
        if (sockets.length === 0) return resume(Effect.void)
        let open = sockets.length
        for (const s of sockets) s?.once("close", () => --open === 0 && resume(Effect.void))
      })
      const slow = yield* Effect.fork(request(`${url}/slow`, { method: "POST" }))
      yield* Effect.sleep("50 millis")
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      const answer = yield* slow
      expect(answer.status).toBe(200)
      expect(answer.json).toEqual({ value: 0, nodeId: "slow" })
      expect(answer.headers["connection"]).toBe("close")
      yield* closing
      yield* idleSocketClosed.pipe(Effect.timeoutFail({ duration: "2 seconds", onTimeout: () => new Error("idle socket stayed open") }))
      agent.destroy()
      const refused = yield* Effect.either(request(`${url}/counter`))
      expect(refused._tag).toBe("Left")
      // the port can be bound again
      yield* Effect.async<void, Error>((resume) => {
        const probe = Net.createServer()
        probe.once("error", (e) => resume(Effect.fail(e)))
        probe.listen(port, "127.0.0.1", () => probe.close(() => resume(Effect.void)))
      })
    }))

  it.live("closes within the drain timeout when a request does not finish", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const { url } = yield* Scope.extend(start({ drainTimeout: "100 millis" }), scope)
      const slow = yield* Effect.fork(Effect.either(request(`${url}/slow`, { method: "POST" })))
      yield* Effect.sleep("50 millis")
      const started = Date.now()
      yield* Scope.close(scope, Exit.void)
      expect(Date.now() - started).toBeLessThan(1000)
      const outcome = yield* slow
      // the socket was closed under the request, or it got the shutdown answer
      if (outcome._tag === "Right") expect(outcome.right.status).toBe(503)
    }))

  it.live("fails to start on an address in use, with a clear error", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.scoped(
        Effect.gen(function*() {
          const { port } = yield* start()
          return yield* Effect.exit(Effect.scoped(start({ addr: `127.0.0.1:${port}` })))
        })
      )
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) expect(String(exit.cause)).toMatch(/cannot listen on 127\.0\.0\.1:\d+/)
    }))

  it.scopedLive("never answers garbage bodies with 5xx and never hands them to a handler", () =>
    Effect.gen(function*() {
      const { store, url } = yield* start()
      const agent = new Http.Agent({ keepAlive: true, maxSockets: 4 })
      yield* Effect.addFinalizer(() => Effect.sync(() => agent.destroy()))
      const bodies = FastCheck.oneof(
        FastCheck.string({ maxLength: 64 }),
        FastCheck.json({ maxDepth: 3 }),
        FastCheck.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify({ by: v })),
        FastCheck.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString("latin1"))
      )
      const contentTypes = FastCheck.constantFrom(
        "application/json",
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/octet-stream"
      )
      const paths = FastCheck.constantFrom("/increment", "/counters/c1/increment")
      yield* Effect.promise(() =>
        FastCheck.assert(
          FastCheck.asyncProperty(bodies, contentTypes, paths, async (body, contentType, path) => {
            const before = await Effect.runPromise(Ref.get(store.seen))
            const answer = await Effect.runPromise(
              request(`${url}${path}`, { method: "POST", body, headers: { "content-type": contentType }, agent })
            )
            const after = await Effect.runPromise(Ref.get(store.seen))
            if (answer.status !== 200 && answer.status !== 400) return false
            if (answer.status === 400 && (answer.json as { error?: string } | undefined)?.error !== "bad_request") return false
            return answer.status === 200 ? after === before + 1 : after === before
          }),
          { numRuns: 1000 }
        )
      )
    }), 60_000)
})
