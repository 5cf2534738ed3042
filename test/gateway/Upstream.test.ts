import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, FastCheck as fc } from "effect"
import type { NodeResponse, RequestOptions } from "../../src/gateway/NodeClient.js"
import { NodeClient, NodeRequestError } from "../../src/gateway/NodeClient.js"
import { NodePool } from "../../src/gateway/NodePool.js"
import * as Upstream from "../../src/gateway/Upstream.js"
import * as TestLogger from "../support/TestLogger.js"
import * as Callback from "../../src/internal/Callback.js"

type Script = "ok" | "500" | "NotReached" | "Busy" | "Indeterminate"

const answerOf = (node: string, script: Script): Exit.Exit<NodeResponse, NodeRequestError> => {
  switch (script) {
    case "ok":
      return Exit.succeed({ status: 200, json: { value: 1, nodeId: node }, text: "" })
    case "500":
      return Exit.succeed({ status: 500, json: undefined, text: "boom" })
    default:
      return Exit.fail(new NodeRequestError({ reason: script, node, message: `${node}: ${script}` }))
  }
}

/**
 * Upstream over stub ports: `scripts` says how each node answers; replies are synchronous.
 * The stubs are Callbacks, like the real ports, so Upstream runs them without a fiber.
 */
const setup = (nodes: ReadonlyArray<string>, scripts: Record<string, Script>) => {
  const calls: Array<{ node: string; request: RequestOptions }> = []
  const markedDown: Array<string> = []
  const recorded: Array<string> = []
  const client = NodeClient.of({
    request: (node, request) =>
      Callback.make((resume) => {
        calls.push({ node, request })
        resume(answerOf(node, scripts[node] ?? "ok"))
      })
  })
  const pool = NodePool.of({
    nodes: Effect.succeed([]),
    candidates: Callback.sync(() => nodes),
    healthyCount: Effect.succeed(nodes.length),
    markDown: (node) => Callback.sync(() => void markedDown.push(node)),
    recordRequest: (node) => Callback.sync(() => void recorded.push(node)),
    refresh: Effect.void,
    refreshIfOlder: () => Effect.void
  })
  const upstream = Effect.runSync(
    Upstream.make().pipe(Effect.provideService(NodeClient, client), Effect.provideService(NodePool, pool), Effect.provide(TestLogger.quiet))
  )
  return { upstream, calls, markedDown, recorded }
}

const asAnswer = (answer: Upstream.Answer) => Exit.succeed(answer)

describe("Upstream", () => {
  it.effect("a write goes to the next node only when the previous one was not reached", () =>
    Effect.gen(function*() {
      const refused = setup(["a", "b", "c"], { a: "NotReached", b: "ok" })
      const answer = yield* refused.upstream.write("/increment", `{"by":2}`, asAnswer)
      expect(answer.node).toBe("b")
      expect(refused.calls.map((c) => c.node)).toEqual(["a", "b"])
      expect(refused.calls[0]!.request).toMatchObject({ method: "POST", path: "/increment", body: `{"by":2}` })
      expect(refused.markedDown).toEqual(["a"])
      expect(refused.recorded).toEqual(["a", "b"])

      // Busy: nothing left the gateway, and the node is not taken out for it
      const busy = setup(["a", "b"], { a: "Busy" })
      expect((yield* busy.upstream.write("/increment", "{}", asAnswer)).node).toBe("b")
      expect(busy.markedDown).toEqual([])

      // a 5xx answer of a node is relayed, not retried: the node may have counted it
      const failing = setup(["a", "b"], { a: "500" })
      expect(yield* failing.upstream.write("/increment", "{}", asAnswer)).toMatchObject({ node: "a", response: { status: 500 } })
      expect(failing.calls).toHaveLength(1)
    }))

  it.effect("a write that may have reached a node is answered 503 indeterminate and never retried", () =>
    Effect.gen(function*() {
      const s = setup(["a", "b"], { a: "Indeterminate" })
      const exit = yield* Effect.exit(s.upstream.write("/counters/x/increment", "{}", asAnswer))
      expect(exit).toStrictEqual(Exit.fail(expect.objectContaining({ error: "indeterminate", node: "a" })))
      expect(s.calls.map((c) => c.node)).toEqual(["a"])
      expect(s.markedDown).toEqual(["a"])
    }))

  it.effect("503 unavailable when no node took a write, no_healthy_node when there is none", () =>
    Effect.gen(function*() {
      const s = setup(["a", "b"], { a: "NotReached", b: "Busy" })
      const exit = yield* Effect.exit(s.upstream.write("/increment", "{}", asAnswer))
      expect(Exit.isFailure(exit) && Cause.failureOption(exit.cause)).toMatchObject({
        _tag: "Some",
        value: { error: "unavailable", message: expect.stringContaining("nothing was counted") }
      })
      const none = setup([], {})
      const noneExit = yield* Effect.exit(none.upstream.write("/increment", "{}", asAnswer))
      expect(Exit.isFailure(noneExit) && Cause.failureOption(noneExit.cause)).toMatchObject({
        _tag: "Some",
        value: { error: "no_healthy_node" }
      })
      expect(none.calls).toHaveLength(0)
    }))

  it.effect("a read fails over on any failure and on 5xx answers; only an unreachable node is taken out", () =>
    Effect.gen(function*() {
      const s = setup(["a", "b", "c", "d"], { a: "500", b: "Indeterminate", c: "NotReached", d: "ok" })
      const answer = yield* s.upstream.read("/counter", asAnswer)
      expect(answer.node).toBe("d")
      expect(s.calls.map((c) => [c.node, c.request.method])).toEqual([["a", "GET"], ["b", "GET"], ["c", "GET"], ["d", "GET"]])
      expect(s.markedDown).toEqual(["c"])
      const all = setup(["a"], { a: "500" })
      const exit = yield* Effect.exit(all.upstream.read("/counter", asAnswer))
      expect(Exit.isFailure(exit) && Cause.failureOption(exit.cause)).toMatchObject({
        _tag: "Some",
        value: { error: "unavailable", message: expect.stringContaining("a answered 500") }
      })
    }))

  it.effect("the answer is mapped by decode; a throwing decode is a defect", () =>
    Effect.gen(function*() {
      const s = setup(["a"], {})
      const value = yield* s.upstream.write("/increment", "{}", (answer) => Exit.succeed(`${answer.node}:${answer.response.status}`))
      expect(value).toBe("a:200")
      const refused = yield* Effect.exit(s.upstream.write("/increment", "{}", () => Exit.fail("refused" as const)))
      expect(refused).toStrictEqual(Exit.fail("refused"))
      const thrown = yield* Effect.exit(s.upstream.read("/counter", () => {
        throw new Error("bad decode")
      }))
      expect(Exit.isFailure(thrown) && Cause.isDie(thrown.cause)).toBe(true)
    }))

  const script = fc.constantFrom<Script>("ok", "500", "NotReached", "Busy", "Indeterminate")
  it.prop(
    "a write reaches at most one node, tries each node at most once, and stops at the first that may have it",
    [fc.array(script, { maxLength: 6 })],
    ([scripts]) => {
      const nodes = scripts.map((_, i) => `n${i}`)
      const s = setup(nodes, Object.fromEntries(nodes.map((n, i) => [n, scripts[i]!])))
      const exit = Effect.runSync(Effect.exit(s.upstream.write("/increment", "{}", asAnswer)))
      const reached = s.calls.filter((c) => {
        const outcome = scripts[nodes.indexOf(c.node)]
        return outcome !== "NotReached" && outcome !== "Busy"
      })
      expect(reached.length).toBeLessThanOrEqual(1)
      expect(new Set(s.calls.map((c) => c.node)).size).toBe(s.calls.length)
      const first = scripts.findIndex((o) => o !== "NotReached" && o !== "Busy")
      expect(s.calls.length).toBe(first === -1 ? nodes.length : first + 1)
      expect(Exit.isSuccess(exit)).toBe(first !== -1 && scripts[first] !== "Indeterminate")
    },
    { fastCheck: { numRuns: 1000 } }
  )
})
