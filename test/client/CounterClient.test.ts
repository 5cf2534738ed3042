/**
 * The shell client's HTTP side against small fake servers: it follows the listing's `next`
 * pages, works with a server that returns every counter at once (no paging, no prefix),
 * and tells a refusal from a dead address.
 */
import * as Http from "node:http"
import { describe, expect, it } from "../support/vitest.js"
import { Effect } from "effect"
import * as CounterClient from "../../src/client/CounterClient.js"

const counters = Array.from({ length: 25 }, (_, i) => ({ name: `c${String(i).padStart(2, "0")}`, value: i }))

/** A server on a free loopback port answering with `handler`; closed with the scope. */
const serve = (handler: (url: URL) => { status: number; body: unknown }) =>
  Effect.acquireRelease(
    Effect.async<{ server: Http.Server; url: string; seen: Array<string> }>((resume) => {
      const seen: Array<string> = []
      const server = Http.createServer((req, res) => {
        const url = new URL(req.url ?? "/", "http://x")
        seen.push(url.pathname + url.search)
        const { body, status } = handler(url)
        res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body))
      })
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        resume(Effect.succeed({ server, url: `http://127.0.0.1:${port}`, seen }))
      })
    }),
    ({ server }) => Effect.async<void>((resume) => {
      server.closeAllConnections()
      server.close(() => resume(Effect.void))
    })
  )

const list = (url: string, prefix?: string) =>
  Effect.flatMap(CounterClient.CounterClient, (c) => c.list(prefix)).pipe(Effect.provide(CounterClient.layer({ url })))

describe("CounterClient", () => {
  it.scopedLive("follows next pages, passing limit, after and prefix", () =>
    Effect.gen(function*() {
      const pageSize = 10
      const fake = yield* serve((url) => {
        const after = url.searchParams.get("after")
        const prefix = url.searchParams.get("prefix") ?? ""
        const matching = counters.filter((c) => c.name.startsWith(prefix) && (after === null || c.name > after))
        const page = matching.slice(0, pageSize)
        return {
          status: 200,
          body: matching.length > pageSize ? { counters: page, next: page[page.length - 1]!.name } : { counters: page }
        }
      })
      expect(yield* list(fake.url)).toEqual(counters)
      expect(fake.seen).toEqual([
        "/counters?limit=1000",
        "/counters?limit=1000&after=c09",
        "/counters?limit=1000&after=c19"
      ])
      expect(yield* list(fake.url, "c1")).toEqual(counters.slice(10, 20))
    }))

  it.scopedLive("a server without paging: one answer, the prefix applied here", () =>
    Effect.gen(function*() {
      const fake = yield* serve(() => ({ status: 200, body: { counters, node: "n" } }))
      expect(yield* list(fake.url, "c2")).toEqual(counters.slice(20))
      expect(fake.seen).toHaveLength(1)
    }))

  it.scopedLive("a next that does not move forward ends the listing", () =>
    Effect.gen(function*() {
      const fake = yield* serve(() => ({ status: 200, body: { counters: counters.slice(0, 2), next: "c01" } }))
      expect(yield* list(fake.url)).toHaveLength(4)
      expect(fake.seen).toHaveLength(2)
    }))

  it.scopedLive("refused (exit 1) with the server's message; nothing answering (exit 3); not dcounter (exit 1)", () =>
    Effect.gen(function*() {
      const fake = yield* serve((url) =>
        url.pathname === "/counter"
          ? { status: 503, body: { error: "no_healthy_node", message: "no node can serve" } }
          : { status: 200, body: { hello: "world" } }
      )
      const get = (url: string) =>
        Effect.flatMap(CounterClient.CounterClient, (c) => c.get(undefined)).pipe(
          Effect.provide(CounterClient.layer({ url })),
          Effect.flip
        )
      const refused = yield* get(fake.url)
      expect(refused.reason).toBe("Refused")
      expect(refused.exitCode).toBe(1)
      expect(refused.message).toBe(`GET ${fake.url}/counter: 503 no_healthy_node: no node can serve`)
      const gone = yield* get("http://127.0.0.1:1")
      expect(gone.reason).toBe("Unreachable")
      expect(gone.exitCode).toBe(3)
      const other = yield* Effect.flatMap(CounterClient.CounterClient, (c) => c.get("x")).pipe(
        Effect.provide(CounterClient.layer({ url: fake.url })),
        Effect.flip
      )
      expect(other.reason).toBe("BadAnswer")
      expect(other.exitCode).toBe(1)
    }))
})
