/**
 * `CounterMap.page` with `order: "recent"`: counters by the version of their last change,
 * newest first, paged by a cursor that stays stable while the map changes between pages.
 */
import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import * as CounterMap from "../../src/crdt/CounterMap.js"
import type { CounterName } from "../../src/crdt/CounterName.js"
import type { ReplicaId } from "../../src/crdt/ReplicaId.js"

const n = (s: string) => s as CounterName
const r = (s: string) => s as ReplicaId

/** One write: +1 on the replica's increments of the counter (always a change). */
interface Write {
  readonly name: string
  readonly replica: string
}

/** A map plus the order of last changes, kept independently of the map's own versions. */
class Model {
  readonly map = new CounterMap.CounterMap()
  private tick = 0
  readonly lastChange = new Map<string, number>()

  write({ name, replica }: Write): void {
    const t = this.map.totals(n(name), r(replica))
    expect(this.map.applyOne(n(name), r(replica), t.inc + 1, t.dec)).toBe(true)
    this.lastChange.set(name, ++this.tick)
  }

  /** Every name, most recently changed first. */
  recentFirst(prefix = ""): Array<string> {
    return [...this.lastChange.entries()].filter(([name]) => name.startsWith(prefix)).sort((a, b) => b[1] - a[1]).map(([name]) => name)
  }
}

const name = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom("a", "b", "c", "ab", "likes:1", "likes:2", "views.x", "default") },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9._:-]{1,12}$/) }
)
const write: fc.Arbitrary<Write> = fc.record({ name, replica: fc.constantFrom("r1", "r2", "r3") })
const writes = fc.array(write, { maxLength: 60 })
const limit = fc.integer({ min: 1, max: 8 })
const prefix = fc.constantFrom("", "a", "likes:", "v", "zz")

/** Follows `next` from the first page, calling `between` after each page; bounded. */
const walk = (
  map: CounterMap.CounterMap,
  request: { limit: number; prefix?: string },
  between: (page: number) => void = () => {},
  bound = 1000
): Array<Array<string>> => {
  const pages: Array<Array<string>> = []
  let after: string | undefined
  for (let i = 0; i < bound; i++) {
    const page = map.page({ ...request, order: "recent", after })
    expect(page.rejected).toBeUndefined()
    pages.push(page.counters.map((c) => c.name))
    for (const c of page.counters) expect(c.value).toBe(map.value(c.name))
    if (page.next === undefined) return pages
    after = page.next
    between(i)
  }
  throw new Error(`no last page after ${bound} pages`)
}

describe("CounterMap.page by recency", () => {
  it.prop("pages concatenated are every name with the prefix, newest first, each once", [writes, limit, prefix], ([ws, l, p]) => {
    const model = new Model()
    ws.forEach((w) => model.write(w))
    const pages = walk(model.map, { limit: l, prefix: p })
    expect(pages.flat()).toEqual(model.recentFirst(p))
    for (const page of pages) expect(page.length).toBeLessThanOrEqual(l)
    // without a prefix every page but the last is full
    if (p === "") for (const page of pages.slice(0, -1)) expect(page).toHaveLength(l)
  })

  it.prop(
    "under writes between pages names may move, but none present at the start is lost",
    [writes, fc.array(fc.array(write, { maxLength: 4 }), { maxLength: 30 }), limit],
    ([ws, during, l]) => {
      const model = new Model()
      ws.forEach((w) => model.write(w))
      const before = model.recentFirst()
      const written = new Set<string>()
      const pages = walk(model.map, { limit: l }, (i) => {
        for (const w of during[i] ?? []) {
          model.write(w)
          written.add(w.name)
        }
      })
      const listed = pages.flat()
      for (const name of before) expect(listed).toContain(name)
      for (const name of listed) expect(model.lastChange.has(name)).toBe(true)
      // a name nobody wrote during the walk: listed once, in its place among the others
      const untouched = before.filter((x) => !written.has(x))
      expect(listed.filter((x) => !written.has(x))).toEqual(untouched)
    }
  )

  it("a page resumes after the last listed counter even when that counter changed since", () => {
    const model = new Model()
    for (const x of ["a", "b", "c", "d", "e"]) model.write({ name: x, replica: "r1" })
    const first = model.map.page({ order: "recent", limit: 2 })
    expect(first.counters.map((c) => c.name)).toEqual(["e", "d"])
    model.write({ name: "d", replica: "r2" }) // the anchor of the cursor moves
    model.write({ name: "b", replica: "r1" }) // one not yet listed moves ahead of the walk
    const rest = walk(model.map, { limit: 2 }).flat() // a fresh walk sees the new order
    expect(rest).toEqual(["b", "d", "e", "c", "a"])
    const second = model.map.page({ order: "recent", limit: 2, after: first.next })
    expect(second.counters.map((c) => c.name)).toEqual(["c", "a"])
    // b moved during the walk: it comes in the part after, with d (written after the walk began)
    const third = model.map.page({ order: "recent", limit: 5, after: second.next })
    expect(third.counters.map((c) => c.name)).toEqual(["d", "b"])
    expect(third.next).toBeUndefined()
  })

  it("a counter written by several replicas is listed once, at its newest change", () => {
    const model = new Model()
    model.write({ name: "x", replica: "r1" })
    model.write({ name: "y", replica: "r1" })
    model.write({ name: "x", replica: "r2" })
    model.write({ name: "z", replica: "r3" })
    model.write({ name: "y", replica: "r3" })
    expect(walk(model.map, { limit: 1 }).flat()).toEqual(["y", "z", "x"])
  })

  it("a rare prefix costs a bounded scan per page: short pages with next, then the match", () => {
    const model = new Model()
    model.write({ name: "rare", replica: "r1" })
    for (let i = 0; i < CounterMap.RECENT_SCAN_LIMIT + 10; i++) model.write({ name: `c${i}`, replica: "r1" })
    const first = model.map.page({ order: "recent", limit: 10, prefix: "rare" })
    expect(first.counters).toEqual([])
    expect(first.next).toBeDefined()
    const second = model.map.page({ order: "recent", limit: 10, prefix: "rare", after: first.next })
    expect(second.counters).toEqual([{ name: "rare", value: 1 }])
    expect(second.next).toBeUndefined()
  })

  it("an empty map has one empty page", () => {
    expect(new CounterMap.CounterMap().page({ order: "recent", limit: 10 })).toEqual({ counters: [] })
  })

  it("refuses a cursor it did not issue, and anything that is not a cursor", () => {
    const a = new Model()
    const b = new Model()
    for (const x of ["a", "b", "c"]) {
      a.write({ name: x, replica: "r1" })
      b.write({ name: x, replica: "r1" })
    }
    const next = a.map.page({ order: "recent", limit: 1 }).next
    expect(next).toMatch(/^r\./)
    const foreign = b.map.page({ order: "recent", limit: 1, after: next })
    expect(foreign.counters).toEqual([])
    expect(foreign.rejected?.reason).toBe("OtherIssuer")
    expect(foreign.rejected?.message).toContain("did not issue")
    const notACursor = a.map.page({ order: "recent", limit: 1, after: "b" })
    expect(notACursor.rejected?.reason).toBe("NotACursor")
    expect(notACursor.rejected?.message).toContain("after must be the next of a previous page")
    // a copy is another map: its versions go their own way
    expect(a.map.clone().page({ order: "recent", limit: 1, after: next }).rejected).toBeDefined()
    // by name, `after` is still a name
    expect(a.map.page({ limit: 5, after: "a" }).counters.map((c) => c.name)).toEqual(["b", "c"])
  })
})
