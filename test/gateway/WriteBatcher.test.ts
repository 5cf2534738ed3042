/**
 * The gateway's write batching (internal/writeBatcher.ts) over scripted nodes: batches,
 * bounds, and the retry rule applied to whole batches. Replies and event-loop turns are
 * driven by hand, so every interleaving is reproducible and nothing sleeps.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Either, Exit, FastCheck as fc, Option } from "effect"
import { NodeRequestError } from "../../src/gateway/NodeClient.js"
import type { NodeResult } from "../../src/gateway/NodeClient.js"
import type { BatcherOptions, Counted, Write, WriteError } from "../../src/gateway/internal/writeBatcher.js"
import { decodeBatchAnswer, encodeBatch, WriteBatcher } from "../../src/gateway/internal/writeBatcher.js"

/**
 * How a node handles one batch request:
 * - ok: makes every write durable and answers;
 * - refused / busy: the request never reached it (NotReached / Busy);
 * - died-after: makes every write durable, then the connection dies (Indeterminate);
 * - died-before: the connection dies before the node read it (Indeterminate, nothing made);
 * - garbage: makes every write durable, then answers a body of the wrong shape;
 * - 503: answers 503 without making anything (the node is stopping);
 * - 404: has no /batch (an older node): nothing made; single writes to it are made at once.
 */
type Outcome = "ok" | "refused" | "busy" | "died-after" | "died-before" | "garbage" | "503" | "404"

interface Sent {
  readonly node: string
  readonly writes: ReadonlyArray<Write>
  readonly outcome: Outcome
  readonly reply: (result: NodeResult) => void
}

/** A batcher over scripted nodes; `turn()` runs the scheduled flushes, `deliver(i)` answers a request. */
const harness = (
  nodes: ReadonlyArray<string>,
  scripts: Record<string, ReadonlyArray<Outcome>>,
  options: BatcherOptions
) => {
  let healthy = [...nodes]
  let rotation = 0
  const durable = new Map<string, Map<string, number>>(nodes.map((n) => [n, new Map()]))
  const requests = new Map<string, number>()
  const sent: Array<Sent> = []
  const inFlight: Array<Sent> = []
  const scheduled: Array<() => void> = []
  const markedDown: Array<string> = []
  const defects: Array<unknown> = []
  const singles: Array<{ node: string; path: string; body: string }> = []
  let clock = 0
  const apply = (node: string, writes: ReadonlyArray<Write>) => {
    const state = durable.get(node)!
    return writes.map((w) => {
      const value = (state.get(w.name) ?? 0) + (w.kind === "inc" ? w.by : -w.by)
      state.set(w.name, value)
      return { value }
    })
  }
  const batcher = new WriteBatcher({
    candidates: () => {
      if (healthy.length === 0) return []
      const start = rotation++ % healthy.length
      return [...healthy.slice(start), ...healthy.slice(0, start)]
    },
    now: () => clock,
    send: (node, path, body, reply) => {
      if (path !== "/batch") {
        // a single write (a node without /batch): made and answered at once
        singles.push({ node, path, body })
        const write: Write = { name: path.split("/")[2]!, kind: path.endsWith("/increment") ? "inc" : "dec", by: JSON.parse(body).by }
        const [result] = apply(node, [write])
        return reply(Either.right({ status: 200, json: { value: result!.value, nodeId: `id-${node}` }, text: "" }))
      }
      const n = requests.get(node) ?? 0
      requests.set(node, n + 1)
      const script = scripts[node] ?? []
      const outcome = script.length === 0 ? "ok" : script[n % script.length]!
      const writes = (JSON.parse(body) as { writes: ReadonlyArray<Write> }).writes
      const s = { node, writes, outcome, reply }
      sent.push(s)
      inFlight.push(s)
    },
    markDown: (node) => {
      markedDown.push(node)
      healthy = healthy.filter((n) => n !== node)
    },
    forwarded: () => {},
    indeterminate: () => {},
    unavailable: () => {},
    defect: (_message, cause) => void defects.push(cause),
    schedule: (f) => void scheduled.push(f)
  }, options)

  const error = (node: string, reason: "NotReached" | "Busy" | "Indeterminate") =>
    Either.left(new NodeRequestError({ reason, node, message: `${node}: ${reason}` }))

  /** Answers the request `i` of those in flight as its node's script says. */
  const deliver = (i: number) => {
    const [s] = inFlight.splice(i, 1)
    const { node, outcome, reply, writes } = s!
    switch (outcome) {
      case "ok":
        return reply(Either.right({ status: 200, json: { nodeId: `id-${node}`, results: apply(node, writes) }, text: "" }))
      case "refused":
        return reply(error(node, "NotReached"))
      case "busy":
        return reply(error(node, "Busy"))
      case "died-after":
        apply(node, writes)
        return reply(error(node, "Indeterminate"))
      case "died-before":
        return reply(error(node, "Indeterminate"))
      case "garbage":
        apply(node, writes)
        return reply(Either.right({ status: 200, json: { nodeId: "x", results: [] }, text: "{}" }))
      case "503":
        return reply(Either.right({ status: 503, json: { error: "unavailable", message: "stopping" }, text: "" }))
      case "404":
        return reply(Either.right({ status: 404, json: { error: "not_found", message: "no route" }, text: "" }))
    }
  }
  const turn = () => {
    for (const f of scheduled.splice(0)) f()
  }
  /** Runs turns and answers requests (oldest first) until nothing is left. */
  const drain = () => {
    for (let guard = 0; guard < 10_000; guard++) {
      if (scheduled.length > 0) turn()
      else if (inFlight.length > 0) deliver(0)
      else return
    }
    throw new Error("the batcher did not settle")
  }
  return {
    batcher, durable, sent, inFlight, scheduled, markedDown, defects, singles, deliver, turn, drain,
    advance: (ms: number) => void (clock += ms)
  }
}

type Answer = Exit.Exit<Counted, WriteError>

const failure = (exit: Answer | undefined): WriteError | undefined =>
  exit !== undefined && Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

const inc = (name: string, by = 1): Write => ({ name, kind: "inc", by })

const defaults: BatcherOptions = { maxBatch: 256, maxInFlight: 1, maxQueued: 4096, singleMillis: 60_000 }

describe("WriteBatcher", () => {
  it("the writes of one turn go to their node in one batch; those arriving while it is in flight go in the next", () => {
    const h = harness(["a"], {}, defaults)
    const answers: Array<Answer> = []
    for (let i = 0; i < 3; i++) h.batcher.submit(inc(`w${i}`), (exit) => void answers.push(exit))
    expect(h.sent).toHaveLength(0) // nothing before the end of the turn
    h.turn()
    expect(h.sent.map((s) => s.writes.length)).toEqual([3])
    for (let i = 3; i < 8; i++) h.batcher.submit(inc(`w${i}`), (exit) => void answers.push(exit))
    h.turn()
    expect(h.sent).toHaveLength(1) // one batch in flight: the others wait for its answer
    expect(h.batcher.queued("a")).toBe(5)
    h.deliver(0)
    expect(h.sent.map((s) => s.writes.length)).toEqual([3, 5]) // sent as soon as the first was answered
    h.drain()
    expect(answers).toHaveLength(8)
    expect(answers.every(Exit.isSuccess)).toBe(true)
    expect(answers[0]).toStrictEqual(Exit.succeed({ value: 1, node: "a", nodeId: "id-a" }))
  })

  it("a batch holds at most maxBatch writes; a node's queue at most maxQueued, then the next node's", () => {
    const h = harness(["a", "b"], {}, { ...defaults, maxBatch: 2, maxQueued: 3 })
    const answers = new Map<string, Answer>()
    // the pool rotates: writes alternate a, b; a's and b's queues fill up to 3 each
    for (let i = 0; i < 7; i++) h.batcher.submit(inc(`w${i}`), (exit) => void answers.set(`w${i}`, exit))
    expect(h.batcher.queued("a")).toBe(3)
    expect(h.batcher.queued("b")).toBe(3)
    expect(failure(answers.get("w6"))).toMatchObject({ error: "unavailable", message: expect.stringContaining("nothing was counted") })
    h.drain()
    expect(h.sent.every((s) => s.writes.length <= 2)).toBe(true)
    expect([...answers.values()].filter(Exit.isSuccess)).toHaveLength(6)
  })

  it("a batch that did not reach its node moves on whole to the next; one that died after it was sent is 503 for every write", () => {
    const moved = harness(["a", "b"], { a: ["refused"] }, defaults)
    const answers: Array<Answer> = []
    for (let i = 0; i < 4; i++) moved.batcher.submit(inc(`w${i}`), (exit) => void answers.push(exit))
    moved.drain()
    expect(moved.markedDown).toEqual(["a"])
    expect(answers.every((e) => Exit.isSuccess(e) && e.value.node === "b")).toBe(true)
    expect(moved.durable.get("b")!.size).toBe(4)

    const died = harness(["a", "b"], { a: ["died-after"], b: ["died-before"] }, defaults)
    const lost: Array<Answer> = []
    for (let i = 0; i < 4; i++) died.batcher.submit(inc(`w${i}`), (exit) => void lost.push(exit))
    died.drain()
    expect(lost).toHaveLength(4)
    for (const exit of lost) expect(failure(exit)).toMatchObject({ error: "indeterminate" })
    // no retry: each batch went to exactly one node
    expect(died.sent.map((s) => s.node).sort()).toEqual(["a", "b"])
  })

  it("per-write results: overflow is a 400, a node-side failure a 503 with its code; a 503 or a bad body covers the batch", () => {
    const h = harness(["a"], {}, defaults)
    const answers: Array<Answer> = []
    for (let i = 0; i < 3; i++) h.batcher.submit(inc(`w${i}`), (exit) => void answers.push(exit))
    h.turn()
    h.inFlight.splice(0, 1)[0]!.reply(Either.right({
      status: 200,
      json: {
        nodeId: "id-a",
        results: [{ value: 7 }, { error: "overflow", message: "too big" }, { error: "unavailable", message: "disk full" }]
      },
      text: ""
    }))
    expect(answers[0]).toStrictEqual(Exit.succeed({ value: 7, node: "a", nodeId: "id-a" }))
    expect(failure(answers[1])).toMatchObject({ error: "bad_request", message: "too big" })
    expect(failure(answers[2])).toMatchObject({ error: "unavailable", message: "node a: disk full", node: "a" })

    const garbage = harness(["a"], { a: ["garbage"] }, defaults)
    const bad: Array<Answer> = []
    for (let i = 0; i < 2; i++) garbage.batcher.submit(inc(`w${i}`), (exit) => void bad.push(exit))
    garbage.drain()
    for (const exit of bad) expect(failure(exit)).toMatchObject({ error: "bad_gateway", message: expect.stringContaining("may or may not") })

    const stopping = harness(["a", "b"], { a: ["503"] }, defaults)
    const refused: Array<Answer> = []
    stopping.batcher.submit(inc("w0"), (exit) => void refused.push(exit))
    stopping.drain()
    expect(failure(refused[0])).toMatchObject({ error: "unavailable", node: "a" })
    expect(stopping.sent).toHaveLength(1) // an answer is never retried
  })

  it("503 no_healthy_node when no node is healthy; a throwing callback does not keep the others from their answer", () => {
    const none = harness([], {}, defaults)
    const answers: Array<Answer> = []
    none.batcher.submit(inc("w"), (exit) => void answers.push(exit))
    expect(failure(answers[0])).toMatchObject({ error: "no_healthy_node" })

    const h = harness(["a"], {}, defaults)
    h.batcher.submit(inc("w0"), () => {
      throw new Error("boom")
    })
    h.batcher.submit(inc("w1"), (exit) => void answers.push(exit))
    h.drain()
    expect(h.defects).toHaveLength(1)
    expect(Exit.isSuccess(answers[1]!)).toBe(true)
  })

  it("a node without /batch (404) gets the batch's writes one by one, and its later writes too for a while", () => {
    const h = harness(["old"], {}, defaults)
    const answers: Array<Answer> = []
    h.batcher.submit(inc("w0"), (exit) => void answers.push(exit))
    h.batcher.submit({ name: "w1", kind: "dec", by: 3 }, (exit) => void answers.push(exit))
    h.turn()
    h.inFlight.splice(0, 1)[0]!.reply(Either.right({ status: 404, json: { error: "not_found", message: "no route" }, text: "" }))
    expect(h.singles.map((s) => [s.path, s.body])).toEqual([["/counters/w0/increment", "{\"by\":1}"], ["/counters/w1/decrement", "{\"by\":3}"]])
    expect(answers).toStrictEqual([
      Exit.succeed({ value: 1, node: "old", nodeId: "id-old" }),
      Exit.succeed({ value: -3, node: "old", nodeId: "id-old" })
    ])
    h.batcher.submit(inc("w2"), (exit) => void answers.push(exit))
    h.drain()
    expect(h.sent).toHaveLength(1) // no second /batch within the minute
    expect(h.singles).toHaveLength(3)
    h.advance(60_000)
    h.batcher.submit(inc("w3"), (exit) => void answers.push(exit))
    h.drain()
    expect(h.sent).toHaveLength(2) // asked again after it
    expect(answers.every(Exit.isSuccess)).toBe(true)
    expect(h.durable.get("old")!.get("w3")).toBe(1)
  })

  it("encodes the node's batch body and checks its answer's shape", () => {
    const body = encodeBatch([{ write: inc("a.b:c-d_e", 3) }, { write: { name: "x", kind: "dec", by: 2 ** 53 - 1 } }])
    expect(JSON.parse(body)).toEqual({
      writes: [{ name: "a.b:c-d_e", kind: "inc", by: 3 }, { name: "x", kind: "dec", by: 2 ** 53 - 1 }]
    })
    expect(decodeBatchAnswer({ nodeId: "n", results: [{ value: 1 }, { error: "e", message: "m" }] }, 2)).toBeDefined()
    for (
      const bad of [
        { nodeId: "n", results: [{ value: 1 }] },
        { nodeId: "n", results: [{ value: 1.5 }, { value: 1 }] },
        { nodeId: "n", results: [{ error: "e" }, { value: 1 }] },
        { nodeId: 1, results: [{ value: 1 }, { value: 1 }] },
        { results: [{ value: 1 }, { value: 1 }] },
        { nodeId: "n", results: "no" },
        null,
        "text"
      ]
    ) expect(decodeBatchAnswer(bad, 2)).toBeUndefined()
  })

  // ---------------------------------------------------------------------------------------
  // the retry rule, as a property

  const outcome = fc.constantFrom<Outcome>("ok", "ok", "refused", "busy", "died-after", "died-before", "garbage", "503", "404")
  const step = fc.oneof(
    fc.record({ _tag: fc.constant("submit" as const), count: fc.integer({ min: 1, max: 6 }) }),
    fc.record({ _tag: fc.constant("turn" as const) }),
    fc.record({ _tag: fc.constant("deliver" as const), pick: fc.nat() })
  )

  it.prop(
    "across batch compositions and failure points: no write is counted twice, none is acknowledged unless " +
      "durable on the node named, none moves on after it may have reached a node, and an indeterminate batch is 503 for all its writes",
    [
      fc.array(fc.array(outcome, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 4 }),
      fc.array(step, { maxLength: 40 }),
      fc.record({
        maxBatch: fc.integer({ min: 1, max: 8 }),
        maxInFlight: fc.integer({ min: 1, max: 3 }),
        maxQueued: fc.integer({ min: 1, max: 16 }),
        singleMillis: fc.constant(60_000)
      })
    ],
    ([scripts, steps, options]) => {
      const nodes = scripts.map((_, i) => `n${i}`)
      const h = harness(nodes, Object.fromEntries(nodes.map((n, i) => [n, scripts[i]!])), options)
      const answers = new Map<string, Array<Answer>>()
      let next = 0
      for (const s of steps) {
        if (s._tag === "submit") {
          for (let i = 0; i < s.count; i++) {
            const name = `w${next++}`
            answers.set(name, [])
            h.batcher.submit(inc(name), (exit) => void answers.get(name)!.push(exit))
          }
        } else if (s._tag === "turn") h.turn()
        else if (h.inFlight.length > 0) h.deliver(s.pick % h.inFlight.length)
        for (const n of nodes) expect(h.batcher.queued(n)).toBeLessThanOrEqual(options.maxQueued)
      }
      h.drain()

      // batches are bounded, and each write was sent on at most until it may have reached a node
      for (const s of h.sent) expect(s.writes.length).toBeLessThanOrEqual(options.maxBatch)
      // a 404 reached a node without /batch: nothing made there; its writes then go one by one
      const mayHaveReached = (o: Outcome) => o !== "refused" && o !== "busy" && o !== "404"
      for (const [name, exits] of answers) {
        // answered exactly once
        expect(exits).toHaveLength(1)
        const exit = exits[0]!
        const sends = h.sent.filter((s) => s.writes.some((w) => w.name === name))
        const reached = sends.filter((s) => mayHaveReached(s.outcome))
        expect(reached.length).toBeLessThanOrEqual(1)
        // a write stops at the first node it may have reached
        if (reached.length === 1) expect(sends[sends.length - 1]).toBe(reached[0])
        // each node tried at most once per write
        expect(new Set(sends.map((s) => s.node)).size).toBe(sends.length)
        const counted = nodes.reduce((sum, n) => sum + (h.durable.get(n)!.get(name) ?? 0), 0)
        expect(counted).toBeLessThanOrEqual(1)
        if (Exit.isSuccess(exit)) {
          // acknowledged: durable on the node it names, exactly once
          expect(counted).toBe(1)
          expect(h.durable.get(exit.value.node)!.get(name)).toBe(1)
          const single = h.singles.some((x) => x.path === `/counters/${name}/increment`)
          // made by a batch answered ok, or one by one on a node without /batch (after its 404,
          // or while it is known to have none)
          if (single) expect(sends.every((x) => !mayHaveReached(x.outcome))).toBe(true)
          else expect(reached[0]!.outcome).toBe("ok")
        } else {
          const error = failure(exit)!
          if (error.error === "unavailable" && error.message.includes("nothing was counted")) expect(counted).toBe(0)
          if (error.error === "no_healthy_node") expect(counted).toBe(0)
        }
      }
      // an indeterminate batch: every one of its writes is answered 503 indeterminate
      for (const s of h.sent) {
        if (s.outcome !== "died-after" && s.outcome !== "died-before") continue
        for (const w of s.writes) expect(failure(answers.get(w.name)![0])).toMatchObject({ error: "indeterminate", node: s.node })
      }
    },
    { fastCheck: { numRuns: 500 } }
  )
})
