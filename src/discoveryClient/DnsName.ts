/**
 * A DNS name to discover peers or nodes from, as `--discovery dns:NAME[:PORT]`,
 * `--discovery dns+srv:NAME` and `--nodes dns:NAME:HTTP_PORT` give it (parsed by
 * cli/Values.ts, resolved by DiscoveryDns.ts).
 */
export interface DnsName {
  /** A: A and AAAA records, each address on `port`; SRV: SRV records give host and port */
  readonly kind: "A" | "SRV"
  readonly name: string
  /** the port of every address found (A/AAAA); none: the caller's default */
  readonly port: number | undefined
}

/** `dns:NAME`, `dns:NAME:PORT` or `dns+srv:NAME`, as the user types it (for logs). */
export const format = (dns: DnsName): string =>
  dns.kind === "SRV" ? `dns+srv:${dns.name}` : `dns:${dns.name}${dns.port === undefined ? "" : `:${dns.port}`}`
