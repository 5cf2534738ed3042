/**
 * Every option of `dcounter`, once: its name, the kind of value, what it does and its
 * default, grouped by the role or command that takes it. The parser (Invocation.ts) and
 * the help (Help.ts) are both built from this table, so they cannot drift apart.
 * Every option `--foo-bar` also reads the environment variable `DCOUNTER_FOO_BAR`; a flag
 * beats the variable.
 */
import { Duration } from "effect"
import * as Discovery from "../config/DiscoveryConfig.js"
import * as Gateway from "../config/GatewayConfig.js"
import * as Node from "../config/NodeConfig.js"
import { formatDuration } from "../config/Values.js"

export interface FlagDoc {
  /** without the leading `--` */
  readonly name: string
  /** what the value looks like, for the help (`host:port`, `duration`) */
  readonly value: string
  readonly description: string
  /** the default as the user would type it, or a sentence when it is derived */
  readonly default?: string
}

export type Section = "common" | "discovery" | "node" | "gateway" | "simulate" | "wal" | "output"

export interface SectionDoc {
  readonly title: string
  readonly flags: ReadonlyArray<FlagDoc>
}

/** `--data-dir` -> `DCOUNTER_DATA_DIR` */
export const envName = (flag: string): string => `DCOUNTER_${flag.toUpperCase().replaceAll("-", "_")}`

const logLevel: FlagDoc = {
  name: "log-level",
  value: "debug|info|warn|error",
  description: "Minimum level of the log lines written.",
  default: "info"
}
const logFormat: FlagDoc = {
  name: "log-format",
  value: "pretty|json",
  description: "pretty: one readable line per event; json: one JSON object per line, for machines.",
  default: "pretty"
}

/** Simulation defaults (`dcounter simulate`). */
export const simulateDefaults = {
  nodeCount: 10,
  duration: Duration.seconds(10),
  rate: 500,
  partitions: 0,
  crashes: 0,
  syncInterval: Duration.seconds(1),
  convergeTimeout: Duration.seconds(30),
  drop: 0,
  delay: Duration.millis(1),
  logLevel: "error"
} as const

export const sections: Readonly<Record<Section, SectionDoc>> = {
  common: {
    title: "Options of every role",
    flags: [
      {
        name: "role",
        value: "discovery|node|gateway",
        description: "Which server this process runs. Required."
      },
      logLevel,
      logFormat,
      {
        name: "cluster-key",
        value: "secret",
        description:
          "Shared secret of the cluster. Nodes authenticate their gossip frames with it and drop frames without a " +
          "valid tag; discovery answers 401 to register, heartbeat and deregister calls without it. The nodes and " +
          "the discovery server of one cluster take the same key (the gateway accepts it and needs none).",
        default: "none (no authentication)"
      },
      {
        name: "cluster-key-file",
        value: "path",
        description:
          "Read the cluster key from this file (a mounted Secret), instead of --cluster-key (give one, not both). " +
          "Surrounding white space and the final newline are not part of the key; an empty or unreadable file is an error.",
        default: "none"
      }
    ]
  },
  discovery: {
    title: "--role discovery",
    flags: [
      {
        name: "addr",
        value: "host:port",
        description: "Address of the discovery HTTP API.",
        default: Discovery.defaults.addr
      },
      {
        name: "peer-ttl",
        value: "duration",
        description: "A node not heard from (register or heartbeat) for this long is dropped from /peers.",
        default: formatDuration(Discovery.defaults.peerTtl)
      },
      {
        name: "max-peers",
        value: "count",
        description: "Most nodes the registry holds; registering past it is refused (507).",
        default: String(Discovery.defaults.maxPeers)
      }
    ]
  },
  node: {
    title: "--role node",
    flags: [
      {
        name: "addr",
        value: "host:port",
        description: "Gossip TCP address to listen on and advertise to peers (peers must be able to reach it).",
        default: Node.defaults.addr
      },
      {
        name: "http-addr",
        value: "host:port",
        description: "Address of the node's HTTP API.",
        default: "same host as --addr, port 8010 + (gossip port - 9000)"
      },
      {
        name: "discovery",
        value: "host:port|dns:NAME[:PORT]|dns+srv:NAME",
        description:
          "Discovery server to register with and learn peers from; or dns:NAME (A/AAAA records, each address on " +
          "this node's gossip port), dns:NAME:PORT, or dns+srv:NAME (SRV records give host and port), re-resolved " +
          "every --sync-interval.",
        default: "none"
      },
      {
        name: "peers",
        value: "host:port,...",
        description: "Static gossip peers, comma separated; may be combined with --discovery.",
        default: "none"
      },
      {
        name: "data-dir",
        value: "path",
        description: "Directory of the node's write-ahead log, snapshots and replica id (locked while running).",
        default: "./data/<--addr with : as _>"
      },
      {
        name: "sync-interval",
        value: "duration",
        description: "How often the node compares digests with a few random peers (anti-entropy).",
        default: formatDuration(Node.defaults.syncInterval)
      },
      {
        name: "full-sync-interval",
        value: "duration",
        description: "A second, slower anti-entropy round to a few peers. Full state goes only to a peer that holds none of this node's history (new, restarted).",
        default: "10 x --sync-interval"
      },
      {
        name: "max-sync-peers",
        value: "count",
        description: "How many peers each sync round talks to.",
        default: String(Node.defaults.maxSyncPeers)
      },
      {
        name: "heartbeat-interval",
        value: "duration",
        description: "How often the node pings its peers and heartbeats to discovery.",
        default: formatDuration(Node.defaults.heartbeatInterval)
      },
      {
        name: "max-fails",
        value: "count",
        description: "Missed pings in a row after which a peer is suspected.",
        default: String(Node.defaults.maxFails)
      },
      {
        name: "failure-timeout",
        value: "duration",
        description: "A suspect peer not heard from for this long is declared dead.",
        default: formatDuration(Node.defaults.failureTimeout)
      },
      {
        name: "eager-push",
        value: "true|false",
        description: "Push local writes to peers at once (false: only the periodic sync spreads them).",
        default: String(Node.defaults.eagerPush)
      },
      {
        name: "push-window",
        value: "duration",
        description: "The first change after a quiet window is pushed to the peers at once; under load at most one eager push leaves per window, carrying every write of it.",
        default: formatDuration(Node.defaults.pushWindow)
      },
      {
        name: "resp-addr",
        value: "host:port",
        description:
          "Also serve the Redis protocol (RESP2/RESP3) here: INCR, INCRBY, DECR, DECRBY (answered once durable), " +
          "GET, MGET, EXISTS, SCAN from any Redis client (see docs/resp.md).",
        default: "off"
      },
      {
        name: "resp-password",
        value: "secret",
        description: "Password Redis-protocol clients must give (AUTH or HELLO ... AUTH default <password>).",
        default: "none (no AUTH)"
      },
      {
        name: "resp-password-file",
        value: "path",
        description: "Read --resp-password from this file (one trailing newline ignored); exclusive with --resp-password.",
        default: "none"
      },
      {
        name: "advertise-addr",
        value: "host:port",
        description:
          "Gossip address peers, discovery and the gateway are told, when it is not --addr (a pod IP, a NAT). " +
          "Required when --addr binds a wildcard (0.0.0.0, ::), which is never advertised.",
        default: "--addr"
      },
      {
        name: "advertise-http-addr",
        value: "host:port",
        description: "HTTP address discovery and the gateway are told, when it is not --http-addr.",
        default: "--http-addr, or the --advertise-addr host with the --http-addr port when --http-addr is a wildcard"
      },
      {
        name: "dns-server",
        value: "ip:port",
        description: "DNS server that --discovery dns:... asks (an IP address, like 10.96.0.10:53).",
        default: "the system's resolver"
      }
    ]
  },
  gateway: {
    title: "--role gateway",
    flags: [
      {
        name: "addr",
        value: "host:port",
        description: "Address of the gateway HTTP API and dashboard.",
        default: Gateway.defaults.addr
      },
      {
        name: "discovery",
        value: "host:port",
        description: "Discovery server to learn the nodes from. Give --discovery, --nodes or both.",
        default: "none"
      },
      {
        name: "nodes",
        value: "url|dns:NAME:HTTP_PORT,...",
        description:
          "Static node HTTP endpoints, comma separated (http://a:8010,http://b:8011); an item dns:NAME:HTTP_PORT " +
          "takes the nodes from DNS (A/AAAA records, e.g. a headless Service), re-resolved every --refresh-interval.",
        default: "none"
      },
      {
        name: "refresh-interval",
        value: "duration",
        description: "How often the node list is refreshed and every node's /health is checked.",
        default: formatDuration(Gateway.defaults.refreshInterval)
      },
      {
        name: "dns-server",
        value: "ip:port",
        description: "DNS server that --nodes dns:... asks (an IP address, like 10.96.0.10:53).",
        default: "the system's resolver"
      }
    ]
  },
  simulate: {
    title: "dcounter simulate",
    flags: [
      {
        name: "node-count",
        value: "count",
        description: "Nodes in the in-process cluster (memory network, memory WAL).",
        default: String(simulateDefaults.nodeCount)
      },
      {
        name: "duration",
        value: "duration",
        description: "How long random writes run.",
        default: formatDuration(simulateDefaults.duration)
      },
      {
        name: "rate",
        value: "writes/s",
        description: "Random increments and decrements per second, over the whole cluster.",
        default: String(simulateDefaults.rate)
      },
      {
        name: "partitions",
        value: "count",
        description: "Network partitions during the run: each splits the cluster in two random halves for a while.",
        default: String(simulateDefaults.partitions)
      },
      {
        name: "crashes",
        value: "count",
        description: "Node crashes during the run: each stops a random node abruptly and restarts it on its data.",
        default: String(simulateDefaults.crashes)
      },
      {
        name: "seed",
        value: "integer",
        description: "Seed of the random choices, to replay a run.",
        default: "random (printed)"
      },
      {
        name: "sync-interval",
        value: "duration",
        description: "Anti-entropy interval of the simulated nodes.",
        default: formatDuration(simulateDefaults.syncInterval)
      },
      {
        name: "converge-timeout",
        value: "duration",
        description: "How long to wait, after writes stop and the network heals, for every node to agree.",
        default: formatDuration(simulateDefaults.convergeTimeout)
      },
      {
        name: "drop",
        value: "probability",
        description: "Probability that the simulated network loses a message (0 to 1).",
        default: String(simulateDefaults.drop)
      },
      {
        name: "delay",
        value: "duration",
        description: "Latency of every message on the simulated network, plus a random jitter up to as much.",
        default: formatDuration(simulateDefaults.delay)
      }
    ]
  },
  wal: {
    title: "dcounter wal check|repair",
    flags: [
      {
        name: "data-dir",
        value: "path",
        description:
          "Data directory of a node. check: read the snapshot and every record, change nothing, report damage " +
          "(exit 1 when the node could not start on it). repair (the node must be stopped): cut damaged records " +
          "back to the last intact one so the node can start; if acknowledged records were lost, the node gets a " +
          "new replica id so nothing is counted twice and peers give back what they hold.",
        default: "required"
      }
    ]
  },
  output: {
    title: "Output options (simulate, wal)",
    flags: [{ ...logLevel, default: "info (simulate: error, to keep the progress bar readable)" }, logFormat]
  }
}

/** The sections each command reads its options from. */
export const sectionsOf = {
  discovery: ["common", "discovery"],
  node: ["common", "node"],
  gateway: ["common", "gateway"],
  simulate: ["output", "simulate"],
  wal: ["output", "wal"]
} as const satisfies Record<string, ReadonlyArray<Section>>

export type Command = keyof typeof sectionsOf

/** Every distinct option name, for the parser. */
export const allFlagNames: ReadonlyArray<string> = [
  ...new Set(Object.values(sections).flatMap((s) => s.flags.map((f) => f.name)))
]

/** The option names a command accepts. */
export const flagNamesOf = (command: Command): ReadonlySet<string> =>
  new Set(sectionsOf[command].flatMap((s) => sections[s].flags.map((f) => f.name)))
