import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { ResponseParser } from "../../src/gateway/internal/responseParser.js"
import type { Step } from "../../src/gateway/internal/responseParser.js"

const limits = { maxHeadBytes: 4096, maxBodyBytes: 8192 }

/** Feeds `bytes` cut at `cuts`; returns every step that was not `More`, then the step of `end()` if asked. */
const feedAll = (
  parser: ResponseParser,
  bytes: Buffer,
  cuts: ReadonlyArray<number>,
  end = false,
  cutBefore = bytes.length + 1
): Array<Step> => {
  const points = [...new Set(cuts.map((c) => c % cutBefore))].sort((a, b) => a - b)
  const steps: Array<Step> = []
  let from = 0
  for (const to of [...points, bytes.length]) {
    if (to <= from) continue
    const step = parser.feed(bytes.subarray(from, to))
    if (step._tag !== "More") steps.push(step)
    from = to
  }
  if (end) steps.push(parser.end())
  return steps
}

const one = (text: string, cuts: ReadonlyArray<number> = []) => feedAll(new ResponseParser(limits), Buffer.from(text, "latin1"), cuts)

interface Spec {
  readonly minor: 0 | 1
  readonly status: number
  readonly interim: boolean
  readonly framing: "length" | "chunked" | "close"
  readonly body: Uint8Array
  readonly chunkSizes: ReadonlyArray<number>
  readonly connection: "none" | "close" | "keep-alive"
  readonly hint: number | undefined
  readonly extraHeaders: ReadonlyArray<readonly [string, string]>
  readonly trailers: ReadonlyArray<readonly [string, string]>
}

const token = fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,11}$/).filter((n) =>
  !["content-length", "transfer-encoding", "connection", "keep-alive"].includes(n.toLowerCase())
)
const value = fc.stringMatching(/^[ -~]{0,30}$/).map((v) => v.trim())

const spec: fc.Arbitrary<Spec> = fc.record({
  minor: fc.constantFrom(0 as const, 1 as const),
  status: fc.oneof(fc.integer({ min: 200, max: 599 }), fc.constantFrom(204, 304)),
  interim: fc.boolean(),
  framing: fc.constantFrom("length" as const, "chunked" as const, "close" as const),
  body: fc.uint8Array({ maxLength: 3000 }),
  chunkSizes: fc.array(fc.integer({ min: 1, max: 700 }), { maxLength: 10 }),
  connection: fc.constantFrom("none" as const, "close" as const, "keep-alive" as const),
  hint: fc.option(fc.integer({ min: 1, max: 600 }), { nil: undefined }),
  extraHeaders: fc.array(fc.tuple(token, value), { maxLength: 5 }),
  trailers: fc.array(fc.tuple(token, value), { maxLength: 3 })
})

const noBody = (s: Spec) => s.status === 204 || s.status === 304

const serialize = (s: Spec): Buffer => {
  const parts: Array<Buffer> = []
  const head = (lines: Array<string>) => parts.push(Buffer.from(lines.join("\r\n") + "\r\n\r\n", "latin1"))
  if (s.interim) head([`HTTP/1.1 100 Continue`])
  const lines = [`HTTP/1.${s.minor} ${s.status} Whatever Reason`]
  for (const [n, v] of s.extraHeaders) lines.push(`${n}: ${v}`)
  if (s.connection !== "none") lines.push(`Connection: ${s.connection}`)
  if (s.hint !== undefined) lines.push(`Keep-Alive: timeout=${s.hint}, max=100`)
  const body = noBody(s) ? new Uint8Array() : s.body
  if (noBody(s)) {
    head(lines)
  } else if (s.framing === "length") {
    lines.push(`Content-Length: ${body.length}`)
    head(lines)
    parts.push(Buffer.from(body))
  } else if (s.framing === "chunked") {
    lines.push("Transfer-Encoding: chunked")
    head(lines)
    let at = 0
    let i = 0
    while (at < body.length) {
      const size = Math.min(s.chunkSizes[i++ % Math.max(1, s.chunkSizes.length)] ?? body.length, body.length - at)
      parts.push(Buffer.from(`${size.toString(16)}${i % 2 === 0 ? ";ext=1" : ""}\r\n`, "latin1"))
      parts.push(Buffer.from(body.subarray(at, at + size)))
      parts.push(Buffer.from("\r\n"))
      at += size
    }
    parts.push(Buffer.from("0\r\n" + s.trailers.map(([n, v]) => `${n}: ${v}\r\n`).join("") + "\r\n", "latin1"))
  } else {
    head(lines)
    parts.push(Buffer.from(body))
  }
  return Buffer.concat(parts)
}

describe("ResponseParser", () => {
  it("parses a node's answer delivered in one chunk", () => {
    const steps = one(
      "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 13\r\nConnection: keep-alive\r\n" +
        "Keep-Alive: timeout=5\r\n\r\n{\"value\":42}\n"
    )
    expect(steps).toHaveLength(1)
    const step = steps[0]!
    expect(step._tag).toBe("Done")
    if (step._tag !== "Done") return
    expect(step.response.status).toBe(200)
    expect(step.response.body.toString()).toBe("{\"value\":42}\n")
    expect(step.response.keepAlive).toBe(true)
    expect(step.response.keepAliveSeconds).toBe(5)
    expect(step.trailing).toBe(false)
  })

  it("parses consecutive answers on one connection, and says when bytes follow an answer", () => {
    const parser = new ResponseParser(limits)
    const a = parser.feed(Buffer.from("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
    const b = parser.feed(Buffer.from("HTTP/1.1 503 No\r\nContent-Length: 0\r\nConnection: close\r\n\r\nX"))
    expect(a).toMatchObject({ _tag: "Done", trailing: false, response: { status: 200, keepAlive: true } })
    expect(b).toMatchObject({ _tag: "Done", trailing: true, response: { status: 503, keepAlive: false } })
  })

  it("refuses what is not an HTTP/1.x answer, with a message", () => {
    for (
      const text of [
        "HTTP/2 200 OK\r\n\r\n",
        "SSH-2.0-OpenSSH\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY",
        "HTTP/1.1 101 Switching Protocols\r\n\r\n"
      ]
    ) {
      const steps = one(text)
      expect(steps.map((s) => s._tag), text).toEqual(["Invalid"])
    }
  })

  it("bounds the head and the body", () => {
    expect(one(`HTTP/1.1 200 OK\r\nx: ${"a".repeat(5000)}\r\n\r\n`)[0]?._tag).toBe("Invalid")
    // without the end of the head in sight, it stops buffering past the bound too
    expect(one(`HTTP/1.1 200 OK\r\nx: ${"a".repeat(5000)}`)[0]?._tag).toBe("Invalid")
    expect(one("HTTP/1.1 200 OK\r\nContent-Length: 8193\r\n\r\n")[0]).toMatchObject({ _tag: "Invalid" })
    const chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + `1000\r\n${"a".repeat(4096)}\r\n`.repeat(2) + "1\r\n"
    expect(one(chunked)[0]).toMatchObject({ _tag: "Invalid" })
    const untilClose = new ResponseParser(limits)
    untilClose.feed(Buffer.from("HTTP/1.0 200 OK\r\n\r\n"))
    expect(untilClose.feed(Buffer.alloc(9000))._tag).toBe("Invalid")
  })

  it("says how a connection that ends was cut", () => {
    const idle = new ResponseParser(limits)
    expect(idle.end()).toMatchObject({ _tag: "Invalid", message: "the connection closed before an answer" })
    const cut = new ResponseParser(limits)
    expect(cut.feed(Buffer.from("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"))._tag).toBe("More")
    expect(cut.started).toBe(true)
    expect(cut.end()).toMatchObject({ _tag: "Invalid", message: "the connection closed in the middle of the answer" })
  })

  it.prop(
    "any answer, cut anywhere, parses to its status, body and keep-alive",
    [spec, fc.array(fc.nat(), { maxLength: 12 }), fc.boolean()],
    ([s, cuts, extra]) => {
      const bytes = serialize(s)
      const closes = !noBody(s) && s.framing === "close"
      const trailing = extra && !closes
      const parser = new ResponseParser(limits)
      // trailing bytes arrive in the same chunk as the end of the answer
      const steps = trailing
        ? feedAll(parser, Buffer.concat([bytes, Buffer.from("HTTP/1.1")]), cuts, false, bytes.length)
        : feedAll(parser, bytes, cuts, closes)
      expect(steps).toHaveLength(1)
      const step = steps[0]!
      if (step._tag !== "Done") throw new Error(`expected Done, got ${JSON.stringify(step)}`)
      expect(step.response.status).toBe(s.status)
      expect(Buffer.compare(step.response.body, Buffer.from(noBody(s) ? new Uint8Array() : s.body))).toBe(0)
      const keepAlive = !closes && s.connection !== "close" && (s.minor === 1 || s.connection === "keep-alive")
      expect(step.response.keepAlive).toBe(keepAlive)
      expect(step.response.keepAliveSeconds).toBe(s.hint)
      expect(step.trailing).toBe(trailing)
    },
    { fastCheck: { numRuns: 1000 } }
  )

  it.prop(
    "never throws on arbitrary bytes, and answers each step with More, Done or Invalid",
    [fc.array(fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.constantFrom(
      Uint8Array.from(Buffer.from("HTTP/1.1 200 OK\r\n")),
      Uint8Array.from(Buffer.from("Transfer-Encoding: chunked\r\n")),
      Uint8Array.from(Buffer.from("Content-Length: 3\r\n")),
      Uint8Array.from(Buffer.from("\r\n")),
      Uint8Array.from(Buffer.from("5\r\nhello\r\n0\r\n\r\n"))
    )), { maxLength: 20 })],
    ([chunks]) => {
      const parser = new ResponseParser(limits)
      for (const chunk of chunks) {
        expect(["More", "Done", "Invalid"]).toContain(parser.feed(Buffer.from(chunk))._tag)
      }
      expect(["Done", "Invalid"]).toContain(parser.end()._tag)
    },
    { fastCheck: { numRuns: 1000 } }
  )
})
