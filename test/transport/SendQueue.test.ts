import { describe, expect, it } from "@effect/vitest"
import type { Entry } from "../../src/crdt/Entry.js"
import { ReplicaId } from "../../src/crdt/ReplicaId.js"
import { CounterName } from "../../src/crdt/CounterName.js"
import type { HostPort, Message } from "../../src/protocol/Message.js"
import { DigestPull, Hello, PeerList, Ping, Push } from "../../src/protocol/Message.js"
import { SendQueue } from "../../src/transport/SendQueue.js"

const e = (name: string, replica: string, inc: number, dec: number): Entry => [
  CounterName.make(name),
  ReplicaId.make(replica),
  inc,
  dec
]
const hello = new Hello({
  protocol: 1,
  replicaId: ReplicaId.make("r1"),
  gossipAddr: "127.0.0.1:9001" as HostPort,
  httpAddr: "127.0.0.1:8011" as HostPort
})
const drain = (q: SendQueue): Array<Message> => q.takeUpTo(Infinity).map((x) => x.message)

describe("SendQueue", () => {
  it("queues in order while there is room", () => {
    const q = SendQueue.gossip(3)
    expect(q.offer(new Ping({ seq: 1 }))).toBe("queued")
    expect(q.offer(new Ping({ seq: 2 }))).toBe("queued")
    expect(q.shift()?.message).toEqual(new Ping({ seq: 1 }))
    expect(q.offer(new Ping({ seq: 3 }))).toBe("queued")
    expect(q.offer(new Ping({ seq: 4 }))).toBe("queued")
    expect(q.length).toBe(3)
    expect(drain(q)).toEqual([2, 3, 4].map((seq) => new Ping({ seq })))
  })

  it("full: a ping is refused", () => {
    const q = SendQueue.gossip(2)
    q.offer(new Ping({ seq: 1 }))
    q.offer(new Ping({ seq: 2 }))
    expect(q.offer(new Ping({ seq: 3 }))).toBe("dropped")
    expect(q.dropped).toBe(1)
    expect(drain(q)).toEqual([new Ping({ seq: 1 }), new Ping({ seq: 2 })])
  })

  it("full: a full push replaces every queued push", () => {
    const q = SendQueue.gossip(3)
    q.offer(new Push({ full: false, entries: [e("a", "r1", 1, 0)], digest: "d1" }))
    q.offer(new Ping({ seq: 1 }))
    q.offer(new Push({ full: true, entries: [e("a", "r1", 2, 0)], digest: "d2" }))
    const full = new Push({ full: true, entries: [e("a", "r1", 3, 0)], digest: "d3" })
    expect(q.offer(full)).toBe("queued")
    expect(q.dropped).toBe(2)
    expect(drain(q)).toEqual([new Ping({ seq: 1 }), full])
  })

  it("full: a delta push is merged into the newest queued push (pointwise max)", () => {
    const q = SendQueue.gossip(2)
    q.offer(new Push({ full: true, entries: [e("a", "r1", 5, 1), e("b", "r1", 1, 0)], digest: "d1" }))
    q.offer(new Ping({ seq: 1 }))
    const delta = new Push({ full: false, entries: [e("a", "r1", 7, 1), e("c", "r2", 2, 2)], digest: "d2" })
    expect(q.offer(delta)).toBe("coalesced")
    const [merged, ping] = drain(q)
    expect(ping).toEqual(new Ping({ seq: 1 }))
    expect(merged?._tag).toBe("Push")
    if (merged?._tag !== "Push") return
    expect(merged.full).toBe(false)
    expect(merged.digest).toBe("d2")
    expect([...merged.entries].sort()).toEqual([e("a", "r1", 7, 1), e("b", "r1", 1, 0), e("c", "r2", 2, 2)].sort())
  })

  it("full: a digest pull or peer list replaces older ones of its kind", () => {
    const q = SendQueue.gossip(3)
    q.offer(new DigestPull({ digest: "x", entries: 1 }))
    q.offer(new PeerList({ peers: [] }))
    q.offer(new DigestPull({ digest: "y", entries: 2 }))
    expect(q.offer(new DigestPull({ digest: "z", entries: 3 }))).toBe("queued")
    expect(drain(q)).toEqual([new PeerList({ peers: [] }), new DigestPull({ digest: "z", entries: 3 })])
  })

  it("full: a hello is never dropped, it evicts the oldest non-hello", () => {
    const q = SendQueue.gossip(2)
    q.offer(hello)
    q.offer(new Ping({ seq: 1 }))
    expect(q.offer(hello)).toBe("queued")
    expect(drain(q)).toEqual([hello, hello])
  })

  it("refuses a capacity below 1", () => {
    expect(() => SendQueue.gossip(0)).toThrow(RangeError)
  })
})
