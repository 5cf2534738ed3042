import { describe, expect, it } from "@effect/vitest"
import { Exit, FastCheck as fc } from "effect"
import type { CounterName } from "../../../src/crdt/CounterName.js"
import { Overflow } from "../../../src/crdt/PNCounter.js"
import type { WriteError } from "../../../src/node/CounterStore.js"
import { StoreUnavailable } from "../../../src/node/CounterStore.js"
import * as Callback from "../../../src/internal/Callback.js"
import { WriteCoalescer } from "../../../src/node/resp/WriteCoalescer.js"

type Resume = (exit: Exit.Exit<number, WriteError>) => void

/** A store of counters that settles writes when told to, and the coalescer in front of it. */
const setup = (limit = Number.MAX_SAFE_INTEGER) => {
  const values = new Map<string, number>()
  const calls: Array<{ name: string; kind: "inc" | "dec"; by: number; resume: Resume }> = []
  let flushes: Array<() => void> = []
  const coalescer = new WriteCoalescer(
    (name, kind, by) => Callback.make((resume) => void calls.push({ name, kind, by, resume })),
    (f) => void flushes.push(f)
  )
  /** Runs the scheduled flush, then settles every submitted write in order. */
  const settle = () => {
    const fs = flushes
    flushes = []
    for (const f of fs) f()
    while (calls.length > 0) {
      const c = calls.shift()!
      const next = (values.get(c.name) ?? 0) + (c.kind === "inc" ? c.by : -c.by)
      if (Math.abs(next) > limit) c.resume(Exit.fail(new Overflow({ message: "too big" })))
      else {
        values.set(c.name, next)
        c.resume(Exit.succeed(next))
      }
    }
  }
  return { coalescer, calls, settle, values }
}

const name = (s: string) => s as CounterName

describe("WriteCoalescer", () => {
  it("joins the writes of one turn to one counter into one store write; each gets its own value", () => {
    const { coalescer, calls, settle } = setup()
    const answers: Array<number> = []
    const answer: Resume = (exit) => answers.push(Exit.isSuccess(exit) ? exit.value : Number.NaN)
    for (let i = 0; i < 5; i++) coalescer.add(name("a"), "inc", 1, answer)
    coalescer.add(name("a"), "inc", 10, answer)
    coalescer.add(name("a"), "dec", 2, answer)
    coalescer.add(name("b"), "inc", 3, answer)
    expect(calls).toHaveLength(0)
    expect(coalescer.pending).toBe(8)
    const submitted: Array<string> = []
    // look at what reaches the store before it settles
    coalescer.flush()
    for (const c of calls) submitted.push(`${c.kind} ${c.name} ${c.by}`)
    expect(submitted).toEqual(["inc a 15", "dec a 2", "inc b 3"])
    settle()
    expect(answers).toEqual([1, 2, 3, 4, 5, 15, 13, 3])
  })

  it.prop("every write answers a distinct value, and the last one the counter's value", [
    fc.array(fc.record({ counter: fc.constantFrom("a", "b"), kind: fc.constantFrom("inc" as const), by: fc.integer({ min: 1, max: 100 }) }), {
      minLength: 1,
      maxLength: 50
    })
  ], ([writes]) => {
    const { coalescer, settle, values } = setup()
    const answers = new Map<string, Array<number>>()
    for (const w of writes) {
      coalescer.add(name(w.counter), w.kind, w.by, (exit) => {
        const list = answers.get(w.counter) ?? []
        list.push(Exit.isSuccess(exit) ? exit.value : Number.NaN)
        answers.set(w.counter, list)
      })
    }
    settle()
    for (const [counter, list] of answers) {
      expect(new Set(list).size).toBe(list.length)
      // in arrival order, each answer is the running total of that counter's writes
      let total = 0
      const expected = writes.filter((w) => w.counter === counter).map((w) => (total += w.by))
      expect(list).toEqual(expected)
      expect(list.at(-1)).toBe(values.get(counter))
    }
  })

  it("a joined write that overflows is retried write by write", () => {
    const { coalescer, settle } = setup(10)
    const answers: Array<string> = []
    const answer: Resume = (exit) => answers.push(Exit.isSuccess(exit) ? String(exit.value) : exit.cause._tag)
    coalescer.add(name("a"), "inc", 6, answer)
    coalescer.add(name("a"), "inc", 6, answer)
    settle()
    expect(answers).toEqual(["6", "Fail"])
  })

  it("a store failure fails every joined write", () => {
    const resumes: Array<Resume> = []
    const coalescer = new WriteCoalescer(() => Callback.make((resume) => void resumes.push(resume)), () => {})
    const answers: Array<string> = []
    for (let i = 0; i < 3; i++) coalescer.add(name("a"), "inc", 1, (exit) => answers.push(Exit.isSuccess(exit) ? "ok" : "failed"))
    coalescer.flush()
    expect(resumes).toHaveLength(1)
    resumes[0]!(Exit.fail(new StoreUnavailable({ reason: "Disk", message: "EIO" })))
    expect(answers).toEqual(["failed", "failed", "failed"])
  })
})
