/**
 * The cluster key: discovery refuses unauthenticated calls (401), and nodes holding no key
 * or another key cannot change a keyed cluster's state, neither as running nodes gossiping
 * at it nor by raw Push frames; the same Push with the right key is merged (the control
 * that shows the check could fail).
 */
import * as net from "node:net"
import * as path from "node:path"
import { CounterName } from "../../../src/crdt/CounterName.js"
import { makeReplicaId } from "../../../src/crdt/ReplicaId.js"
import * as Codec from "../../../src/protocol/Codec.js"
import * as Frame from "../../../src/protocol/Frame.js"
import { Hello, Push } from "../../../src/protocol/Message.js"
import { snapshot, waitConverged } from "./Checker.js"
import { chaosNet, Cluster, type NodeService, type Service } from "./Cluster.js"
import { pollUntil, request } from "./Http.js"
import { fetchMetrics, REJECTED_FRAMES, sumMatching } from "./Metrics.js"
import { sleep } from "./Proc.js"
import type { Summary } from "./Summary.js"

const AREA = "security"

const post = (s: Service, p: string, body: unknown, auth?: string) =>
  request({
    host: s.host,
    port: s.httpPort,
    method: "POST",
    path: p,
    body: JSON.stringify(body),
    ...(auth === undefined ? {} : { headers: { authorization: auth } }),
    timeoutMs: 5000
  })

const status = (r: Awaited<ReturnType<typeof request>>): string =>
  r.kind === "answer" ? `${r.status} ${r.text.slice(0, 120)}` : `${r.code}`

const is401 = (r: Awaited<ReturnType<typeof request>>): boolean => {
  if (r.kind !== "answer" || r.status !== 401) return false
  const b = r.json as { error?: unknown } | undefined
  return typeof b?.error === "string"
}

export const checkDiscoveryAuth = async (d: Service, key: string, summary: Summary): Promise<void> => {
  const reg = { addr: `${chaosNet()}.240:9000`, httpAddr: `${chaosNet()}.240:8010`, nodeId: "sec-probe" }
  const cases: Array<[string, string, unknown, string | undefined]> = [
    ["register without key", "/register", reg, undefined],
    ["register with a wrong key", "/register", reg, "Bearer not-the-key"],
    ["register with the key but not as Bearer", "/register", reg, key],
    ["heartbeat without key", "/heartbeat", { addr: reg.addr }, undefined],
    ["deregister without key", "/deregister", { addr: reg.addr }, undefined],
    ["deregister with a wrong key", "/deregister", { addr: reg.addr }, `Bearer ${key}x`]
  ]
  for (const [name, p, body, auth] of cases) {
    const r = await post(d, p, body, auth)
    summary.check(AREA, `discovery ${name} -> 401 JSON`, is401(r), status(r))
  }
  const peersNoKey = await request({ host: d.host, port: d.httpPort, path: "/peers", timeoutMs: 3000 })
  summary.check(AREA, "discovery GET /peers without key -> 401 (issue 7)", is401(peersNoKey), status(peersNoKey))
  const health = await request({ host: d.host, port: d.httpPort, path: "/health", timeoutMs: 3000 })
  summary.check(AREA, "discovery /health needs no key", health.kind === "answer" && health.status === 200, status(health))
  const ok = await post(d, "/register", reg, `Bearer ${key}`)
  summary.check(AREA, "discovery register with the key -> 200", ok.kind === "answer" && ok.status === 200, status(ok))
  const peers = await request({ host: d.host, port: d.httpPort, path: "/peers", headers: { authorization: `Bearer ${key}` }, timeoutMs: 3000 })
  const listed = peers.kind === "answer" && Array.isArray(peers.json) && (peers.json as Array<{ addr?: string }>).some((p) => p.addr === reg.addr)
  summary.check(AREA, "discovery lists a peer registered with the key", listed, status(peers))
  const dereg = await post(d, "/deregister", { addr: reg.addr }, `Bearer ${key}`)
  summary.check(AREA, "discovery deregister with the key -> 200", dereg.kind === "answer" && dereg.status === 200, status(dereg))
}

/** Sends frames on one connection and waits for the node to close it (bounded). */
export const sendFrames = (host: string, port: number, frames: ReadonlyArray<Uint8Array>): Promise<void> =>
  new Promise((resolve) => {
    const s = net.connect({ host, port })
    const t = setTimeout(() => s.destroy(), 3000)
    s.on("error", () => undefined)
    s.on("data", () => undefined)
    s.on("close", () => {
      clearTimeout(t)
      resolve()
    })
    s.on("connect", () => {
      s.write(Buffer.concat(frames.map((f) => Buffer.from(f))))
      // keep the connection open a moment, as a peer would, then close
      setTimeout(() => s.end(), 500)
    })
  })

const valueOn = async (n: NodeService, counter: string): Promise<number> => {
  const b = (await n.getJson(`/counters/${counter}`)) as { value?: number }
  return b.value ?? Number.NaN
}

export const runSecurity = async (runDir: string, summary: Summary): Promise<void> => {
  const key = `chaos-key-${Math.floor(Math.random() * 1e9)}`
  const timings = ["--sync-interval", "300ms", "--heartbeat-interval", "250ms", "--failure-timeout", "3s"]
  const keyed = await Cluster.create({
    runDir: path.join(runDir, "keyed"),
    nodes: 3,
    discovery: true,
    gateway: false,
    clusterKey: key,
    staticPeers: true,
    nodeArgs: timings,
    firstHost: 20
  })
  // intruders: one with another key, one with none; they know the keyed nodes as peers and
  // try the keyed discovery too
  const peers = keyed.nodes.map((n) => n.gossipAddr).join(",")
  const wrongKey = await Cluster.create({
    runDir: path.join(runDir, "wrongkey"),
    nodes: 1,
    discovery: false,
    gateway: false,
    clusterKey: `${key}-other`,
    nodeArgs: [...timings, "--peers", peers, "--discovery", keyed.discovery!.httpAddr],
    firstHost: 30
  })
  const noKey = await Cluster.create({
    runDir: path.join(runDir, "nokey"),
    nodes: 1,
    discovery: false,
    gateway: false,
    nodeArgs: [...timings, "--peers", peers, "--discovery", keyed.discovery!.httpAddr],
    firstHost: 31
  })
  try {
    // the intruders start with the keyed cluster (they only know its addresses) to save time
    await keyed.discovery!.proc.start()
    await keyed.discovery!.waitReady()
    await Promise.all([
      (async () => {
        for (const n of keyed.nodes) n.proc.start()
        await Promise.all(keyed.nodes.map((n) => n.waitReady(120_000)))
      })(),
      wrongKey.start(),
      noKey.start()
    ])
    await checkDiscoveryAuth(keyed.discovery!, key, summary)
    const [a, b] = keyed.nodes
    for (let i = 0; i < 10; i++) await post(a!, "/counters/secure/increment", { by: 1 })
    const base = await waitConverged(keyed.nodes, ["secure"], 20_000)
    summary.check(AREA, "keyed cluster converges", base.converged, JSON.stringify([...base.last.values.entries()].map(([k, v]) => [k, [...v]])))
    const intruders = [...wrongKey.nodes, ...noKey.nodes]
    for (const x of intruders) {
      for (let i = 0; i < 5; i++) {
        await post(x, "/counters/secure/increment", { by: 1000 })
        await post(x, "/counters/intrusion/increment", { by: 7 })
        await post(x, "/increment", { by: 3 })
      }
    }
    // several sync intervals and full syncs of both sides
    await sleep(4000)
    const after = await snapshot(keyed.nodes, ["secure", "intrusion", "default"])
    const clean = keyed.nodes.every(
      (n) =>
        after.values.get(n.name)?.get("secure") === 10 &&
        (after.values.get(n.name)?.get("intrusion") ?? 0) === 0 &&
        (after.values.get(n.name)?.get("default") ?? 0) === 0
    )
    summary.check(
      AREA,
      "nodes without the key or with another cannot change the keyed cluster's values",
      clean,
      JSON.stringify([...after.values.entries()].map(([k, v]) => [k, [...v]]))
    )
    const states = await Promise.all(keyed.nodes.map((n) => n.getJson("/state") as Promise<{ increments?: Record<string, number> }>))
    const intruderIds = await Promise.all(intruders.map(async (x) => ((await x.getJson("/state")) as { nodeId?: string }).nodeId))
    const leaked = states.some((s) => intruderIds.some((id) => id !== undefined && Object.hasOwn(s.increments ?? {}, id)))
    summary.check(AREA, "no intruder's replica appears in the keyed nodes' /state", !leaked, JSON.stringify(intruderIds))
    // nothing but the intruders sends the keyed nodes bad frames, so any rejection is theirs
    const rejectedAfter = (await Promise.all(keyed.nodes.map(async (n) => sumMatching((await fetchMetrics(n)).samples, REJECTED_FRAMES).sum))).reduce((x, y) => x + y, 0)
    summary.check(AREA, "the intruders' frames show as rejected in the keyed nodes' /metrics", rejectedAfter > 0, `${rejectedAfter} rejected`)
    const dpeers = (await request({
      host: keyed.discovery!.host,
      port: keyed.discovery!.httpPort,
      path: "/peers",
      headers: { authorization: `Bearer ${key}` },
      timeoutMs: 3000
    }))
    const listedIntruder = dpeers.kind === "answer" && Array.isArray(dpeers.json) && (dpeers.json as Array<{ addr?: string }>).some((p) => intruders.some((x) => p.addr === x.gossipAddr))
    summary.check(AREA, "keyed discovery does not list the intruders", !listedIntruder, status(dpeers))

    // raw Push frames at a keyed node: untagged and wrongly tagged are dropped ...
    const forged = (entriesValue: number) =>
      Codec.encode(
        new Push({ full: true, digest: "forged", entries: [[CounterName.make("secure"), makeReplicaId(), entriesValue, 0]] })
      )
    const hello = (k: string | undefined) =>
      Frame.encode(
        Codec.encode(new Hello({ protocol: 1, replicaId: makeReplicaId(), gossipAddr: `${chaosNet()}.241:9`, httpAddr: `${chaosNet()}.241:9` })),
        k
      )
    await sendFrames(b!.host, b!.gossipPort, [hello(undefined), Frame.encode(forged(1_000_000))])
    await sendFrames(b!.host, b!.gossipPort, [hello(`${key}!`), Frame.encode(forged(2_000_000), `${key}!`)])
    await sendFrames(b!.host, b!.gossipPort, [hello(key), Frame.encode(forged(3_000_000), "")])
    await sleep(1500)
    const v = await Promise.all(keyed.nodes.map((n) => valueOn(n, "secure")))
    summary.check(AREA, "forged Push frames without the key, with another key or an empty key change nothing", v.every((x) => x === 10), v.join(","))
    // ... and the control: the same forged Push with the key is merged everywhere
    await sendFrames(b!.host, b!.gossipPort, [hello(key), Frame.encode(forged(5), key)])
    const merged = await pollUntil("the keyed Push is merged", 10_000, 200, async () => {
      const vs = await Promise.all(keyed.nodes.map((n) => valueOn(n, "secure")))
      return vs.every((x) => x === 15) ? vs : undefined
    }).catch((e: unknown) => String(e))
    summary.check(AREA, "control: the same Push with the key is merged (15 everywhere)", Array.isArray(merged), String(merged))
  } finally {
    await noKey.stop()
    await wrongKey.stop()
    await keyed.stop()
  }
}
