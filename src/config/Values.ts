/**
 * Parsers for option values. Each takes the raw text of a flag or environment variable and
 * returns the typed value or, on the left, what was expected (the caller names the option).
 */
import { Duration, Either, Schema } from "effect"
import type { DnsName } from "../discoveryClient/DnsName.js"
import { HostPort } from "../protocol/Message.js"

export type Parsed<A> = Either.Either<A, string>

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/
const MILLIS_PER_UNIT = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const

/** `500ms`, `2s`, `1m` (also `1.5s`, `1h`): a strictly positive duration. */
export const duration = (raw: string): Parsed<Duration.Duration> => {
  const match = DURATION.exec(raw.trim())
  if (match === null) return Either.left("expected a duration like 500ms, 2s or 1m")
  const millis = Number(match[1]) * MILLIS_PER_UNIT[match[2] as keyof typeof MILLIS_PER_UNIT]
  if (!(millis >= 1)) return Either.left("expected a duration of at least 1ms, like 500ms, 2s or 1m")
  return Either.right(Duration.millis(Math.round(millis)))
}

/** Like `duration`, but `0ms` (or `0s`) is allowed. */
export const durationOrZero = (raw: string): Parsed<Duration.Duration> => {
  const match = DURATION.exec(raw.trim())
  if (match === null) return Either.left("expected a duration like 0ms, 500ms, 2s or 1m")
  const millis = Number(match[1]) * MILLIS_PER_UNIT[match[2] as keyof typeof MILLIS_PER_UNIT]
  return Either.right(Duration.millis(Math.round(millis)))
}

/** Renders a duration the way the flags take it (`2s`, `500ms`, `1m`). */
export const formatDuration = (d: Duration.Duration): string => {
  const ms = Duration.toMillis(d)
  if (ms % 60_000 === 0) return `${ms / 60_000}m`
  if (ms % 1_000 === 0) return `${ms / 1_000}s`
  return `${ms}ms`
}

const decodeHostPort = Schema.decodeUnknownEither(HostPort)

/** `host:port` with a port in 1..65535 (`[::1]:9000` for IPv6). */
export const hostPort = (raw: string): Parsed<string> =>
  Either.mapLeft(decodeHostPort(raw.trim()), () => "expected host:port, like 127.0.0.1:9000")

/** A comma-separated list of `host:port`; empty items are ignored. */
export const hostPortList = (raw: string): Parsed<ReadonlyArray<string>> => {
  const out: Array<string> = []
  for (const item of splitList(raw)) {
    const parsed = hostPort(item)
    if (Either.isLeft(parsed)) return Either.left(`"${item}" is not host:port; expected a list like a:9001,b:9002`)
    out.push(parsed.right)
  }
  return Either.right(out)
}

/** An HTTP endpoint `http://host:port` (a bare `host:port` is taken as http). */
export const httpEndpoint = (raw: string): Parsed<string> => {
  const text = raw.trim()
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`
  let url: URL
  try {
    url = new URL(withScheme)
  } catch {
    return Either.left("expected an HTTP endpoint like http://127.0.0.1:8010")
  }
  if (url.protocol !== "http:") return Either.left("expected an http:// endpoint like http://127.0.0.1:8010")
  if (url.port === "" || (url.pathname !== "/" && url.pathname !== "") || url.search !== "" || url.hash !== "") {
    return Either.left("expected an HTTP endpoint with a port and no path, like http://127.0.0.1:8010")
  }
  return Either.map(hostPort(url.host), (hp) => `http://${hp}`)
}

/** A comma-separated list of HTTP endpoints; empty items are ignored. */
export const httpEndpointList = (raw: string): Parsed<ReadonlyArray<string>> => {
  const out: Array<string> = []
  for (const item of splitList(raw)) {
    const parsed = httpEndpoint(item)
    if (Either.isLeft(parsed)) return Either.left(`"${item}": ${parsed.left}`)
    out.push(parsed.right)
  }
  return Either.right(out)
}

/** An integer in `[min, max]`. */
export const integer = (min: number, max: number) => (raw: string): Parsed<number> => {
  const text = raw.trim()
  const n = Number(text)
  if (!/^-?\d+$/.test(text) || !Number.isSafeInteger(n) || n < min || n > max) {
    return Either.left(`expected an integer from ${min} to ${max}`)
  }
  return Either.right(n)
}

/** A number in `[min, max]` (fractions allowed). */
export const decimal = (min: number, max: number) => (raw: string): Parsed<number> => {
  const text = raw.trim()
  const n = Number(text)
  if (text === "" || !Number.isFinite(n) || n < min || n > max) {
    return Either.left(`expected a number from ${min} to ${max}`)
  }
  return Either.right(n)
}

/** One of a fixed set of words. */
export const oneOf = <const A extends string>(choices: ReadonlyArray<A>) => (raw: string): Parsed<A> => {
  const text = raw.trim()
  const found = choices.find((c) => c === text)
  return found === undefined ? Either.left(`expected one of ${choices.join(", ")}`) : Either.right(found)
}

/** `true|false` (also `yes|no`, `1|0`, `on|off`). */
export const boolean = (raw: string): Parsed<boolean> => {
  const text = raw.trim().toLowerCase()
  if (["true", "yes", "1", "on"].includes(text)) return Either.right(true)
  if (["false", "no", "0", "off"].includes(text)) return Either.right(false)
  return Either.left("expected true or false")
}

/** Any non-empty text. */
export const nonEmpty = (raw: string): Parsed<string> =>
  raw.trim() === "" ? Either.left("expected a non-empty value") : Either.right(raw.trim())

const splitList = (raw: string): Array<string> =>
  raw.split(",").map((s) => s.trim()).filter((s) => s !== "")

// ---------------------------------------------------------------------------------------
// DNS discovery and advertised addresses (added with the Kubernetes work; additive)

const DNS_NAME = /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*\.?$/
const DNS_FORMS = "expected dns:NAME, dns:NAME:PORT or dns+srv:NAME"

/** Whether an option value asks for DNS (`dns:` or `dns+srv:`), valid or not. */
export const isDns = (raw: string): boolean => /^dns(\+srv)?:/i.test(raw.trim())

/** `dns:NAME`, `dns:NAME:PORT` or `dns+srv:NAME`. */
export const dnsName = (raw: string): Parsed<DnsName> => {
  const text = raw.trim()
  const srv = /^dns\+srv:/i.test(text)
  if (!srv && !/^dns:/i.test(text)) return Either.left(DNS_FORMS)
  const rest = text.slice(srv ? 8 : 4)
  const colon = rest.lastIndexOf(":")
  const name = colon === -1 ? rest : rest.slice(0, colon)
  const portText = colon === -1 ? undefined : rest.slice(colon + 1)
  if (name === "") return Either.left(`${DNS_FORMS}: the name is missing`)
  if (!DNS_NAME.test(name)) return Either.left(`${DNS_FORMS}: "${name}" is not a DNS name`)
  if (portText === undefined) return Either.right({ kind: srv ? "SRV" : "A", name, port: undefined })
  if (srv) return Either.left("dns+srv:NAME takes no port: the SRV records give it")
  const port = Number(portText)
  if (!/^\d{1,5}$/.test(portText) || port < 1 || port > 65535) {
    return Either.left(`${DNS_FORMS}: the port "${portText}" is not 1..65535`)
  }
  return Either.right({ kind: "A", name, port })
}

/** `dns:NAME:PORT` with the port required (the gateway's `--nodes`: the nodes' HTTP port). */
export const dnsNameWithPort = (raw: string): Parsed<DnsName> =>
  Either.flatMap(dnsName(raw), (dns) =>
    dns.kind === "SRV"
      ? Either.left("expected dns:NAME:HTTP_PORT (dns+srv: is for the nodes' gossip discovery)")
      : dns.port === undefined
      ? Either.left(`expected dns:NAME:HTTP_PORT: the nodes' HTTP port is missing after "${dns.name}"`)
      : Either.right(dns))

/** The host of `host:port` (brackets of IPv6 removed). */
export const hostOf = (addr: string): string => {
  const host = addr.slice(0, addr.lastIndexOf(":"))
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host
}

/** The port of `host:port`. */
export const portOf = (addr: string): number => Number(addr.slice(addr.lastIndexOf(":") + 1))

/** `0.0.0.0`, `::` (and their long forms): binds every interface, never an address to give out. */
export const isWildcardHost = (host: string): boolean =>
  /^0+(\.0+){3}$/.test(host) || /^[0:]+$/.test(host) && host.includes("::") || host === "0:0:0:0:0:0:0:0"

/** A `host:port` that can be given to others: not a wildcard host. */
export const advertisableHostPort = (raw: string): Parsed<string> =>
  Either.flatMap(hostPort(raw), (addr) =>
    isWildcardHost(hostOf(addr))
      ? Either.left("a wildcard address (0.0.0.0, ::) cannot be advertised; give the address peers reach, like 10.0.0.5:9000")
      : Either.right(addr))

/** `--discovery` of a node: a discovery server `host:port` or a DNS name. */
export type DiscoverySource =
  | { readonly _tag: "Server"; readonly addr: string }
  | { readonly _tag: "Dns"; readonly dns: DnsName }

export const discoverySource = (raw: string): Parsed<DiscoverySource> =>
  isDns(raw)
    ? Either.map(dnsName(raw), (dns) => ({ _tag: "Dns", dns }))
    : Either.mapBoth(hostPort(raw), {
      onLeft: () => "expected host:port of a discovery server, dns:NAME, dns:NAME:PORT or dns+srv:NAME",
      onRight: (addr) => ({ _tag: "Server", addr })
    })

/** `--nodes` of the gateway: HTTP endpoints and `dns:NAME:HTTP_PORT` items, comma separated. */
export const nodeSources = (
  raw: string
): Parsed<{ readonly urls: ReadonlyArray<string>; readonly dns: ReadonlyArray<DnsName> }> => {
  const urls: Array<string> = []
  const dns: Array<DnsName> = []
  for (const item of splitList(raw)) {
    if (isDns(item)) {
      const parsed = dnsNameWithPort(item)
      if (Either.isLeft(parsed)) return Either.left(`"${item}": ${parsed.left}`)
      dns.push(parsed.right)
    } else {
      const parsed = httpEndpoint(item)
      if (Either.isLeft(parsed)) return Either.left(`"${item}": ${parsed.left}`)
      urls.push(parsed.right)
    }
  }
  return Either.right({ urls, dns })
}

/** `ip:port` of a DNS server (node:dns takes addresses, not names). */
export const dnsServer = (raw: string): Parsed<string> =>
  Either.flatMap(
    Either.mapLeft(hostPort(raw), () => "expected ip:port of a DNS server, like 10.96.0.10:53"),
    (addr) =>
      /^[0-9.]+$/.test(hostOf(addr)) || hostOf(addr).includes(":")
        ? Either.right(addr)
        : Either.left("expected the IP address of a DNS server, not a name, like 10.96.0.10:53")
  )
