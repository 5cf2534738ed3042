import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import * as CounterMap from "../../src/crdt/CounterMap.js"
import type { CounterName } from "../../src/crdt/CounterName.js"
import type { Entry } from "../../src/crdt/Entry.js"
import { lowerBound, mergeSorted, NameIndex, pageOf, upperBound } from "../../src/crdt/NameIndex.js"
import type { PageRequest } from "../../src/crdt/NameIndex.js"
import type { ReplicaId } from "../../src/crdt/ReplicaId.js"

const RUNS = { fastCheck: { numRuns: 300 } }

/** Short names over a small alphabet, so prefixes and `after` values hit often. */
const name = fc.stringMatching(/^[ab.:0-9-]{1,4}$/)
const names = fc.uniqueArray(name, { maxLength: 60 })
const prefix = fc.oneof(fc.constant(""), fc.stringMatching(/^[ab.:0-9-]{1,2}$/))
const limit = fc.integer({ min: 1, max: 12 })

const sorted = (xs: Iterable<string>) => [...xs].sort()

/** Every page from the start, following `next`; bounded by the number of names. */
const allPages = (page: (after: string | undefined) => { names: ReadonlyArray<string>; next: string | undefined }, bound: number) => {
  const pages: Array<ReadonlyArray<string>> = []
  let after: string | undefined = undefined
  for (let i = 0; i <= bound + 1; i++) {
    const p = page(after)
    pages.push(p.names)
    if (p.next === undefined) return pages
    after = p.next
  }
  throw new Error(`more than ${bound + 1} pages for ${bound} names`)
}

describe("NameIndex", () => {
  it.prop("lowerBound and upperBound agree with a linear scan", [names, name], ([xs, x]) => {
    const s = sorted(xs)
    const lower = s.findIndex((y) => y >= x)
    const upper = s.findIndex((y) => y > x)
    expect(lowerBound(s, x)).toBe(lower === -1 ? s.length : lower)
    expect(upperBound(s, x)).toBe(upper === -1 ? s.length : upper)
  }, RUNS)

  it.prop("mergeSorted of two sorted arrays is their sorted union", [names, names], ([a, b]) => {
    expect(mergeSorted(sorted(a), sorted(b))).toEqual(sorted([...a, ...b]))
  }, RUNS)

  it.prop("pages concatenated are exactly the names with the prefix, sorted", [names, prefix, limit], ([xs, p, l]) => {
    const s = sorted(xs)
    const pages = allPages((after) => pageOf(s, { limit: l, after, prefix: p }), s.length)
    expect(pages.flat()).toEqual(s.filter((x) => x.startsWith(p)))
    // every page but the last is full; the last is full only when nothing followed it
    for (const page of pages.slice(0, -1)) expect(page).toHaveLength(l)
    expect(pages[pages.length - 1]!.length).toBeLessThanOrEqual(l)
  }, RUNS)

  it.prop("a page holds the first `limit` names after `after` with the prefix; `next` iff more follow", [
    names,
    prefix,
    limit,
    fc.option(name, { nil: undefined })
  ], ([xs, p, l, after]) => {
    const s = sorted(xs)
    const wanted = s.filter((x) => x.startsWith(p) && (after === undefined || x > after))
    const page = pageOf(s, { limit: l, after, prefix: p })
    expect(page.names).toEqual(wanted.slice(0, l))
    expect(page.next).toBe(wanted.length > l ? wanted[l - 1] : undefined)
  }, RUNS)

  it("a limit below 1 counts as 1, a fraction is rounded down", () => {
    const s = ["a", "b", "c"]
    expect(pageOf(s, { limit: 0 })).toEqual({ names: ["a"], next: "a" })
    expect(pageOf(s, { limit: -5 })).toEqual({ names: ["a"], next: "a" })
    expect(pageOf(s, { limit: 2.9 })).toEqual({ names: ["a", "b"], next: "b" })
    expect(pageOf(s, { limit: 3 })).toEqual({ names: ["a", "b", "c"], next: undefined })
    expect(pageOf([], { limit: 3 })).toEqual({ names: [], next: undefined })
  })

  it.prop("names added between pages (lazy merge) show up in order, as if sorted afresh", [
    fc.array(fc.tuple(names, fc.record({ limit, after: fc.option(name, { nil: undefined }), prefix }))),
    names
  ], ([steps, initial]) => {
    const known = new Set<string>(initial)
    const index = new NameIndex()
    // adds while cold are ignored: the first page reads every name from `all`
    for (const x of initial) index.add(x)
    for (const [batch, request] of steps) {
      for (const x of batch) {
        if (known.has(x)) continue
        known.add(x)
        index.add(x)
      }
      const reference = pageOf(sorted(known), request as PageRequest)
      expect(index.page(() => known, request as PageRequest)).toEqual(reference)
    }
  }, RUNS)

  it("reads all names only to build itself, then keeps up from `add`", () => {
    const index = new NameIndex()
    let reads = 0
    const all = (xs: ReadonlyArray<string>) => () => {
      reads++
      return xs
    }
    expect(index.page(all(["b", "a"]), { limit: 10 }).names).toEqual(["a", "b"])
    index.add("c")
    index.add("aa")
    expect(index.page(all([]), { limit: 10 }).names).toEqual(["a", "aa", "b", "c"])
    expect(index.page(all([]), { limit: 2, after: "a" })).toEqual({ names: ["aa", "b"], next: "b" })
    expect(reads).toBe(1)
  })
})

describe("CounterMap.page", () => {
  const e = (n: string, r: string, inc: number, dec: number): Entry => [n as CounterName, r as ReplicaId, inc, dec]

  it("pages counters with their values, and sees counters created after an earlier page", () => {
    const m = CounterMap.fromEntries([e("views", "r1", 5, 1), e("likes:1", "r1", 2, 0), e("likes:1", "r2", 3, 0)])
    expect(m.page({ limit: 10 })).toEqual({
      counters: [{ name: "likes:1", value: 5 }, { name: "views", value: 4 }]
    })
    m.apply([e("likes:0", "r2", 1, 0), e("zeta", "r1", 0, 2), e("views", "r2", 1, 0)])
    expect(m.page({ limit: 2, prefix: "likes" })).toEqual({
      counters: [{ name: "likes:0", value: 1 }, { name: "likes:1", value: 5 }]
    })
    expect(m.page({ limit: 2 })).toEqual({
      counters: [{ name: "likes:0", value: 1 }, { name: "likes:1", value: 5 }],
      next: "likes:1"
    })
    expect(m.page({ limit: 2, after: "likes:1" })).toEqual({
      counters: [{ name: "views", value: 5 }, { name: "zeta", value: -2 }]
    })
  })

  it("a clone pages the same counters (its index starts cold)", () => {
    const m = CounterMap.fromEntries([e("b", "r1", 1, 0), e("a", "r1", 2, 0)])
    m.page({ limit: 1 })
    m.apply([e("c", "r1", 3, 0)])
    const copy = m.clone()
    copy.apply([e("0", "r1", 1, 0)])
    expect(copy.page({ limit: 10 }).counters.map((c) => c.name)).toEqual(["0", "a", "b", "c"])
    expect(m.page({ limit: 10 }).counters.map((c) => c.name)).toEqual(["a", "b", "c"])
  })

  it.prop("pages of a map concatenated list every counter once, sorted, with its value", [
    fc.array(fc.tuple(name, fc.constantFrom("r1", "r2"), fc.nat({ max: 9 }), fc.nat({ max: 9 })), { maxLength: 80 }),
    limit
  ], ([raw, l]) => {
    const m = CounterMap.fromEntries(raw.map(([n, r, i, d]) => e(n, r, i, d)))
    const pages: Array<CounterMap.CounterPage> = []
    let after: CounterName | undefined = undefined
    for (let i = 0; i <= m.size + 1; i++) {
      const p: CounterMap.CounterPage = m.page({ limit: l, after })
      pages.push(p)
      if (p.next === undefined) break
      after = p.next
    }
    expect(pages.flatMap((p) => p.counters)).toEqual(m.values())
  }, RUNS)
})
