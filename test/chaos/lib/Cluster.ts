/**
 * Real dcounter processes for the chaos suite: one discovery, N nodes and a gateway, each
 * node on its own loopback address (gossip and HTTP on that address) so that firewall
 * rules can split them, each process logging to its own file under the run directory.
 */
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { getJson, pollUntil, request } from "./Http.js"
import { ManagedProcess } from "./Proc.js"

/** The /24 the suite uses: `CHAOS_NET` (three octets), default 127.0.99. */
export const chaosNet = (): string => {
  const raw = process.env["CHAOS_NET"] ?? "127.0.99"
  if (!/^127\.\d{1,3}\.\d{1,3}$/.test(raw)) throw new Error(`CHAOS_NET must look like 127.x.y, got ${raw}`)
  return raw
}

/** A free TCP port on `host` (listen on 0, read it back, close). */
export const freePort = (host: string): Promise<number> =>
  new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once("error", reject)
    srv.listen(0, host, () => {
      const addr = srv.address()
      const port = typeof addr === "object" && addr !== null ? addr.port : 0
      srv.close(() => resolve(port))
    })
  })

export const makeRunDir = (label: string): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `dcounter-chaos-${label}-`))
  fs.mkdirSync(path.join(dir, "logs"), { recursive: true })
  fs.mkdirSync(path.join(dir, "data"), { recursive: true })
  return dir
}

/** A role process with an HTTP API. */
export class Service {
  constructor(
    readonly proc: ManagedProcess,
    readonly host: string,
    readonly httpPort: number
  ) {}

  get name(): string {
    return this.proc.name
  }

  get httpAddr(): string {
    return `${this.host}:${this.httpPort}`
  }

  get running(): boolean {
    return this.proc.running
  }

  /** Waits until GET /health answers 200 (or, with `anyStatus`, anything at all). */
  async waitReady(timeoutMs = 60_000, anyStatus = false): Promise<void> {
    await pollUntil(`${this.name} /health`, timeoutMs, 100, async () => {
      if (!this.proc.running) throw new Error(`${this.name} is not running (see ${this.proc.logFile})`)
      const r = await request({ host: this.host, port: this.httpPort, path: "/health", timeoutMs: 1000 })
      if (r.kind === "answer" && (anyStatus || r.status === 200)) return true
      return undefined
    })
  }

  getJson(p: string, timeoutMs = 3000): Promise<unknown> {
    return getJson(this.host, this.httpPort, p, timeoutMs)
  }
}

export class NodeService extends Service {
  constructor(
    proc: ManagedProcess,
    readonly index: number,
    host: string,
    readonly gossipPort: number,
    httpPort: number,
    readonly dataDir: string
  ) {
    super(proc, host, httpPort)
  }

  get gossipAddr(): string {
    return `${this.host}:${this.gossipPort}`
  }

  /** Deletes the data directory (the process must be stopped). */
  wipeData(): void {
    if (this.proc.running) throw new Error(`${this.name} must be stopped before its data is wiped`)
    fs.rmSync(this.dataDir, { recursive: true, force: true })
  }
}

export interface ClusterSpec {
  readonly runDir: string
  readonly nodes: number
  readonly discovery: boolean
  readonly gateway: boolean
  readonly clusterKey?: string
  /** pass every other node as `--peers` (in addition to discovery, if any) */
  readonly staticPeers?: boolean
  /** extra node flags (timings) */
  readonly nodeArgs?: ReadonlyArray<string>
  readonly discoveryArgs?: ReadonlyArray<string>
  readonly gatewayArgs?: ReadonlyArray<string>
  readonly logLevel?: "debug" | "info" | "warn" | "error"
  /** first host octet for nodes: node i gets `${net}.${firstHost + i}` */
  readonly firstHost?: number
}

export class Cluster {
  private constructor(
    readonly spec: ClusterSpec,
    readonly discovery: Service | undefined,
    readonly nodes: ReadonlyArray<NodeService>,
    readonly gateway: Service | undefined
  ) {}

  static async create(spec: ClusterSpec): Promise<Cluster> {
    fs.mkdirSync(path.join(spec.runDir, "logs"), { recursive: true })
    fs.mkdirSync(path.join(spec.runDir, "data"), { recursive: true })
    const netPrefix = chaosNet()
    const common = ["--log-level", spec.logLevel ?? "info"]
    if (spec.clusterKey !== undefined) common.push("--cluster-key", spec.clusterKey)
    const log = (name: string) => path.join(spec.runDir, "logs", `${name}.log`)
    const serviceHost = `${netPrefix}.1`

    let discovery: Service | undefined
    if (spec.discovery) {
      const port = await freePort(serviceHost)
      discovery = new Service(
        new ManagedProcess(
          "discovery",
          log("discovery"),
          ["--role", "discovery", "--addr", `${serviceHost}:${port}`, ...common, ...(spec.discoveryArgs ?? [])]
        ),
        serviceHost,
        port
      )
    }

    const first = spec.firstHost ?? 2
    const placed: Array<{ host: string; gossip: number; http: number }> = []
    for (let i = 0; i < spec.nodes; i++) {
      const host = `${netPrefix}.${first + i}`
      const gossip = await freePort(host)
      let http = await freePort(host)
      while (http === gossip) http = await freePort(host)
      placed.push({ host, gossip, http })
    }
    const nodes = placed.map((p, i) => {
      const name = `node${i + 1}`
      const dataDir = path.join(spec.runDir, "data", name)
      const args = [
        "--role",
        "node",
        "--addr",
        `${p.host}:${p.gossip}`,
        "--http-addr",
        `${p.host}:${p.http}`,
        "--data-dir",
        dataDir,
        ...common,
        ...(spec.nodeArgs ?? [])
      ]
      if (discovery !== undefined) args.push("--discovery", discovery.httpAddr)
      if (spec.staticPeers === true) {
        const others = placed.filter((_, j) => j !== i).map((o) => `${o.host}:${o.gossip}`)
        if (others.length > 0) args.push("--peers", others.join(","))
      }
      return new NodeService(new ManagedProcess(name, log(name), args), i, p.host, p.gossip, p.http, dataDir)
    })

    let gateway: Service | undefined
    if (spec.gateway) {
      const port = await freePort(serviceHost)
      const args = ["--role", "gateway", "--addr", `${serviceHost}:${port}`, ...common, ...(spec.gatewayArgs ?? [])]
      if (discovery !== undefined) args.push("--discovery", discovery.httpAddr)
      args.push("--nodes", nodes.map((n) => `http://${n.httpAddr}`).join(","))
      gateway = new Service(new ManagedProcess("gateway", log("gateway"), args), serviceHost, port)
    }
    return new Cluster(spec, discovery, nodes, gateway)
  }

  /** Starts discovery, then the nodes, then the gateway, each waited for. */
  async start(): Promise<void> {
    if (this.discovery !== undefined) {
      this.discovery.proc.start()
      await this.discovery.waitReady()
    }
    for (const n of this.nodes) n.proc.start()
    await Promise.all(this.nodes.map((n) => n.waitReady(90_000)))
    if (this.gateway !== undefined) {
      this.gateway.proc.start()
      await this.gateway.waitReady(90_000)
    }
  }

  get all(): ReadonlyArray<Service> {
    return [
      ...(this.discovery === undefined ? [] : [this.discovery]),
      ...this.nodes,
      ...(this.gateway === undefined ? [] : [this.gateway])
    ]
  }

  /** SIGTERM to everything (gateway first), SIGKILL after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.gateway !== undefined) await this.gateway.proc.term(graceMs)
    await Promise.all(this.nodes.map((n) => n.proc.term(graceMs)))
    if (this.discovery !== undefined) await this.discovery.proc.term(graceMs)
  }
}
