/**
 * Hostile HTTP input against a running discovery + 2 nodes + gateway: every case gets its
 * documented 4xx, the state of every node is the same before and after, slow clients do
 * not slow the servers down, and a normal request still works at the end.
 */
import { readCounters, waitConverged } from "./Checker.js"
import { Cluster, type Service } from "./Cluster.js"
import { latencyProbe, percentile, runHostileHttp, slowloris } from "./HttpHostile.js"
import { request } from "./Http.js"
import type { Summary } from "./Summary.js"

const AREA = "http"

const stateOf = async (s: Service): Promise<string> => JSON.stringify(await s.getJson("/state"))

export const runHttpScenario = async (runDir: string, summary: Summary): Promise<void> => {
  const cluster = await Cluster.create({
    runDir,
    nodes: 2,
    discovery: true,
    gateway: true,
    staticPeers: true,
    nodeArgs: ["--sync-interval", "300ms", "--heartbeat-interval", "250ms"],
    gatewayArgs: ["--refresh-interval", "500ms"],
    firstHost: 40
  })
  const [node, other] = cluster.nodes
  const gateway = cluster.gateway!
  try {
    await cluster.start()
    // some state to protect
    for (const [p, by] of [["/increment", 5], ["/counters/hostile/increment", 9], ["/counters/hostile/decrement", 2]] as const) {
      const r = await request({ host: node!.host, port: node!.httpPort, method: "POST", path: p, body: JSON.stringify({ by }), timeoutMs: 5000 })
      summary.check(AREA, `setup POST ${p} -> 200`, r.kind === "answer" && r.status === 200, r.kind === "answer" ? `${r.status}` : r.code)
    }
    const before = await waitConverged(cluster.nodes, ["default", "hostile"], 20_000)
    summary.check(AREA, "setup converges", before.converged)
    const statesBefore = await Promise.all(cluster.nodes.map(stateOf))
    const countersBefore = await Promise.all(cluster.nodes.map(readCounters))

    const sent = await runHostileHttp({ node: node!, gateway, discovery: cluster.discovery }, summary, AREA)
    summary.figure("hostile HTTP requests", sent)

    // slow clients on the node and the gateway at once, while normal requests are timed
    const [slowNode, slowGateway] = await Promise.all([slowloris(node!, "/increment", 150, 8000), slowloris(gateway, "/increment", 150, 8000)])
    for (const [name, s] of [["node", slowNode], ["gateway", slowGateway]] as const) {
      const p99 = percentile(s.latencies, 99)
      // a generous bound: slow clients must not starve the server; load noise must not fail it
      summary.check(AREA, `${name} answers (each within 3s) while 150 slow clients hold connections`, s.failures === 0 && p99 <= 3000, `p99 ${p99}ms, failures ${s.failures}, slow connections opened ${s.opened}`)
      summary.figure(`${name} /health p99 during slowloris (ms)`, p99)
    }

    // nothing changed anywhere
    await new Promise((r) => setTimeout(r, 1000))
    const statesAfter = await Promise.all(cluster.nodes.map(stateOf))
    const countersAfter = await Promise.all(cluster.nodes.map(readCounters))
    summary.check(AREA, "/state of every node unchanged by hostile input", statesAfter.every((s, i) => s === statesBefore[i]), `${statesBefore.join(" ")} -> ${statesAfter.join(" ")}`)
    summary.check(
      AREA,
      "/counters of every node unchanged by hostile input",
      countersAfter.every((c, i) => JSON.stringify([...c].sort()) === JSON.stringify([...countersBefore[i]!].sort())),
      JSON.stringify(countersAfter.map((c) => [...c]))
    )

    // still fast, and still working
    for (const s of [node!, other!, gateway]) {
      const probe = await latencyProbe(s, "/counter", 50)
      const max = Math.max(...probe.ms)
      summary.check(AREA, `${s.name} still fast afterwards (50 GET /counter, each within 3s)`, probe.failures === 0 && max <= 3000, `p50 ${percentile(probe.ms, 50)}ms max ${max}ms failures ${probe.failures}`)
      summary.figure(`${s.name} GET /counter p50 after hostile input (ms)`, percentile(probe.ms, 50))
    }
    const ok = await request({ host: gateway.host, port: gateway.httpPort, method: "POST", path: "/counters/hostile/increment", body: JSON.stringify({ by: 1 }), timeoutMs: 5000 })
    const v = ok.kind === "answer" ? (ok.json as { value?: number } | undefined)?.value : undefined
    summary.check(AREA, "a valid increment through the gateway works afterwards (7 -> 8)", v === 8, ok.kind === "answer" ? ok.text.slice(0, 200) : ok.code)
  } finally {
    await cluster.stop()
  }
}
