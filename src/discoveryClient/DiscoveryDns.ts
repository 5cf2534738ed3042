/**
 * `DiscoveryClient` over DNS: `--discovery dns:NAME[:PORT]` / `dns+srv:NAME` on a node, and
 * `--nodes dns:NAME:HTTP_PORT` on the gateway. On Kubernetes, NAME is a headless Service:
 * one A/AAAA record per pod, or SRV records giving each pod's host and port.
 *
 * - The name is resolved at start (bounded) and every `refreshInterval`; `peers` serves the
 *   last answer and never fails.
 * - An address that appears is listed (the node joins it through PeerManager); one that
 *   vanishes is no longer listed, and failure detection decides when the peer is gone.
 * - A name that does not exist (NXDOMAIN) or has no record of the asked type is an empty
 *   answer: a headless Service without pods has none. Anything else (timeout, refused,
 *   server failure) is a failed lookup: logged (once when the outage starts, then at most
 *   once per `outageLogInterval`, and once when it ends), the last list is kept, and the
 *   next tick tries again. A failed lookup never stops the process.
 * - `dnsServer` (`--dns-server ip:port`) asks that server; without it, the system's resolver
 *   configuration (/etc/resolv.conf) is used.
 *
 * Use as `import * as DiscoveryDns from "./DiscoveryDns.js"` -> `DiscoveryDns.layer(...)`.
 */
import { Cause, Clock, Data, Duration, Effect, Layer, Metric, Option, Ref } from "effect"
import type { Scope } from "effect"
import * as Dns from "node:dns"
import * as Net from "node:net"
import type { DiscoveredPeer } from "./DiscoveryClient.js"
import { DiscoveryClient } from "./DiscoveryClient.js"
import type { DnsName } from "./DnsName.js"
import { format } from "./DnsName.js"

export interface Options {
  readonly name: DnsName
  /** what the addresses found are: gossip addresses (node) or node HTTP addresses (gateway) */
  readonly target: "gossip" | "http"
  /** the port of A/AAAA answers when the name gives none (a node: its own gossip port) */
  readonly defaultPort?: number | undefined
  /** `ip:port` of the DNS server to ask; none: the system's */
  readonly dnsServer: Option.Option<string>
  readonly refreshInterval: Duration.DurationInput
  /** bound on one lookup, all its queries included (default: the refresh interval, clamped to 500ms..5s) */
  readonly lookupTimeout?: Duration.DurationInput | undefined
  /** while lookups keep failing, log at most this often (default 1 minute) */
  readonly outageLogInterval?: Duration.DurationInput | undefined
}

/** A lookup failed for another reason than "no such name / no such record". */
export class DnsLookupFailed extends Data.TaggedError("DnsLookupFailed")<{
  readonly name: string
  readonly reason: "Timeout" | "Failed"
  readonly detail: string
  readonly cause?: unknown
}> {
  override get message() {
    return `DNS lookup of ${this.name}: ${this.reason === "Timeout" ? "timeout" : "failed"}: ${this.detail}`
  }
}

/** One lookup: the `host:port` addresses a DNS name stands for now. */
export type Lookup = (name: DnsName) => Effect.Effect<ReadonlyArray<string>, DnsLookupFailed>

// ---------------------------------------------------------------------------------------
// metrics

export const dnsAddresses = Metric.gauge("dcounter_discovery_dns_addresses", {
  description: "addresses in the last successful answer of DNS discovery"
})
export const dnsFailures = Metric.counter("dcounter_discovery_dns_failures_total", {
  description: "failed DNS discovery lookups (timeouts, refusals, server failures)",
  incremental: true
})

// ---------------------------------------------------------------------------------------
// node:dns

/** `host:port`, IPv6 in brackets. */
export const joinHostPort = (host: string, port: number): string => (Net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`)

/** Error codes that mean "the name or the record does not exist": an empty answer. */
const EMPTY_ANSWER = new Set([Dns.NODATA, Dns.NOTFOUND, "ENODATA", "ENOTFOUND"])

const codeOf = (e: unknown): string | undefined =>
  typeof e === "object" && e !== null && "code" in e && typeof e.code === "string" ? e.code : undefined

/**
 * Lookups through a node:dns `Resolver`: A and AAAA for `dns:`, SRV then the targets'
 * A and AAAA for `dns+srv:`. `defaultPort` is the port of A/AAAA answers without one.
 */
export const lookupWith = (resolver: Dns.promises.Resolver, defaultPort: number | undefined): Lookup => {
  const orEmpty = <A>(name: string, query: Promise<ReadonlyArray<A>>): Promise<ReadonlyArray<A>> =>
    query.catch((e: unknown) => {
      if (EMPTY_ANSWER.has(codeOf(e) ?? "")) return []
      throw new DnsLookupFailed({ name, reason: "Failed", detail: codeOf(e) ?? String(e), cause: e })
    })
  /** A and AAAA: a family whose query fails while the other answers is left out (an IPv4-only name on a server that refuses AAAA). */
  const addressesOf = async (host: string): Promise<ReadonlyArray<string>> => {
    if (Net.isIP(host) !== 0) return [host]
    const answers = await Promise.allSettled([orEmpty(host, resolver.resolve4(host)), orEmpty(host, resolver.resolve6(host))])
    const found = answers.flatMap((a) => (a.status === "fulfilled" ? [a.value] : []))
    if (found.length === 0) throw (answers[0] as PromiseRejectedResult).reason
    return found.flat()
  }
  return (name) =>
    Effect.tryPromise({
      try: async () => {
        if (name.kind === "A") {
          const port = name.port ?? defaultPort
          if (port === undefined) {
            throw new DnsLookupFailed({ name: format(name), reason: "Failed", detail: "no port to use for the addresses" })
          }
          return (await addressesOf(name.name)).map((ip) => joinHostPort(ip, port))
        }
        const records = await orEmpty(name.name, resolver.resolveSrv(name.name))
        const found = await Promise.all(
          records.map(async (r) => (await addressesOf(r.name)).map((ip) => joinHostPort(ip, r.port)))
        )
        return found.flat()
      },
      catch: (e) =>
        e instanceof DnsLookupFailed
          ? e
          : new DnsLookupFailed({ name: format(name), reason: "Failed", detail: codeOf(e) ?? String(e), cause: e })
    }).pipe(Effect.map((addrs) => [...new Set(addrs)].sort()))
}

/** A resolver asking `dnsServer` (or the system's servers), each query bounded by `timeout`. */
export const resolver = (dnsServer: Option.Option<string>, timeout: Duration.Duration): Dns.promises.Resolver => {
  // two tries within the bound, so one lost UDP datagram is not a failed lookup (the
  // resolver may lengthen the second try's wait: a third of the bound each leaves room)
  const r = new Dns.promises.Resolver({ timeout: Math.max(100, Math.floor(Duration.toMillis(timeout) / 3)), tries: 2 })
  if (Option.isSome(dnsServer)) r.setServers([dnsServer.value])
  return r
}

// ---------------------------------------------------------------------------------------

interface Outage {
  readonly since: Option.Option<number>
  readonly lastLogged: number
  readonly failuresSinceLog: number
}

/** The client over any `Lookup` (tests give a scripted one). */
export const makeWith = (
  options: Options,
  lookup: Lookup
): Effect.Effect<DiscoveryClient["Type"], never, Scope.Scope> =>
  Effect.gen(function*() {
    const refreshInterval = Duration.decode(options.refreshInterval)
    const lookupTimeout = Duration.decode(
      options.lookupTimeout ?? Duration.clamp(refreshInterval, { minimum: "500 millis", maximum: "5 seconds" })
    )
    const outageLogMillis = Duration.toMillis(options.outageLogInterval ?? "1 minute")
    const label = format(options.name)
    const listed = yield* Ref.make<ReadonlyArray<DiscoveredPeer>>([])
    const reachable = yield* Ref.make(false)
    const outage = yield* Ref.make<Outage>({ since: Option.none(), lastLogged: 0, failuresSinceLog: 0 })

    const toPeer = (addr: string): DiscoveredPeer =>
      options.target === "gossip" ? { gossipAddr: addr, httpAddr: "", nodeId: "" } : { gossipAddr: "", httpAddr: addr, nodeId: "" }

    const succeeded = (addrs: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        const before = yield* Ref.getAndSet(listed, addrs.map(toPeer))
        yield* Ref.set(reachable, true)
        yield* Metric.set(dnsAddresses, addrs.length)
        const previous = yield* Ref.getAndSet(outage, { since: Option.none(), lastLogged: 0, failuresSinceLog: 0 })
        if (Option.isSome(previous.since)) {
          const now = yield* Clock.currentTimeMillis
          yield* Effect.logInfo(
            `DNS discovery ${label} answers again (after ${Duration.format(Duration.millis(now - previous.since.value))}): ` +
              `${addrs.length} address(es)`
          )
        }
        const was = new Set(before.map((p) => p.gossipAddr || p.httpAddr))
        const added = addrs.filter((a) => !was.has(a))
        const gone = [...was].filter((a) => !addrs.includes(a))
        if (added.length > 0 || gone.length > 0) {
          yield* Effect.logDebug(
            `DNS discovery ${label}: ${addrs.length} address(es)` +
              (added.length > 0 ? `, new ${added.join(",")}` : "") +
              (gone.length > 0 ? `, no longer listed ${gone.join(",")}` : "")
          )
        }
      })

    const failed = (error: DnsLookupFailed) =>
      Effect.gen(function*() {
        yield* Ref.set(reachable, false)
        yield* Metric.increment(dnsFailures)
        const now = yield* Clock.currentTimeMillis
        const state = yield* Ref.get(outage)
        const kept = (yield* Ref.get(listed)).length
        if (Option.isNone(state.since)) {
          yield* Ref.set(outage, { since: Option.some(now), lastLogged: now, failuresSinceLog: 0 })
          yield* Effect.logWarning(`DNS discovery ${label}: ${error.message}; keeping the ${kept} address(es) last found, retrying`)
        } else if (now - state.lastLogged >= outageLogMillis) {
          yield* Ref.set(outage, { since: state.since, lastLogged: now, failuresSinceLog: 0 })
          yield* Effect.logWarning(
            `DNS discovery ${label} still failing after ${Duration.format(Duration.millis(now - state.since.value))} ` +
              `(${state.failuresSinceLog + 1} failed lookups since the last report): ${error.message}`
          )
        } else {
          yield* Ref.set(outage, { ...state, failuresSinceLog: state.failuresSinceLog + 1 })
          yield* Effect.logDebug(error.message)
        }
      })

    const refresh = lookup(options.name).pipe(
      Effect.timeoutFail({
        duration: lookupTimeout,
        onTimeout: () =>
          new DnsLookupFailed({ name: label, reason: "Timeout", detail: `no answer within ${Duration.format(lookupTimeout)}` })
      }),
      Effect.matchEffect({ onFailure: failed, onSuccess: succeeded }),
      // a loop body must not die: log anything unexpected and carry on at the next tick
      Effect.catchAllCause((cause) =>
        Cause.isInterruptedOnly(cause) ? Effect.failCause(cause) : Effect.logError(`DNS discovery ${label} failed unexpectedly`, cause)
      ),
      Effect.withSpan("DiscoveryDns.refresh", { attributes: { name: label } })
    )

    yield* refresh
    yield* refresh.pipe(Effect.delay(refreshInterval), Effect.forever, Effect.forkScoped)

    return DiscoveryClient.of({ peers: Ref.get(listed), reachable: Ref.get(reachable) })
  })

/** The client over node:dns, asking `options.dnsServer` or the system's resolver. */
export const make = (options: Options): Effect.Effect<DiscoveryClient["Type"], never, Scope.Scope> =>
  Effect.gen(function*() {
    const timeout = Duration.decode(
      options.lookupTimeout ??
        Duration.clamp(Duration.decode(options.refreshInterval), { minimum: "500 millis", maximum: "5 seconds" })
    )
    const r = resolver(options.dnsServer, timeout)
    // a lookup cut short by the scope must not keep its sockets
    yield* Effect.addFinalizer(() => Effect.sync(() => r.cancel()))
    return yield* makeWith(options, lookupWith(r, options.defaultPort))
  })

export const layer = (options: Options): Layer.Layer<DiscoveryClient> => Layer.scoped(DiscoveryClient, make(options))

/** Same, over a given lookup (tests). */
export const layerWith = (options: Options, lookup: Lookup): Layer.Layer<DiscoveryClient> =>
  Layer.scoped(DiscoveryClient, makeWith(options, lookup))
