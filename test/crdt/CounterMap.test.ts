import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck as fc } from "effect"
import * as CounterMap from "../../src/crdt/CounterMap.js"
import type { CounterName } from "../../src/crdt/CounterName.js"
import type { Entry } from "../../src/crdt/Entry.js"
import type { ReplicaId } from "../../src/crdt/ReplicaId.js"
import { canonical, count, counterName, entries, MAX, referenceState, replicaId, trickyNames } from "./arbitraries.js"

const RUNS = { fastCheck: { numRuns: 1000 } }

const state = (es: ReadonlyArray<Entry>) => CounterMap.fromEntries(es)
/** The same state, two independent ways: the digest, and the canonical entry list. */
const expectSame = (a: CounterMap.CounterMap, b: CounterMap.CounterMap) => {
  expect(canonical(a.entries())).toBe(canonical(b.entries()))
  expect(a.digest()).toBe(b.digest())
}

const n = (s: string) => s as CounterName
const r = (s: string) => s as ReplicaId

describe("CounterMap merge", () => {
  it.prop("is commutative", [entries, entries], ([a, b]) => {
    expectSame(CounterMap.merge(state(a), state(b)), CounterMap.merge(state(b), state(a)))
  }, RUNS)

  it.prop("is associative", [entries, entries, entries], ([a, b, c]) => {
    const left = CounterMap.merge(CounterMap.merge(state(a), state(b)), state(c))
    const right = CounterMap.merge(state(a), CounterMap.merge(state(b), state(c)))
    expectSame(left, right)
  }, RUNS)

  it.prop("is idempotent", [entries, entries], ([a, b]) => {
    const ab = CounterMap.merge(state(a), state(b))
    expectSame(CounterMap.merge(ab, ab), ab)
    expectSame(CounterMap.merge(ab, state(b)), ab)
  }, RUNS)

  it.prop("is the pointwise maximum", [entries, entries], ([a, b]) => {
    expect(canonical(CounterMap.merge(state(a), state(b)).entries())).toBe(canonical(referenceState(a, b)))
  }, RUNS)

  it.prop("changes neither argument", [entries, entries], ([a, b]) => {
    const sa = state(a)
    const sb = state(b)
    const before = [canonical(sa.entries()), canonical(sb.entries()), sa.digest(), sb.digest(), sa.version]
    CounterMap.merge(sa, sb)
    expect([canonical(sa.entries()), canonical(sb.entries()), sa.digest(), sb.digest(), sa.version]).toEqual(before)
  }, RUNS)

  it.prop("apply returns exactly the raised entries", [entries, entries], ([a, b]) => {
    const m = state(a)
    const before = m.clone()
    const changed = m.apply(b)
    // applying only the changed entries to the old state gives the new state
    before.apply(changed)
    expectSame(before, m)
    // every changed entry strictly raised something, and the last one per key is the
    // map's totals now (a batch may raise the same key twice)
    const old = state(a)
    const last = new Map<string, Entry>()
    for (const e of changed) {
      const [name, replica, inc, dec] = e
      const t = old.totals(name, replica)
      expect(inc > t.inc || dec > t.dec).toBe(true)
      old.apply([e])
      last.set(`${name}\u0000${replica}`, e)
    }
    for (const [name, replica, inc, dec] of last.values()) expect(m.totals(name, replica)).toEqual({ inc, dec })
  }, RUNS)
})

describe("CounterMap value", () => {
  const op = fc.record({
    at: fc.nat({ max: 3 }),
    name: counterName,
    kind: fc.constantFrom("inc" as const, "dec" as const),
    by: fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 1, max: 1000 }) }, { weight: 1, arbitrary: fc.maxSafeNat() }),
    syncWith: fc.option(fc.nat({ max: 3 }), { nil: undefined })
  })

  it.prop(
    "= sum(increments) - sum(decrements) over 4 replicas that write and merge at random",
    [fc.array(op, { maxLength: 60 })],
    ([ops]) => {
      const ids = [r("r0"), r("r1"), r("r2"), r("r3")]
      const replicas = ids.map(() => new CounterMap.CounterMap())
      const expected = new Map<CounterName, bigint>()
      for (const o of ops) {
        const m = replicas[o.at]!
        const prepared = m.prepare(o.name, ids[o.at]!, o.kind, o.by)
        if (Either.isRight(prepared)) {
          m.apply([prepared.right])
          const delta = BigInt(o.kind === "inc" ? o.by : -o.by)
          expected.set(o.name, (expected.get(o.name) ?? 0n) + delta)
        }
        if (o.syncWith !== undefined) replicas[o.syncWith]!.apply(m.entries())
      }
      const all = replicas.reduce(CounterMap.merge, new CounterMap.CounterMap())
      for (const [name, v] of expected) {
        // local writes are capped, but concurrent replicas can jointly pass 2^53-1: value
        // is then clamped, never rounded
        const clamped = v > BigInt(MAX) ? MAX : v < -BigInt(MAX) ? -MAX : Number(v)
        expect(all.value(name)).toBe(clamped)
      }
      // every replica converges to the same state after a full exchange
      for (const m of replicas) m.apply(all.entries())
      for (const m of replicas) expectSame(m, all)
    },
    RUNS
  )

  it.prop("of a single replica is exactly its inc - dec", [fc.array(op, { maxLength: 40 })], ([ops]) => {
    const m = new CounterMap.CounterMap()
    let expected = 0
    const name = n("default")
    for (const o of ops) {
      const p = m.prepare(name, r("me"), o.kind, o.by)
      if (Either.isRight(p)) {
        m.apply([p.right])
        expected += o.kind === "inc" ? o.by : -o.by
      }
    }
    expect(m.value(name)).toBe(expected)
    expect(Number.isSafeInteger(m.value(name))).toBe(true)
  }, RUNS)

  it("reads 0 for a counter never written", () => {
    const m = state([[n("a"), r("x"), 3, 1]])
    expect(m.value(n("b"))).toBe(0)
    expect(m.has(n("b"))).toBe(false)
    expect(m.totals(n("b"), r("x"))).toEqual({ inc: 0, dec: 0 })
  })

  it("clamps a merged value past 2^53-1 instead of rounding it", () => {
    const m = state([
      [n("c"), r("a"), MAX, 0],
      [n("c"), r("b"), MAX, 0],
      [n("c"), r("z"), 0, 5]
    ])
    expect(m.value(n("c"))).toBe(MAX)
    const d = state([
      [n("c"), r("a"), MAX - 3, MAX],
      [n("c"), r("b"), 0, 10]
    ])
    // exact with bigint: (MAX - 3) - (MAX + 10) = -13, even though sumDec passed 2^53-1
    expect(d.value(n("c"))).toBe(-13)
  })
})

describe("CounterMap overflow", () => {
  const write = fc.record({
    name: fc.constantFrom(n("a"), n("b")),
    replica: fc.constantFrom(r("r1"), r("r2")),
    kind: fc.constantFrom("inc" as const, "dec" as const),
    by: fc.oneof(
      fc.integer({ min: 1, max: 10 }),
      fc.integer({ min: MAX - 10, max: MAX }),
      fc.integer({ min: 2 ** 51, max: 2 ** 52 }),
      fc.constantFrom(0, -1, 1.5, MAX + 1, Number.NaN, Infinity)
    )
  })

  it.prop(
    "prepare never lets an entry or a sum pass 2^53-1: it refuses with Overflow and changes nothing",
    [fc.array(write, { maxLength: 30 })],
    ([writes]) => {
      const m = new CounterMap.CounterMap()
      for (const w of writes) {
        const before = { digest: m.digest(), version: m.version, all: canonical(m.entries()) }
        const p = m.prepare(w.name, w.replica, w.kind, w.by)
        const valid = Number.isSafeInteger(w.by) && w.by > 0
        if (Either.isLeft(p)) {
          expect(p.left._tag).toBe("Overflow")
          expect({ digest: m.digest(), version: m.version, all: canonical(m.entries()) }).toEqual(before)
          if (valid) {
            const t = m.totals(w.name, w.replica)
            const c = m.counter(w.name)
            let sum = 0
            for (const x of c.replicas.values()) sum += w.kind === "inc" ? x.inc : x.dec
            const current = w.kind === "inc" ? t.inc : t.dec
            expect(current + w.by > MAX || sum + w.by > MAX).toBe(true)
          }
        } else {
          expect(valid).toBe(true)
          m.apply([p.right])
        }
        for (const [, , inc, dec] of m.entries()) {
          expect(inc).toBeLessThanOrEqual(MAX)
          expect(dec).toBeLessThanOrEqual(MAX)
        }
        for (const name of m.names()) {
          let si = 0
          let sd = 0
          for (const x of m.counter(name).replicas.values()) {
            si += x.inc
            sd += x.dec
          }
          expect(si).toBeLessThanOrEqual(MAX)
          expect(sd).toBeLessThanOrEqual(MAX)
        }
      }
    },
    RUNS
  )

  it.prop("add is pure: Right holds the write, Left leaves the map alone", [entries, fc.array(write, { maxLength: 10 })], ([es, writes]) => {
    let m = state(es)
    for (const w of writes) {
      const before = canonical(m.entries())
      const next = CounterMap.add(m, w.name, w.replica, w.kind, w.by)
      expect(canonical(m.entries())).toBe(before)
      if (Either.isRight(next)) {
        const t0 = m.totals(w.name, w.replica)
        const t1 = next.right.totals(w.name, w.replica)
        expect(t1).toEqual(w.kind === "inc" ? { inc: t0.inc + w.by, dec: t0.dec } : { inc: t0.inc, dec: t0.dec + w.by })
        m = next.right
      } else {
        expect(next.left._tag).toBe("Overflow")
      }
    }
  }, RUNS)

  it("refuses the write that would pass 2^53-1 by one, accepts the one that reaches it", () => {
    const m = new CounterMap.CounterMap()
    m.apply([Either.getOrThrow(m.prepare(n("a"), r("x"), "inc", MAX - 1))])
    expect(Either.isLeft(m.prepare(n("a"), r("x"), "inc", 2))).toBe(true)
    expect(Either.isLeft(m.prepare(n("a"), r("y"), "inc", 2))).toBe(true) // the counter's sum
    expect(Either.isRight(m.prepare(n("a"), r("y"), "dec", MAX))).toBe(true) // decrements sum apart
    expect(Either.isRight(m.prepare(n("b"), r("x"), "inc", MAX))).toBe(true) // another counter
    m.apply([Either.getOrThrow(m.prepare(n("a"), r("y"), "inc", 1))])
    expect(m.value(n("a"))).toBe(MAX)
  })
})

describe("CounterMap deltaSince", () => {
  it.prop(
    "merging deltaSince(v) into a replica that had the state at version v equals merging the full state",
    [entries, entries, entries, fc.array(entries, { maxLength: 4 })],
    ([base, other, later, laterBatches]) => {
      const m = state(base)
      const v = m.version
      const atV = m.clone()
      m.apply(later)
      for (const b of laterBatches) m.apply(b)
      // a replica that has seen version v, plus whatever else it learned elsewhere
      const replica = CounterMap.merge(atV, state(other))
      const viaDelta = replica.clone()
      viaDelta.apply(m.deltaSince(v))
      const viaFull = replica.clone()
      viaFull.apply(m.entries())
      expectSame(viaDelta, viaFull)
      // and the delta holds only entries that changed after v
      for (const [name, rep, inc, dec] of m.deltaSince(v)) {
        const t = atV.totals(name, rep)
        expect(inc > t.inc || dec > t.dec).toBe(true)
      }
    },
    RUNS
  )

  it.prop("deltaSince(0) is the full state and deltaSince(version) is empty", [entries], ([es]) => {
    const m = state(es)
    expect(canonical(m.deltaSince(0))).toBe(canonical(referenceState(es)))
    expect(m.deltaSince(m.version)).toEqual([])
    expect(m.deltaSince(m.version + 5)).toEqual([])
    expect(m.entries().length).toBe(m.entryCount)
  }, RUNS)

  it.prop("a clone keeps versions: its deltas match the original's", [entries, entries], ([a, b]) => {
    const m = state(a)
    const v = m.version
    m.apply(b)
    const c = m.clone()
    expect(c.version).toBe(m.version)
    expect(c.deltaSince(v)).toEqual(m.deltaSince(v))
    expect(c.digest()).toBe(m.digest())
  }, RUNS)
})

describe("CounterMap digest", () => {
  it.prop(
    "is equal for equal states built in different orders, batches and with stale duplicates",
    [entries.chain((es) => fc.tuple(fc.constant(es), fc.shuffledSubarray([...es], { minLength: es.length, maxLength: es.length }), fc.nat({ max: 5 })))],
    ([[es, shuffled, cut]]) => {
      const a = state(es)
      const b = new CounterMap.CounterMap()
      // half the entries lowered first (stale copies), then everything in another order and
      // in batches, with a digest taken in between so the incremental path is exercised
      b.apply(shuffled.map(([nm, rp, i, d]) => [nm, rp, Math.floor(i / 2), Math.floor(d / 2)] as Entry))
      b.digest()
      b.apply(shuffled.slice(0, cut))
      b.digest()
      b.apply(shuffled.slice(cut))
      expect(b.digest()).toBe(a.digest())
      // and a freshly built copy agrees with the incrementally maintained one
      expect(state(b.entries()).digest()).toBe(b.digest())
    },
    RUNS
  )

  it.prop("differs for different states", [entries, entries], ([a, b]) => {
    const sa = state(a)
    const sb = state(b)
    const same = canonical(sa.entries()) === canonical(sb.entries())
    expect(sa.digest() === sb.digest()).toBe(same)
  }, RUNS)

  it.prop("changes with every change and is stable otherwise", [entries, counterName, replicaId, count], ([es, name, rep, c]) => {
    const m = state(es)
    const d0 = m.digest()
    expect(m.digest()).toBe(d0)
    const t = m.totals(name, rep)
    if (t.inc === MAX && t.dec === MAX) return
    const raised: Entry = t.inc < MAX ? [name, rep, t.inc + 1, Math.max(t.dec, c)] : [name, rep, t.inc, t.dec + 1]
    const changed = m.apply([raised])
    expect(changed.length).toBe(1)
    expect(m.digest()).not.toBe(d0)
  }, RUNS)

  it("is 64 hex characters, and the empty state's is fixed", () => {
    expect(new CounterMap.CounterMap().digest()).toBe("0".repeat(64))
    expect(state([[n("a"), r("b"), 1, 0]]).digest()).toMatch(/^[0-9a-f]{64}$/)
  })
})

describe("CounterMap names", () => {
  it("keeps counters named like Object.prototype members apart", () => {
    const m = new CounterMap.CounterMap()
    trickyNames.forEach((name, i) => m.apply([[name, r("x"), i + 1, 0]]))
    trickyNames.forEach((name, i) => expect(m.value(name)).toBe(i + 1))
    expect(m.size).toBe(trickyNames.length)
    expect(m.values().map((v) => v.name)).toEqual([...trickyNames].sort())
    expect(m.value(n("__proto__"))).toBe(1)
    expect(Object.prototype.hasOwnProperty.call(Object.prototype, "x")).toBe(false)
  })

  it("clone is independent of the original", () => {
    const m = state([[n("a"), r("x"), 1, 0]])
    const c = m.clone()
    c.apply([[n("a"), r("x"), 5, 0], [n("b"), r("y"), 1, 1]])
    expect(m.value(n("a"))).toBe(1)
    expect(m.size).toBe(1)
    expect(c.value(n("a"))).toBe(5)
    m.apply([[n("z"), r("x"), 9, 0]])
    expect(c.has(n("z"))).toBe(false)
  })

  it("ignores zero entries for unknown slots and never goes backwards", () => {
    const m = state([[n("a"), r("x"), 0, 0]])
    expect(m.size).toBe(0)
    expect(m.version).toBe(0)
    m.apply([[n("a"), r("x"), 5, 2]])
    expect(m.apply([[n("a"), r("x"), 3, 1]])).toEqual([])
    expect(m.totals(n("a"), r("x"))).toEqual({ inc: 5, dec: 2 })
    expect(m.apply([[n("a"), r("x"), 4, 3]])).toEqual([[n("a"), r("x"), 5, 3]])
  })
})

/**
 * The compact map against a plain reference model: a Map of entries with the version at
 * which each last grew, written independently of the class.
 */
describe("CounterMap against a reference model", () => {
  interface Model {
    readonly entries: Map<string, { name: CounterName; replica: ReplicaId; inc: number; dec: number; version: number }>
    /** counter names in the order they were first created */
    readonly names: Array<CounterName>
    version: number
  }
  const emptyModel = (): Model => ({ entries: new Map(), names: [], version: 0 })
  const copyModel = (m: Model): Model => ({
    entries: new Map([...m.entries].map(([k, e]) => [k, { ...e }])),
    names: [...m.names],
    version: m.version
  })
  /** The model's apply: the raised entries with their resulting totals. */
  const modelApply = (m: Model, es: ReadonlyArray<Entry>): Array<Entry> => {
    const out: Array<Entry> = []
    for (const [name, replica, inc, dec] of es) {
      const k = `${name}\u0000${replica}`
      const e = m.entries.get(k)
      if (e === undefined) {
        if (inc === 0 && dec === 0) continue
        if (!m.names.includes(name)) m.names.push(name)
        m.entries.set(k, { name, replica, inc, dec, version: ++m.version })
        out.push([name, replica, inc, dec])
      } else if (inc > e.inc || dec > e.dec) {
        e.inc = Math.max(e.inc, inc)
        e.dec = Math.max(e.dec, dec)
        e.version = ++m.version
        out.push([name, replica, e.inc, e.dec])
      }
    }
    return out
  }
  const modelDelta = (m: Model, v: number): Array<Entry> =>
    [...m.entries.values()]
      .filter((e) => e.version > v)
      .sort((a, b) => a.version - b.version)
      .map((e): Entry => [e.name, e.replica, e.inc, e.dec])

  const expectLikeModel = (cm: CounterMap.CounterMap, m: Model) => {
    expect(cm.version).toBe(m.version)
    expect(cm.entryCount).toBe(m.entries.size)
    expect(cm.size).toBe(m.names.length)
    expect(cm.names()).toEqual(m.names)
    for (let v = 0; v <= m.version + 1; v++) expect(cm.deltaSince(v)).toEqual(modelDelta(m, v))
    expect(cm.entries()).toEqual(modelDelta(m, 0))
    expect(cm.values().map((x) => x.name)).toEqual([...m.names].sort())
    for (const name of m.names) {
      const own = [...m.entries.values()].filter((e) => e.name === name)
      expect([...cm.counter(name).replicas]).toEqual(own.map((e) => [e.replica, { inc: e.inc, dec: e.dec }]))
      let si = 0n
      let sd = 0n
      for (const e of own) {
        si += BigInt(e.inc)
        sd += BigInt(e.dec)
        expect(cm.totals(name, e.replica)).toEqual({ inc: e.inc, dec: e.dec })
      }
      const v = si - sd
      const max = BigInt(MAX)
      expect(cm.value(name)).toBe(Number(v > max ? max : v < -max ? -max : v))
    }
    // the digest of the same state built at once, in another order
    expect(state([...modelDelta(m, 0)].reverse()).digest()).toBe(cm.digest())
  }

  const op = fc.oneof(
    { weight: 4, arbitrary: fc.record({ _tag: fc.constant("apply" as const), entries }) },
    { weight: 2, arbitrary: fc.record({ _tag: fc.constant("applyOne" as const), entry: fc.tuple(counterName, replicaId, count, count) }) },
    {
      weight: 3,
      arbitrary: fc.record({
        _tag: fc.constant("write" as const),
        name: counterName,
        replica: replicaId,
        kind: fc.constantFrom("inc" as const, "dec" as const),
        by: fc.oneof(fc.integer({ min: 1, max: 100 }), fc.maxSafeNat())
      })
    },
    { weight: 1, arbitrary: fc.constant({ _tag: "digest" as const }) },
    { weight: 1, arbitrary: fc.constant({ _tag: "clone" as const }) }
  )

  it.prop("behaves exactly like the model under apply, applyOne, writes, digests and clones", [fc.array(op, { maxLength: 25 })], ([ops]) => {
    let cm = new CounterMap.CounterMap()
    let m = emptyModel()
    for (const o of ops) {
      switch (o._tag) {
        case "apply":
          expect(cm.apply(o.entries)).toEqual(modelApply(m, o.entries))
          break
        case "applyOne": {
          const [name, replica, inc, dec] = o.entry
          expect(cm.applyOne(name, replica, inc, dec)).toBe(modelApply(m, [o.entry]).length === 1)
          break
        }
        case "write": {
          const p = cm.prepare(o.name, o.replica, o.kind, o.by)
          if (Either.isRight(p)) expect(cm.apply([p.right])).toEqual(modelApply(m, [p.right]))
          break
        }
        case "digest":
          cm.digest()
          break
        case "clone": {
          // carry on with the clone: the original keeps its state whatever the clone does
          const original = cm
          const before = { entries: original.entries(), digest: original.digest() }
          cm = original.clone()
          m = copyModel(m)
          cm.apply([[n("clone-only"), r("x"), 1, 0]])
          modelApply(m, [[n("clone-only"), r("x"), 1, 0]])
          expect({ entries: original.entries(), digest: original.digest() }).toEqual(before)
          break
        }
      }
    }
    expectLikeModel(cm, m)
  }, { fastCheck: { numRuns: 300 } })

  it.prop("entriesAt walks every entry in creation order, in chunks of any size", [entries, fc.integer({ min: 1, max: 7 })], ([es, chunk]) => {
    const cm = state(es)
    const walked: Array<Entry> = []
    for (let at = 0; at < cm.entryCount; at += chunk) walked.push(...cm.entriesAt(at, chunk))
    expect(walked.length).toBe(cm.entryCount)
    expect(canonical(walked)).toBe(canonical(cm.entries()))
    expect(cm.entriesAt(cm.entryCount, chunk)).toEqual([])
  }, RUNS)

  it.prop("entriesAt sees every entry that existed when a walk began, at least as high, while the map changes", [entries, entries], ([a, b]) => {
    const cm = state(a)
    const before = cm.clone()
    const count = cm.entryCount
    const walked: Array<Entry> = []
    for (let at = 0; at < count; at += 2) {
      walked.push(...cm.entriesAt(at, Math.min(2, count - at)))
      cm.apply(b.slice(at, at + 2))
    }
    // everything it held at the start is covered by the walk
    const covered = state(walked)
    for (const [name, replica, inc, dec] of before.entries()) {
      const t = covered.totals(name, replica)
      expect(t.inc >= inc && t.dec >= dec).toBe(true)
    }
    expect(walked.length).toBe(count)
  }, RUNS)

  it.prop(
    "digests are equal exactly when the states are, however each was built",
    [entries, entries, fc.nat({ max: 30 })],
    ([a, b, cut]) => {
      const x = state(a)
      const y = new CounterMap.CounterMap()
      const reordered = [...b].reverse()
      y.apply(reordered.slice(0, cut))
      y.digest()
      for (const [name, replica, inc, dec] of reordered.slice(cut)) y.applyOne(name, replica, inc, dec)
      const same = canonical(x.entries()) === canonical(y.entries())
      expect(x.digest() === y.digest()).toBe(same)
      // a near miss: one total one higher is another digest
      const first = x.entries()[0]
      if (first !== undefined && first[2] < MAX) {
        const z = x.clone()
        z.apply([[first[0], first[1], first[2] + 1, first[3]]])
        expect(z.digest()).not.toBe(x.digest())
      }
    },
    RUNS
  )

  it("keeps 10,000 counters of 3 replicas each exactly (growth of every table)", () => {
    const cm = new CounterMap.CounterMap()
    const es: Array<Entry> = []
    for (let i = 0; i < 10_000; i++) {
      for (const rep of ["a", "b", "c"]) es.push([n(`c:${i}`), r(rep), i + 1, i % 3])
    }
    expect(cm.apply(es).length).toBe(30_000)
    expect(cm.size).toBe(10_000)
    expect(cm.entryCount).toBe(30_000)
    expect(cm.value(n("c:9999"))).toBe(3 * 10_000 - 3 * (9999 % 3))
    expect(cm.deltaSince(30_000 - 3)).toEqual(es.slice(-3))
    expect(state([...es].reverse()).digest()).toBe(cm.digest())
    expect(cm.clone().entries()).toEqual(es)
  })
})
