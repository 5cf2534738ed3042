import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import * as Codec from "../../src/protocol/Codec.js"
import { Push } from "../../src/protocol/Message.js"
import { fromEntries } from "../../src/crdt/CounterMap.js"
import type { Entry } from "../../src/crdt/Entry.js"

describe("smoke", () => {
  it("codec round-trips a push", () => {
    const entries = [["default", "abc", 3, 1]] as unknown as ReadonlyArray<Entry>
    const m = fromEntries(entries)
    const msg = new Push({ full: true, entries: m.entries(), digest: m.digest() })
    const back = Codec.decode(Codec.encode(msg))
    expect(Either.isRight(back)).toBe(true)
    expect(Either.getOrThrow(back)).toEqual(msg)
    expect(m.value("default" as never)).toBe(2)
  })
})
