/**
 * A focused reproduction of what the chaos run showed: a node that was down long enough
 * for its peers to forget it, restarted while discovery is down, must still rejoin (issue
 * 6: "the cluster keeps converging when discovery is down"; the contract: once writes stop
 * and the network is whole, every node reports the same value). Three nodes learn of each
 * other from discovery only; x is killed until a and b drop it from /peers; discovery is
 * killed; x restarts; writes on a and on x must converge on all three.
 */
import * as path from "node:path"
import { waitConverged } from "./Checker.js"
import { Cluster } from "./Cluster.js"
import { pollUntil, request } from "./Http.js"
import { sleep } from "./Proc.js"
import type { Summary } from "./Summary.js"

const AREA = "cluster"

export const runRejoinWithoutDiscovery = async (runDir: string, summary: Summary): Promise<void> => {
  const c = await Cluster.create({
    runDir: path.join(runDir, "rejoin"),
    nodes: 3,
    discovery: true,
    gateway: false,
    nodeArgs: ["--sync-interval", "300ms", "--heartbeat-interval", "250ms", "--max-fails", "3", "--failure-timeout", "2s"],
    discoveryArgs: ["--peer-ttl", "2s"],
    firstHost: 80
  })
  const [a, b, x] = c.nodes
  try {
    await c.start()
    await pollUntil("every node sees the two others alive", 60_000, 200, async () => {
      for (const n of c.nodes) {
        const peers = ((await n.getJson("/peers")) as { peers: Array<{ addr: string; status: string }> }).peers
        if (c.nodes.filter((o) => o !== n).some((o) => !peers.some((p) => p.addr === o.gossipAddr && p.status === "alive"))) return undefined
      }
      return true
    })
    // x goes down for longer than its peers keep a dead peer listed (the failure timeout
    // twice here, a minute with the defaults); discovery drops it too (peer TTL)
    await x!.proc.kill9()
    const gone = await pollUntil("a and b forget x", 60_000, 200, async () => {
      for (const n of [a!, b!]) {
        const peers = ((await n.getJson("/peers")) as { peers: Array<{ addr: string }> }).peers
        if (peers.some((p) => p.addr === x!.gossipAddr)) return undefined
      }
      return true
    }).catch(() => false)
    summary.check(AREA, "rejoin setup: a dead peer is eventually dropped from /peers", gone === true)
    // then discovery fails, and x comes back while it is down
    await c.discovery!.proc.kill9()
    x!.proc.start()
    await x!.waitReady(120_000)
    for (const [n, by] of [[a!, 5], [x!, 7]] as const) {
      await request({ host: n.host, port: n.httpPort, method: "POST", path: "/counters/rejoin/increment", body: JSON.stringify({ by }), timeoutMs: 5000 })
    }
    const started = Date.now()
    const conv = await waitConverged([a!, b!, x!], ["rejoin"], 20_000)
    const value = conv.last.values.get(x!.name)?.get("rejoin")
    summary.check(
      AREA,
      "a node forgotten by its peers and restarted while discovery is down rejoins (writes converge within 20s)",
      conv.converged && value === 12,
      conv.converged ? `converged to ${value} in ${Date.now() - started}ms` : `not converged: ${JSON.stringify([...conv.last.values].map(([k, v]) => [k, v.get("rejoin") ?? 0]))}`
    )
    await sleep(0)
  } finally {
    await c.stop()
  }
}
