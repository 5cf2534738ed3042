/**
 * The gateway's writes, forwarded in batches: the writes bound for one node travel
 * together in one `POST /batch` (the node's internal endpoint, NodeApi.ts).
 *
 * Why: forwarding one request per write cost the gateway a socket write, a socket read, an
 * HTTP answer to parse and JSON to decode per write, and the node a whole HTTP request per
 * write; with a batch those are paid once per batch, and the node's WAL group commit takes
 * the whole batch at once. It sits behind the `Upstream` port, which hands it the writes.
 *
 * How: a write picks its node in the pool's round-robin order and joins that node's queue.
 * A queue is sent at the end of the event-loop turn it was filled in (`schedule`: a
 * `setImmediate`, so every request read in the same turn joins), or, when `maxInFlight`
 * batches to that node are already in flight, as soon as one of them is answered: writes
 * collect while the node is busy, and wait for it for at most one batch. Bounds: at most
 * `maxBatch` writes per request, `maxInFlight` requests per node, `maxQueued` writes waiting
 * per node (a write that finds every node's queue full is answered 503 at once: nothing was
 * sent, nothing counted).
 *
 * The retry rule is the single write's, applied to the batch as a whole:
 * - `NotReached` / `Busy` (not one byte left the gateway): the whole batch moves on to the
 *   next healthy node it has not tried, as one batch; none left: 503 `unavailable`,
 *   nothing counted;
 * - `Indeterminate` (sent, then the connection died, timed out or answered garbage): every
 *   write of the batch is answered 503 `indeterminate` and none is retried;
 * - an answer: each write gets its own result (its new value; `overflow` as a 400; a
 *   node-side failure as a 503 with the node's code). A 503 for the whole batch is relayed
 *   to every write, like a single write's; any other status, or a body that does not hold
 *   one result per write, is a 502 for every write (the node answered something the
 *   gateway does not understand, so the outcome is not known).
 * A node that was not reached or whose batch is indeterminate is taken out of rotation.
 *
 * A node that answers a batch 404 or 405 has no `/batch` (an older version, during a
 * rolling upgrade): the request was routed nowhere and nothing was counted, so the batch's
 * writes are sent to that node one by one through the single-write endpoints
 * (`/counters/:name/increment|decrement`, under the same rules), and so are its later
 * writes for `singleMillis`, after which `/batch` is tried again.
 *
 * No fiber, no Effect per write: callbacks only (the gateway's hot path).
 *
 * @internal
 */
import { Exit } from "effect"
import { BadGateway, BadRequest, Unavailable } from "../GatewayApi.js"
import type { NodeRequestError, NodeResponse, NodeResult } from "../NodeClient.js"

/** One write, as the node's batch endpoint takes it. */
export interface Write {
  readonly name: string
  readonly kind: "inc" | "dec"
  readonly by: number
}

/** A durable write: the counter's new value on the node that took it. */
export interface Counted {
  readonly value: number
  /** `host:port` of the node */
  readonly node: string
  readonly nodeId: string
}

export type WriteError = BadRequest | Unavailable | BadGateway

export type Done = (exit: Exit.Exit<Counted, WriteError>) => void

export interface BatcherOptions {
  /** most writes in one batch request */
  readonly maxBatch: number
  /** most batch requests in flight per node */
  readonly maxInFlight: number
  /** most writes waiting per node */
  readonly maxQueued: number
  /** how long a node that has no `/batch` gets single writes before `/batch` is tried again */
  readonly singleMillis: number
}

export interface BatcherDeps {
  /** healthy nodes, in the order to try them (rotated per call) */
  readonly candidates: () => ReadonlyArray<string>
  /** `POST path` with this JSON body (`/batch`, or a single write's path); `reply` is called once */
  readonly send: (node: string, path: string, body: string, reply: (result: NodeResult) => void) => void
  /** the time in milliseconds (a monotonic clock) */
  readonly now: () => number
  readonly markDown: (node: string, reason: string) => void
  /** one write was forwarded to `node` (after a failover too) */
  readonly forwarded: (node: string, failover: boolean) => void
  /** `writes` writes were answered indeterminate (`message`: why) */
  readonly indeterminate: (node: string, writes: number, message: string) => void
  /** a write was answered 503 because no node could take it */
  readonly unavailable: () => void
  /** a write's callback threw (reported, the batch goes on) */
  readonly defect: (message: string, cause: unknown) => void
  /** runs `f` at the end of this event-loop turn */
  readonly schedule: (f: () => void) => void
}

interface Item {
  readonly write: Write
  readonly done: Done
}

/** The writes bound for one node. */
interface Lane {
  readonly node: string
  queue: Array<Item>
  inFlight: number
  scheduled: boolean
}

const noHealthyNode = new Unavailable({
  error: "no_healthy_node",
  message: "no node is healthy right now; try again shortly"
})

/** `{"writes":[...]}`; names are already validated, `JSON.stringify` is only belt and braces. */
export const encodeBatch = (items: ReadonlyArray<{ readonly write: Write }>): string => {
  let body = "{\"writes\":["
  for (let i = 0; i < items.length; i++) {
    const w = items[i]!.write
    if (i > 0) body += ","
    body += `{"name":${JSON.stringify(w.name)},"kind":"${w.kind}","by":${w.by}}`
  }
  return body + "]}"
}

type NodeResult1 = { readonly value: number } | { readonly error: string; readonly message: string }

const isResult = (u: unknown): u is NodeResult1 => {
  if (typeof u !== "object" || u === null) return false
  if ("value" in u) return Number.isSafeInteger(u.value)
  return "error" in u && typeof u.error === "string" && "message" in u && typeof u.message === "string"
}

/** The node's answer to a batch of `n` writes, if it has the documented shape. */
export const decodeBatchAnswer = (
  json: unknown,
  n: number
): { readonly nodeId: string; readonly results: ReadonlyArray<NodeResult1> } | undefined => {
  if (typeof json !== "object" || json === null || !("nodeId" in json) || !("results" in json)) return undefined
  const { nodeId, results } = json
  if (typeof nodeId !== "string" || !Array.isArray(results) || results.length !== n) return undefined
  for (const r of results as Array<unknown>) if (!isResult(r)) return undefined
  return { nodeId, results: results as ReadonlyArray<NodeResult1> }
}

const errorOf = (json: unknown): { readonly error?: string; readonly message?: string } => {
  if (typeof json !== "object" || json === null) return {}
  const error = "error" in json && typeof json.error === "string" ? json.error : undefined
  const message = "message" in json && typeof json.message === "string" ? json.message : undefined
  return { ...(error === undefined ? {} : { error }), ...(message === undefined ? {} : { message }) }
}

/** A node's answer to one write on its single-write endpoint, as the gateway relays it. */
export const singleAnswer = (node: string, response: NodeResponse): Exit.Exit<Counted, WriteError> => {
  const json = response.json
  if (response.status >= 200 && response.status < 300) {
    if (typeof json === "object" && json !== null && "value" in json && Number.isSafeInteger(json.value)) {
      const nodeId = "nodeId" in json && typeof json.nodeId === "string" ? json.nodeId : node
      return Exit.succeed({ value: json.value as number, node, nodeId })
    }
    return Exit.fail(
      new BadGateway({ error: "bad_gateway", message: `node ${node} answered an unexpected body: ${response.text.slice(0, 200)}`, node })
    )
  }
  const { error, message } = errorOf(json)
  const text = message ?? error ?? response.text.slice(0, 200)
  if (response.status === 400) return Exit.fail(BadRequest.of(text))
  if (response.status === 503) return Exit.fail(new Unavailable({ error: error ?? "unavailable", message: `node ${node}: ${text}`, node }))
  return Exit.fail(new BadGateway({ error: "bad_gateway", message: `node ${node} answered HTTP ${response.status}: ${text}`, node }))
}

export class WriteBatcher {
  private readonly lanes = new Map<string, Lane>()
  /** nodes without `/batch`, until when they get single writes */
  private readonly singles = new Map<string, number>()

  constructor(private readonly deps: BatcherDeps, private readonly options: BatcherOptions) {}

  /** Queues one write; `done` is called once with its outcome. */
  submit(write: Write, done: Done): void {
    const nodes = this.deps.candidates()
    if (nodes.length === 0) {
      this.deps.unavailable()
      return done(Exit.fail(noHealthyNode))
    }
    for (const node of nodes) {
      let lane = this.lanes.get(node)
      if (lane === undefined) {
        lane = { node, queue: [], inFlight: 0, scheduled: false }
        this.lanes.set(node, lane)
      }
      if (lane.queue.length >= this.options.maxQueued) continue
      lane.queue.push({ write, done })
      if (lane.inFlight < this.options.maxInFlight && !lane.scheduled) {
        lane.scheduled = true
        const ready = lane
        this.deps.schedule(() => {
          ready.scheduled = false
          this.flush(ready)
        })
      }
      return
    }
    this.deps.unavailable()
    done(Exit.fail(
      new Unavailable({
        error: "unavailable",
        message: `every node has ${this.options.maxQueued} writes waiting; nothing was counted, try again shortly`
      })
    ))
  }

  /** Writes waiting (not sent yet), per node: for tests and diagnostics. */
  queued(node: string): number {
    return this.lanes.get(node)?.queue.length ?? 0
  }

  /** Sends what waits for `lane`, as far as its in-flight bound allows. */
  private flush(lane: Lane): void {
    if (this.isSingle(lane.node)) {
      // an older node: every write on its own, now (the node's own bounds apply)
      const items = lane.queue
      lane.queue = []
      for (const item of items) this.single(lane.node, item)
      if (lane.inFlight === 0 && !lane.scheduled && this.lanes.get(lane.node) === lane) this.lanes.delete(lane.node)
      return
    }
    while (lane.inFlight < this.options.maxInFlight && lane.queue.length > 0) {
      const items = lane.queue.length <= this.options.maxBatch ? lane.queue : lane.queue.slice(0, this.options.maxBatch)
      lane.queue = items === lane.queue ? [] : lane.queue.slice(this.options.maxBatch)
      lane.inFlight++
      this.attempt(lane.node, items, [], () => {
        lane.inFlight--
        this.flush(lane)
        if (lane.queue.length === 0 && lane.inFlight === 0 && !lane.scheduled && this.lanes.get(lane.node) === lane) {
          this.lanes.delete(lane.node)
        }
      })
    }
  }

  /**
   * Sends `items` to `node` as one batch; `tried`: the nodes this batch did not reach
   * before. `settled` runs once the batch is answered or moved on.
   */
  private attempt(
    node: string,
    items: ReadonlyArray<Item>,
    tried: ReadonlyArray<string>,
    settled: () => void
  ): void {
    const failover = tried.length > 0
    for (let i = 0; i < items.length; i++) this.deps.forwarded(node, failover)
    this.deps.send(node, "/batch", encodeBatch(items), (result) => {
      settled()
      if (result._tag === "Right") return this.answer(node, items, result.right)
      this.failed(node, items, [...tried, node], result.left)
    })
  }

  private failed(node: string, items: ReadonlyArray<Item>, tried: ReadonlyArray<string>, failure: NodeRequestError): void {
    switch (failure.reason) {
      case "NotReached":
      case "Busy": {
        if (failure.reason === "NotReached") this.deps.markDown(node, failure.message)
        const next = this.deps.candidates().find((n) => !tried.includes(n))
        if (next !== undefined) return this.attempt(next, items, tried, () => {})
        for (let i = 0; i < items.length; i++) this.deps.unavailable()
        const error = new Unavailable({
          error: "unavailable",
          message: `no node took the request (${tried.length} tried; last: ${failure.message}); nothing was counted`
        })
        return this.failAll(items, error)
      }
      case "Indeterminate": {
        this.deps.markDown(node, failure.message)
        this.deps.indeterminate(node, items.length, failure.message)
        const error = new Unavailable({
          error: "indeterminate",
          message: `the request reached node ${node}, which failed before answering; it may or may not have been ` +
            `counted, and was not retried (${failure.message})`,
          node
        })
        return this.failAll(items, error)
      }
    }
  }

  /** One write through the single-write endpoint of a node without `/batch`. */
  private single(node: string, item: Item): void {
    const { by, kind, name } = item.write
    const path = `/counters/${name}/${kind === "inc" ? "increment" : "decrement"}`
    this.deps.forwarded(node, false)
    this.deps.send(node, path, `{"by":${by}}`, (result) => {
      if (result._tag === "Left") return this.failed(node, [item], [node], result.left)
      this.settle(item, singleAnswer(node, result.right))
    })
  }

  private isSingle(node: string): boolean {
    const until = this.singles.get(node)
    if (until === undefined) return false
    if (this.deps.now() < until) return true
    this.singles.delete(node)
    return false
  }

  private answer(node: string, items: ReadonlyArray<Item>, response: NodeResponse): void {
    if (response.status === 404 || response.status === 405) {
      // no such route on this node: nothing was counted; its writes go one by one for a while
      this.singles.set(node, this.deps.now() + this.options.singleMillis)
      for (const item of items) this.single(node, item)
      return
    }
    if (response.status === 200) {
      const decoded = decodeBatchAnswer(response.json, items.length)
      if (decoded !== undefined) {
        const { nodeId, results } = decoded
        for (let i = 0; i < items.length; i++) {
          const r = results[i]!
          this.settle(
            items[i]!,
            "value" in r
              ? Exit.succeed({ value: r.value, node, nodeId })
              : r.error === "overflow" || r.error === "bad_request"
              ? Exit.fail(BadRequest.of(r.message))
              : Exit.fail(new Unavailable({ error: r.error, message: `node ${node}: ${r.message}`, node }))
          )
        }
        return
      }
    }
    const { error, message } = errorOf(response.json)
    const text = message ?? error ?? response.text.slice(0, 200)
    if (response.status === 503) {
      return this.failAll(items, new Unavailable({ error: error ?? "unavailable", message: `node ${node}: ${text}`, node }))
    }
    this.failAll(
      items,
      new BadGateway({
        error: "bad_gateway",
        message: response.status === 200
          ? `node ${node} answered a batch with an unexpected body (${response.text.slice(0, 200)}); ` +
            "the write may or may not have been counted"
          : `node ${node} answered a batch with HTTP ${response.status}: ${text}`,
        node
      })
    )
  }

  private failAll(items: ReadonlyArray<Item>, error: WriteError): void {
    const exit = Exit.fail(error)
    for (let i = 0; i < items.length; i++) this.settle(items[i]!, exit)
  }

  /** Answers one write; a callback that throws does not keep the others of its batch from their answer. */
  private settle(item: Item, exit: Exit.Exit<Counted, WriteError>): void {
    try {
      item.done(exit)
    } catch (cause) {
      this.deps.defect("the answer of a batched write threw", cause)
    }
  }
}
