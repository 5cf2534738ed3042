/**
 * Hostile HTTP input against a node, the gateway and discovery: malformed JSON, wrong
 * types, bad `by` values, invalid counter names, oversized bodies and headers, broken
 * chunked encoding, slow clients. Each must get its documented 4xx (JSON error body where
 * the application answers), the state must not change, and the server must stay fast.
 */
import * as net from "node:net"
import type { Service } from "./Cluster.js"
import { type HttpResult, request } from "./Http.js"
import { sleep } from "./Proc.js"
import type { Summary } from "./Summary.js"

export interface HostileCase {
  readonly name: string
  readonly method: string
  readonly path: string
  readonly body?: string | Buffer
  readonly headers?: Record<string, string | number>
  /** acceptable statuses */
  readonly expect: ReadonlyArray<number>
  /** the answer must be the contract's JSON error (false for errors from the HTTP parser) */
  readonly jsonError?: boolean
}

const json = (v: unknown): string => JSON.stringify(v)

/** Bodies and paths that must be refused by any increment/decrement route. */
export const writeCases = (prefix: string): Array<HostileCase> => {
  const routes = [`${prefix}/increment`, `${prefix}/decrement`, `${prefix}/counters/hostile/increment`, `${prefix}/counters/hostile/decrement`]
  const bodies: Array<[string, string | Buffer]> = [
    ["truncated JSON", "{"],
    ["not JSON", "by=5"],
    ["trailing garbage", '{"by": 1} x'],
    ["by as a string", json({ by: "5" })],
    ["by as a numeric string with spaces", '{"by": " 7 "}'],
    ["by = 0", json({ by: 0 })],
    ["by negative", json({ by: -3 })],
    ["by fractional", json({ by: 1.5 })],
    ["by = 2^60", '{"by": 1152921504606846976}'],
    ["by = 2^53", '{"by": 9007199254740992}'],
    ["by = 1e400 (infinite)", '{"by": 1e400}'],
    ["by null", json({ by: null })],
    ["by true", json({ by: true })],
    ["by an object", json({ by: { $gt: 1 } })],
    ["by an array", json({ by: [1] })],
    ["body an array", json([1])],
    ["body a number", "42"],
    ["body a string", json("by")],
    ["body null", "null"],
    ["invalid UTF-8", Buffer.from([0x7b, 0x22, 0x62, 0x79, 0x22, 0x3a, 0xff, 0xfe, 0x7d])],
    ["NUL bytes", Buffer.from('{"by":\u0000 1}')]
  ]
  const cases: Array<HostileCase> = []
  for (const [i, route] of routes.entries()) {
    for (const [name, body] of bodies) {
      // every body on the first route, a sample on the others
      if (i > 0 && !["truncated JSON", "by = 0", "by negative", "by = 2^60", "by as a string"].includes(name)) continue
      cases.push({ name: `POST ${route} ${name}`, method: "POST", path: route, body, expect: [400], jsonError: true })
    }
  }
  const badNames = [
    ["129 characters", "a".repeat(129)],
    ["a space", "bad%20name"],
    ["a slash", "a%2Fb"],
    ["non-ASCII", "%C3%A9t%C3%A9"],
    ["a star", "likes*"],
    ["a quote", "x%22y"],
    ["percent-encoded NUL", "x%00y"],
    ["dot-dot traversal", "..%2F..%2Fetc"]
  ] as const
  for (const [why, name] of badNames) {
    cases.push({ name: `POST counter name with ${why}`, method: "POST", path: `${prefix}/counters/${name}/increment`, expect: [400, 404], jsonError: true })
    cases.push({ name: `GET counter name with ${why}`, method: "GET", path: `${prefix}/counters/${name}`, expect: [400, 404], jsonError: true })
  }
  cases.push(
    { name: "GET unknown route", method: "GET", path: `${prefix}/nope`, expect: [404], jsonError: true },
    { name: "GET /increment (wrong method)", method: "GET", path: `${prefix}/increment`, expect: [405, 404], jsonError: true },
    { name: "DELETE /counter (wrong method)", method: "DELETE", path: `${prefix}/counter`, expect: [405, 404], jsonError: true },
    { name: "PUT /counters/x/increment (wrong method)", method: "PUT", path: `${prefix}/counters/x/increment`, body: json({ by: 1 }), expect: [405, 404], jsonError: true },
    {
      name: "POST 70 KB JSON body",
      method: "POST",
      path: `${prefix}/increment`,
      body: json({ by: 1, pad: "x".repeat(70_000) }),
      expect: [413],
      jsonError: true
    },
    {
      name: "POST content-length 10 MB, header only",
      method: "POST",
      path: `${prefix}/counters/hostile/increment`,
      headers: { "content-length": 10 * 1024 * 1024, "content-type": "application/json" },
      body: Buffer.alloc(0),
      expect: [413],
      jsonError: true
    },
    {
      name: "POST 100 KB header",
      method: "POST",
      path: `${prefix}/increment`,
      headers: { "x-pad": "y".repeat(100_000) },
      body: json({ by: 1 }),
      expect: [431, 400, 413],
      jsonError: false
    }
  )
  return cases
}

/** A body sent in full: a 10 MB JSON that would be valid if the server read it all. */
export const tenMegabytes = (): Buffer => Buffer.from(json({ by: 1, pad: "z".repeat(10 * 1024 * 1024) }))

export interface CaseResult {
  readonly c: HostileCase
  readonly r: HttpResult
  readonly ok: boolean
  readonly why: string
}

export const runCase = async (target: Service, c: HostileCase): Promise<CaseResult> => {
  const r = await request({
    host: target.host,
    port: target.httpPort,
    method: c.method,
    path: c.path,
    ...(c.body === undefined ? {} : { body: c.body }),
    ...(c.headers === undefined ? {} : { headers: c.headers }),
    timeoutMs: 5000
  })
  if (r.kind === "failure") {
    return { c, r, ok: false, why: `no answer: ${r.code} ${r.message}` }
  }
  if (!c.expect.includes(r.status)) return { c, r, ok: false, why: `status ${r.status}, expected ${c.expect.join("|")}: ${r.text.slice(0, 200)}` }
  if (c.jsonError === true) {
    const b = r.json as { error?: unknown; message?: unknown } | undefined
    if (typeof b?.error !== "string" || typeof b.message !== "string") {
      return { c, r, ok: false, why: `status ${r.status} without the JSON error body: ${r.text.slice(0, 200)}` }
    }
  }
  return { c, r, ok: true, why: "" }
}

/** Raw bytes on a socket; resolves with whatever came back before close or the deadline. */
export const rawExchange = (host: string, port: number, bytes: Buffer, timeoutMs: number): Promise<string> =>
  new Promise((resolve) => {
    const s = net.connect({ host, port })
    let out = ""
    const finish = () => {
      clearTimeout(t)
      s.destroy()
      resolve(out)
    }
    const t = setTimeout(finish, timeoutMs)
    s.on("data", (c: Buffer) => {
      out += c.toString("latin1")
    })
    s.on("error", finish)
    s.on("close", finish)
    s.write(bytes)
  })

/** Broken chunked bodies: the parser must answer 400 (or close), never count anything. */
export const rawCases = (prefix: string): Array<{ name: string; bytes: Buffer }> => [
  {
    name: "invalid chunk size",
    bytes: Buffer.from(`POST ${prefix}/increment HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n{"by":1}\r\n0\r\n\r\n`)
  },
  {
    name: "both content-length and chunked (smuggling)",
    bytes: Buffer.from(
      `POST ${prefix}/increment HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n8\r\n{"by":1}\r\n0\r\n\r\n`
    )
  },
  { name: "garbage request line", bytes: Buffer.from("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n", "latin1") }
]

/**
 * A 10 MB body written on a raw socket while reading: a server may answer 413 and close
 * before the body is sent, which a normal client reports as EPIPE without the answer.
 */
export const bigBody = (host: string, port: number, path: string, timeoutMs: number): Promise<{ status: string | undefined; head: string; sent: number }> =>
  new Promise((resolve) => {
    const s = net.connect({ host, port })
    let out = ""
    let sent = 0
    let done = false
    const finish = () => {
      if (done) return
      done = true
      clearTimeout(t)
      s.destroy()
      resolve({ status: /^HTTP\/1\.[01] (\d{3})/.exec(out)?.[1], head: out.slice(0, 200), sent })
    }
    const t = setTimeout(finish, timeoutMs)
    const body = tenMegabytes()
    s.on("data", (c: Buffer) => {
      out += c.toString("latin1")
      if (/\r\n\r\n/.test(out)) finish()
    })
    s.on("error", () => setTimeout(finish, 200))
    s.on("close", () => setTimeout(finish, 200))
    s.on("connect", async () => {
      s.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`)
      for (let at = 0; at < body.length && !done && !s.destroyed; at += 64 * 1024) {
        const chunk = body.subarray(at, at + 64 * 1024)
        sent += chunk.length
        if (!s.write(chunk)) await new Promise((r) => s.once("drain", r))
      }
    })
  })

/**
 * Slow clients: `conns` connections that send a request line and headers (or a partial
 * body) one byte at a time, for `holdMs`, then are dropped. Returns the latencies of normal
 * GETs made meanwhile.
 */
export const slowloris = async (
  target: Service,
  path: string,
  conns: number,
  holdMs: number
): Promise<{ latencies: Array<number>; failures: number; opened: number }> => {
  const sockets: Array<net.Socket> = []
  let opened = 0
  // half send their headers and trickle a body that never completes (64 bytes declared),
  // half trickle a header line that never ends
  const partial = [
    `POST ${path} HTTP/1.1\r\nHost: slow\r\nContent-Type: application/json\r\nContent-Length: 64\r\n\r\n{"by": 1, "pad": "`,
    `GET ${path} HTTP/1.1\r\nHost: slow\r\nX-Slow: `
  ]
  const stop = Date.now() + holdMs
  for (let i = 0; i < conns; i++) {
    const s = net.connect({ host: target.host, port: target.httpPort })
    s.on("error", () => undefined)
    s.on("connect", () => {
      opened++
      s.write(partial[i % partial.length]!)
    })
    sockets.push(s)
  }
  const trickle = (async () => {
    // at most 40 bytes in holdMs <= 8s: the body stays short of its 64 declared bytes
    for (let k = 0; k < 40 && Date.now() < stop; k++) {
      for (const s of sockets) if (!s.destroyed && !s.connecting) s.write("a")
      await sleep(Math.max(200, Math.floor(holdMs / 40)))
    }
  })()
  const latencies: Array<number> = []
  let failures = 0
  while (Date.now() < stop) {
    const r = await request({ host: target.host, port: target.httpPort, path: "/health", timeoutMs: 3000 })
    if (r.kind === "answer" && r.status === 200) latencies.push(r.ms)
    else failures++
    await sleep(100)
  }
  await trickle
  for (const s of sockets) s.destroy()
  return { latencies, failures, opened }
}

/** N sequential GETs; returns latencies of those answered 200. */
export const latencyProbe = async (target: Service, path: string, n: number): Promise<{ ms: Array<number>; failures: number }> => {
  const ms: Array<number> = []
  let failures = 0
  for (let i = 0; i < n; i++) {
    const r = await request({ host: target.host, port: target.httpPort, path, timeoutMs: 3000 })
    if (r.kind === "answer" && r.status === 200) ms.push(r.ms)
    else failures++
  }
  return { ms, failures }
}

export const percentile = (xs: ReadonlyArray<number>, p: number): number => {
  if (xs.length === 0) return Number.NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!
}

export const recordCases = (summary: Summary, area: string, results: ReadonlyArray<CaseResult>): void => {
  for (const res of results) summary.check(area, res.c.name, res.ok, res.why)
}

export const DISCOVERY_CASES: ReadonlyArray<HostileCase> = [
  { name: "discovery POST /register truncated JSON", method: "POST", path: "/register", body: "{", expect: [400], jsonError: true },
  { name: "discovery POST /register missing fields", method: "POST", path: "/register", body: json({ addr: "127.0.0.1:1" }), expect: [400], jsonError: true },
  {
    name: "discovery POST /register bad address",
    method: "POST",
    path: "/register",
    body: json({ addr: "not an address", httpAddr: "x", nodeId: "n" }),
    expect: [400],
    jsonError: true
  },
  {
    name: "discovery POST /register wrong types",
    method: "POST",
    path: "/register",
    body: json({ addr: 5, httpAddr: [], nodeId: null }),
    expect: [400],
    jsonError: true
  },
  { name: "discovery POST /heartbeat not JSON", method: "POST", path: "/heartbeat", body: "addr=x", expect: [400], jsonError: true },
  { name: "discovery POST /deregister body an array", method: "POST", path: "/deregister", body: "[]", expect: [400], jsonError: true },
  { name: "discovery GET unknown route", method: "GET", path: "/nope", expect: [404], jsonError: true },
  {
    name: "discovery POST /register 70 KB body",
    method: "POST",
    path: "/register",
    body: json({ addr: "127.0.0.1:1", httpAddr: "127.0.0.1:2", nodeId: "x".repeat(70_000) }),
    expect: [400, 413],
    jsonError: true
  }
]

export interface HostileTargets {
  readonly node: Service
  readonly gateway: Service | undefined
  readonly discovery: Service | undefined
}

/** Runs every hostile case; records one check per case and per property in `summary`. */
export const runHostileHttp = async (t: HostileTargets, summary: Summary, area: string): Promise<number> => {
  let sent = 0
  const targets: Array<Service> = [t.node, ...(t.gateway === undefined ? [] : [t.gateway])]
  for (const target of targets) {
    const results: Array<CaseResult> = []
    for (const c of writeCases("")) results.push(await runCase(target, { ...c, name: `${target.name}: ${c.name}` }))
    sent += results.length
    recordCases(summary, area, results)
    // a 10 MB body, written while reading the answer; three times, since whether a server
    // that closes early loses its 413 is a race (it must not lose it any time)
    const bigs = []
    for (let i = 0; i < 3; i++) bigs.push(await bigBody(target.host, target.httpPort, "/increment", 15_000))
    sent += bigs.length
    summary.check(
      area,
      `${target.name}: POST 10 MB body is refused with a 413 the client receives (3 of 3)`,
      bigs.every((b) => b.status === "413"),
      bigs.map((b) => `${b.status ?? "no answer"} after ${b.sent} body bytes`).join("; ")
    )
    for (const rc of rawCases("")) {
      const out = await rawExchange(target.host, target.httpPort, rc.bytes, 3000)
      sent++
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(out)?.[1]
      const ok = out === "" || (status !== undefined && status.startsWith("4"))
      summary.check(area, `${target.name}: raw ${rc.name} -> 4xx or closed`, ok, out.slice(0, 120) || "(closed)")
    }
  }
  if (t.discovery !== undefined) {
    const results: Array<CaseResult> = []
    for (const c of DISCOVERY_CASES) results.push(await runCase(t.discovery, c))
    sent += results.length
    recordCases(summary, area, results)
  }
  return sent
}
