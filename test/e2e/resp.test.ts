/**
 * The Redis protocol on real node processes (`--resp-addr`): different Redis clients
 * writing to different nodes of a cluster converge on the same values; a node killed with
 * SIGKILL while clients pipeline INCRs at it loses no INCR it answered (the chaos suite's
 * ledger: every acknowledged write counted, an unanswered one at most once).
 */
import { describe, expect, it } from "@effect/vitest"
import { createClient } from "@redis/client"
import { Duration, Effect } from "effect"
import { spawn } from "node:child_process"
import * as Processes from "../../scripts/lib/Processes.js"
import { boundsOf, Ledger } from "../chaos/lib/Workload.js"
import * as LocalCluster from "./LocalCluster.js"

/** What `getValue` needs of a client (any RESP version). */
interface Getter {
  readonly get: (key: string) => Promise<unknown>
}

const connect = (port: number, RESP: 2 | 3) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const c = createClient({ socket: { host: "127.0.0.1", port, reconnectStrategy: false }, RESP })
      c.on("error", () => {})
      await c.connect()
      return c
    }),
    (c) => Effect.promise(() => (c.isOpen ? c.close() : Promise.resolve()).catch(() => undefined))
  )

const redisCli = (port: number, args: ReadonlyArray<string>) =>
  Effect.async<string, Error>((resume) => {
    const child = spawn("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...args], { stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    child.stdout.on("data", (d: Buffer) => (out += d.toString()))
    child.on("error", (e) => resume(Effect.fail(e)))
    child.on("exit", (code) => resume(code === 0 ? Effect.succeed(out) : Effect.fail(new Error(`redis-cli exited ${code}`))))
    return Effect.sync(() => child.kill("SIGKILL"))
  })

/** The value of `name` on a node over RESP (a never-written counter, nil, as 0). */
const getValue = (c: Getter, name: string) => Effect.promise(() => c.get(name).then((v) => Number(v ?? "0")))

/** A free port for each node's RESP listener. */
const respPorts = (n: number) => Effect.forEach(Array.from({ length: n }), () => Processes.freePort)

describe("RESP on real nodes", () => {
  it.live("different clients writing to different nodes converge", () =>
    Effect.gen(function*() {
      const ports = yield* respPorts(3)
      yield* LocalCluster.start({
        nodes: 3,
        gateway: false,
        nodeArgs: (i) => ["--resp-addr", `127.0.0.1:${ports[i]}`]
      })
      const a = yield* connect(ports[0]!, 2)
      const b = yield* connect(ports[1]!, 3)
      // node-redis RESP2 on node 0: pipelined increments
      yield* Effect.promise(() =>
        Promise.all(Array.from({ length: 100 }, (_, i) => a.incrBy(`views:${i % 4}`, 2)))
      )
      // node-redis RESP3 on node 1: one at a time, decrements too
      for (let i = 0; i < 40; i++) yield* Effect.promise(() => b.decrBy(`views:${i % 4}`, 1))
      // redis-cli on node 2
      for (let i = 0; i < 4; i++) yield* redisCli(ports[2]!, ["INCRBY", `views:${i}`, "100"])
      // each counter: 25 x 2 - 10 x 1 + 100
      const expected = 140
      const c2 = yield* connect(ports[2]!, 3)
      const clients: ReadonlyArray<Getter> = [a, b, c2]
      yield* LocalCluster.waitUntil(
        Effect.map(
          Effect.forEach(clients, (c) => Effect.forEach([0, 1, 2, 3], (i) => getValue(c, `views:${i}`))),
          (perNode) => perNode.every((vs) => vs.every((v) => v === expected))
        ),
        Duration.seconds(30),
        "every node to report 140 for every counter over RESP"
      )
      const mget = yield* Effect.promise(() => c2.mGet(["views:0", "views:1", "views:2", "views:3"]))
      expect(mget).toEqual(["140", "140", "140", "140"])
      // INFO replication lists the gossip peers where Redis lists replicas
      const info = yield* Effect.promise(() => c2.info("replication"))
      expect(String(info)).toMatch(/connected_peers:2/)
    }).pipe(Effect.scoped), 120_000)

  it.live("kill -9 loses no answered INCR", () =>
    Effect.gen(function*() {
      const [port] = yield* respPorts(1)
      const cluster = yield* LocalCluster.start({ nodes: 1, gateway: false, nodeArgs: () => ["--resp-addr", `127.0.0.1:${port}`] })
      const node = cluster.nodes[0]!
      const ledger = new Ledger()
      const counters = ["crash:a", "crash:b", "crash:c"]
      const ROUNDS = 4
      for (let round = 0; round < ROUNDS; round++) {
        const clients = yield* Effect.forEach([2, 3, 2, 3] as const, (resp) => connect(port!, resp))
        let stopped = false
        // each client keeps 8 INCRs in flight (pipelined) until its connection dies
        const work = clients.map(async (c, w) => {
          let n = 0
          while (!stopped) {
            const batch = Array.from({ length: 8 }, () => {
              const name = counters[(n++ + w) % counters.length]!
              return c.incr(name).then(
                () => ledger.record(name, "inc", 1, "acked", ""),
                () => {
                  ledger.record(name, "inc", 1, "indeterminate", "connection lost")
                  stopped = true
                }
              )
            })
            await Promise.all(batch)
          }
        })
        yield* Effect.sleep(Duration.millis(300 + Math.floor(Math.random() * 500)))
        node.child.kill("SIGKILL")
        yield* node.child.exited
        yield* Effect.promise(() => Promise.all(work))
        stopped = true
        yield* cluster.restart(0)
      }
      const c = yield* connect(port!, 3)
      let acked = 0
      for (const name of counters) {
        const value = yield* getValue(c, name)
        const ledgerOf = ledger.counter(name)
        const { lo, hi } = boundsOf(ledgerOf)
        acked += ledgerOf.ackedInc
        expect(value, `${name}: ${JSON.stringify(ledgerOf)}`).toBeGreaterThanOrEqual(lo)
        expect(value, `${name}: ${JSON.stringify(ledgerOf)}`).toBeLessThanOrEqual(hi)
      }
      expect(ledger.outcomes.acked).toBe(acked)
      // the test means something only if the node answered a fair number of INCRs
      expect(acked).toBeGreaterThan(200)
    }).pipe(Effect.scoped), 180_000)
})
