/**
 * The request id: a sane `X-Request-Id` is echoed and put in the log lines written while
 * handling the request; a request without one gets one made when a line is logged about
 * it (in the line and the response), and none at all when nothing is logged.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as ApiServer from "../../src/http/ApiServer.js"
import * as Logging from "../../src/observability/Logging.js"
import { request } from "./client.js"
import { CountersLive, SampleApi, SampleStore } from "./SampleApi.js"

interface Line {
  readonly level: string
  readonly message: string
  readonly annotations: Record<string, unknown>
}

/** The sample API under a JSON logger at `level` whose lines are kept. */
const start = (level: Logging.Level) =>
  Effect.gen(function*() {
    const lines: Array<Line> = []
    const logging = Logging.layer({ level, format: "json", sink: (l) => lines.push(JSON.parse(l) as Line) })
    const layer = ApiServer.layer(SampleApi, { addr: "127.0.0.1:0" }).pipe(
      Layer.provide(CountersLive),
      Layer.provideMerge(SampleStore.layer)
    )
    const context = yield* Layer.build(layer).pipe(Effect.provide(logging))
    const server = yield* Effect.provide(ApiServer.ApiServer, context)
    return { url: server.url, lines }
  })

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

describe("request id", () => {
  it.scopedLive("a failing request's error line carries the id it sent, echoed in the response", () =>
    Effect.gen(function*() {
      const { url, lines } = yield* start("info")
      const boom = yield* request(`${url}/boom`, { method: "POST", headers: { "x-request-id": "client-42" } })
      expect(boom.status).toBe(500)
      expect(boom.headers["x-request-id"]).toBe("client-42")
      const line = lines.find((l) => l.level === "error")
      expect(line?.annotations).toMatchObject({ requestId: "client-42" })
    }))

  it.scopedLive("without one, the id is made for the line and sent in the response", () =>
    Effect.gen(function*() {
      const { url, lines } = yield* start("info")
      const boom = yield* request(`${url}/boom`, { method: "POST" })
      expect(boom.status).toBe(500)
      const id = boom.headers["x-request-id"]
      expect(id).toMatch(UUID)
      expect(lines.find((l) => l.level === "error")?.annotations["requestId"]).toBe(id)
    }))

  it.scopedLive("an id that is not a sane token is neither echoed nor logged", () =>
    Effect.gen(function*() {
      const { url, lines } = yield* start("info")
      const boom = yield* request(`${url}/boom`, { method: "POST", headers: { "x-request-id": "a b <script>" } })
      expect(boom.headers["x-request-id"]).toMatch(UUID)
      expect(lines.find((l) => l.level === "error")?.annotations["requestId"]).toBe(boom.headers["x-request-id"])
    }))

  it.scopedLive("at debug, a refused request is a line with its id; at info, none", () =>
    Effect.gen(function*() {
      const debug = yield* start("debug")
      const refused = yield* request(`${debug.url}/counters/bad!name`, { headers: { "x-request-id": "r-1" } })
      expect(refused.status).toBe(400)
      expect(refused.headers["x-request-id"]).toBe("r-1")
      const line = debug.lines.find((l) => l.annotations["requestId"] === "r-1")
      expect(line).toMatchObject({ level: "debug", annotations: { status: 400 } })
      expect(line!.message).toContain("answered 400")
      const conflict = yield* request(`${debug.url}/conflict`, { method: "POST" })
      expect(conflict.headers["x-request-id"]).toMatch(UUID)
      expect(debug.lines.some((l) => l.annotations["requestId"] === conflict.headers["x-request-id"])).toBe(true)

      const info = yield* start("info")
      const quiet = yield* request(`${info.url}/counters/bad!name`)
      expect(quiet.status).toBe(400)
      expect(quiet.headers["x-request-id"]).toBeUndefined()
      expect(info.lines.filter((l) => l.annotations["requestId"] !== undefined)).toEqual([])
    }))

  it.scopedLive("a request nothing is logged about gets no id made; one it sent is echoed", () =>
    Effect.gen(function*() {
      const { url, lines } = yield* start("debug")
      const plain = yield* request(`${url}/counter`)
      expect(plain.status).toBe(200)
      expect(plain.headers["x-request-id"]).toBeUndefined()
      const given = yield* request(`${url}/counter`, { headers: { "x-request-id": "abc.DEF_1" } })
      expect(given.headers["x-request-id"]).toBe("abc.DEF_1")
      expect(lines.filter((l) => l.annotations["requestId"] !== undefined)).toEqual([])
    }))
})
