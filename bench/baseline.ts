/**
 * The reference point of every HTTP benchmark: a bare `node:http` server holding an in-memory
 * counter, doing the minimum honest work per request (route by method and path, read the
 * body, parse and validate `{"by": N}`, answer JSON with a content length, keep-alive).
 *
 *   node dist/bench/baseline.js [port] [host]     # port 0 (default) picks a free port
 *
 * Prints `listening <host>:<port>` on stdout once it accepts connections, so a parent
 * process can read the port.
 *
 * `start(port, host, { commit })` is the same counter made durable the simplest way: each
 * POST waits for a minimal group commit (`makeGroupCommit`) before it is counted and
 * answered. It is the ceiling of a durable counter on node:http on this machine, which
 * the node's durable POST is compared with.
 */
import * as Fs from "node:fs"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import { pathToFileURL } from "node:url"

export interface GroupCommit {
  /** Queues one 16-byte record; `done` runs once it is durable. */
  readonly commit: (done: () => void) => void
  readonly close: () => void
}

/**
 * A minimal group commit: appends queue up while a batch is being written and
 * fdatasynced; the next batch starts when the previous one is durable. One 16-byte record
 * per append.
 */
export const makeGroupCommit = (file: string): GroupCommit => {
  const fd = Fs.openSync(file, "a")
  let pending: Array<() => void> = []
  let busy = false
  const flush = () => {
    busy = true
    const batch = pending
    pending = []
    const record = Buffer.alloc(16 * batch.length, 0x2a)
    Fs.write(fd, record, (writeError) => {
      if (writeError) throw writeError
      Fs.fdatasync(fd, (syncError) => {
        if (syncError) throw syncError
        for (const done of batch) done()
        busy = false
        if (pending.length > 0) flush()
      })
    })
  }
  return {
    commit: (done) => {
      pending.push(done)
      if (!busy) flush()
    },
    close: () => Fs.closeSync(fd)
  }
}

export interface BaselineServer {
  readonly port: number
  readonly close: () => Promise<void>
}

const json = (res: Http.ServerResponse, status: number, body: string): void => {
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body)
  })
  res.end(body)
}

/** Starts the baseline server; resolves once it listens. */
export const start = (
  port = 0,
  host = "127.0.0.1",
  options: { readonly commit?: GroupCommit["commit"] } = {}
): Promise<BaselineServer> => {
  const commit = options.commit ?? ((done: () => void) => done())
  let value = 0
  const nodeId = "baseline"
  const server = Http.createServer((req, res) => {
    const url = req.url ?? "/"
    if (req.method === "GET" && url === "/counter") {
      json(res, 200, JSON.stringify({ value, nodeId }))
      return
    }
    if (req.method === "POST" && url === "/increment") {
      const chunks: Array<Buffer> = []
      req.on("data", (chunk: Buffer) => chunks.push(chunk))
      req.on("end", () => {
        let by = 1
        if (chunks.length > 0) {
          try {
            const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString("utf8"))
            const candidate = typeof parsed === "object" && parsed !== null && "by" in parsed ? parsed.by : 1
            if (typeof candidate !== "number" || !Number.isSafeInteger(candidate) || candidate < 1) {
              json(res, 400, JSON.stringify({ error: "bad_request", message: "by must be a positive integer" }))
              return
            }
            by = candidate
          } catch {
            json(res, 400, JSON.stringify({ error: "bad_request", message: "malformed JSON" }))
            return
          }
        }
        commit(() => {
          value += by
          json(res, 200, JSON.stringify({ value, nodeId }))
        })
      })
      return
    }
    json(res, 404, JSON.stringify({ error: "not_found", message: "no such route" }))
  })
  server.keepAliveTimeout = 5_000
  return new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(port, host, () => {
      server.off("error", reject)
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done())
            server.closeAllConnections()
          })
      })
    })
  })
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href
if (isMain) {
  const port = Number(process.argv[2] ?? "0")
  const host = process.argv[3] ?? "127.0.0.1"
  start(port, host).then(
    (server) => {
      process.stdout.write(`listening ${host}:${server.port}\n`)
      const stop = () => void server.close().then(() => process.exit(0))
      process.once("SIGTERM", stop)
      process.once("SIGINT", stop)
    },
    (error: unknown) => {
      process.stderr.write(`baseline: cannot listen on ${host}:${port}: ${String(error)}\n`)
      process.exit(1)
    }
  )
}
