/** A stand-in for a node's HTTP API, with switchable failure modes, for gateway tests. */
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import { Effect } from "effect"

export type Mode =
  /** answers like a node */
  | "ok"
  /** reads a write, then drops the connection without answering (crash mid-request) */
  | "die-on-write"
  /** answers /health with 503 */
  | "unhealthy"
  /** has no POST /batch (404), like a node of an older version */
  | "no-batch"

export interface FakeNode {
  readonly addr: string
  readonly url: string
  /** writes that reached this node (whatever happened next), one per write of a batch */
  readonly writes: () => number
  /** `POST /batch` requests that reached this node */
  readonly batches: () => number
  /** TCP connections accepted so far */
  readonly connections: () => number
  /** the URLs of the `GET /counters` (listing) requests it answered, in order */
  readonly listings: () => ReadonlyArray<string>
  readonly value: () => number
  readonly setMode: (mode: Mode) => void
  /** stops listening and drops every connection: later connections are refused */
  readonly close: Effect.Effect<void>
}

/** Starts a fake node on a free port; it is closed with the scope. */
export const make = (id: string) =>
  Effect.acquireRelease(
    Effect.async<{ node: FakeNode; server: Http.Server }>((resume) => {
      let mode: Mode = "ok"
      let writes = 0
      let batches = 0
      let connections = 0
      const listings: Array<string> = []
      const counters = new Map<string, number>()
      const server = Http.createServer((req, res) => {
        const chunks: Array<Buffer> = []
        req.on("data", (c: Buffer) => chunks.push(c))
        req.on("end", () => {
          const send = (status: number, body: unknown) => {
            const text = JSON.stringify(body)
            res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) })
            res.end(text)
          }
          const url = req.url ?? "/"
          if (req.method === "POST" && url === "/batch" && mode !== "no-batch") {
            const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
              writes: ReadonlyArray<{ name: string; kind: "inc" | "dec"; by: number }>
            }
            batches++
            writes += body.writes.length
            if (mode === "die-on-write") {
              req.socket.destroy()
              return
            }
            const results = body.writes.map((w) => {
              const value = (counters.get(w.name) ?? 0) + (w.kind === "inc" ? w.by : -w.by)
              counters.set(w.name, value)
              return { value }
            })
            return send(200, { nodeId: id, results })
          }
          const write = /^\/(?:counters\/([^/]+)\/)?(increment|decrement)$/.exec(url)
          if (req.method === "POST" && write !== null) {
            writes++
            if (mode === "die-on-write") {
              req.socket.destroy()
              return
            }
            const text = Buffer.concat(chunks).toString("utf8")
            const by = text === "" ? 1 : (JSON.parse(text) as { by?: number }).by ?? 1
            const name = write[1] ?? "default"
            const value = (counters.get(name) ?? 0) + (write[2] === "increment" ? by : -by)
            counters.set(name, value)
            return send(200, write[1] === undefined ? { value, nodeId: id } : { name, value, nodeId: id })
          }
          if (url === "/health") return mode === "unhealthy" ? send(503, { error: "unhealthy", message: "no" }) : send(200, { status: "ok" })
          if (url === "/counter") return send(200, { value: counters.get("default") ?? 0, nodeId: id })
          if (url === "/counters" || url.startsWith("/counters?")) {
            // a page as the contract defines it, written out plainly (not the product's code)
            listings.push(url)
            const q = new URL(url, "http://fake").searchParams
            const limit = Number(q.get("limit") ?? "100")
            const after = q.get("after")
            const prefix = q.get("prefix") ?? ""
            const matching = [...counters.keys()].sort().filter((n) => n.startsWith(prefix) && (after === null || n > after))
            const page = matching.slice(0, limit).map((name) => ({ name, value: counters.get(name)! }))
            return send(200, matching.length > limit ? { counters: page, next: page[page.length - 1]!.name } : { counters: page })
          }
          const named = /^\/counters\/([^/]+)$/.exec(url)
          if (named !== null) return send(200, { name: named[1], value: counters.get(named[1]!) ?? 0, nodeId: id })
          send(404, { error: "not_found", message: url })
        })
      })
      server.on("connection", () => {
        connections++
      })
      server.listen(0, "127.0.0.1", () => {
        const port = (server.address() as AddressInfo).port
        const addr = `127.0.0.1:${port}`
        resume(Effect.succeed({
          server,
          node: {
            addr,
            url: `http://${addr}`,
            writes: () => writes,
            batches: () => batches,
            connections: () => connections,
            listings: () => [...listings],
            value: () => counters.get("default") ?? 0,
            setMode: (m) => {
              mode = m
            },
            close: Effect.async<void>((done) => {
              if (!server.listening) return done(Effect.void)
              server.close(() => done(Effect.void))
              server.closeAllConnections()
            })
          }
        }))
      })
    }),
    ({ node }) => node.close
  ).pipe(Effect.map(({ node }) => node))

/** A `host:port` where nothing listens (a server was bound there, then closed). */
export const deadAddr = Effect.async<string>((resume) => {
  const server = Http.createServer()
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as AddressInfo).port
    server.close(() => resume(Effect.succeed(`127.0.0.1:${port}`)))
  })
})
