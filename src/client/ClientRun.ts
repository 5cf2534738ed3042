/**
 * Runs one shell client command against `--url` and prints the answer: the value alone
 * (get, inc, dec), `name value` lines (list) or a table of nodes (status); with `--json`,
 * JSON for scripts. Failures are `ClientError`s, whose exit status the CLI uses.
 */
import { Console, Effect } from "effect"
import type { ClientCommand } from "./ClientCommand.js"
import type { ClientError } from "./ClientError.js"
import type { ClusterStatus } from "./CounterClient.js"
import * as CounterClient from "./CounterClient.js"

const json = (value: unknown) => Console.log(JSON.stringify(value))

/** Whether the nodes that answered report one value (none answering: no). */
export const agreement = (status: ClusterStatus): { readonly agree: boolean; readonly value: number | null } => {
  const values = new Set(status.nodes.filter((n) => n.up && n.value !== null).map((n) => n.value))
  const [only] = values
  return values.size === 1 && only !== undefined ? { agree: true, value: only } : { agree: false, value: null }
}

/** The `status` table: one row per node, then one line saying whether they agree. */
export const renderStatus = (status: ClusterStatus): string => {
  const rows = status.nodes.map((n) => [n.httpAddr, n.id ?? "-", n.up ? "up" : "down", n.value === null ? "-" : String(n.value)])
  const header = ["NODE", "ID", "STATUS", "VALUE"]
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: ReadonlyArray<string>) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()
  const up = status.nodes.filter((n) => n.up).length
  const down = status.nodes.length - up
  const { agree, value } = agreement(status)
  const summary = status.nodes.length === 0
    ? "no nodes known"
    : up === 0
    ? `${status.nodes.length} nodes, none answering`
    : `${up} of ${status.nodes.length} nodes up${down > 0 ? ` (${down} down)` : ""}: ` +
      (agree ? `they agree on ${value}` : "they do NOT agree (yet: gossip converges within seconds once writes stop)")
  return [line(header), ...rows.map(line), summary].join("\n")
}

export const run = (command: ClientCommand): Effect.Effect<void, ClientError> => {
  if (command._tag === "Help") return Console.log(command.text)
  return Effect.gen(function*() {
    const client = yield* CounterClient.CounterClient
    switch (command._tag) {
      case "Get": {
        const answer = yield* client.get(command.name)
        return yield* command.json ? json(answer.body) : Console.log(String(answer.value.value))
      }
      case "Add": {
        const answer = yield* client.add(command.name, command.sign, command.by)
        return yield* command.json ? json(answer.body) : Console.log(String(answer.value.value))
      }
      case "List": {
        const counters = yield* client.list(command.prefix)
        if (command.json) return yield* json({ counters })
        const width = Math.max(0, ...counters.map((c) => c.name.length))
        for (const c of counters) yield* Console.log(`${c.name.padEnd(width)}  ${c.value}`)
        return
      }
      case "Status": {
        const status = yield* client.status
        if (command.json) {
          return yield* json({
            role: status.role,
            nodes: status.nodes.map((n) => ({ ...n, status: n.up ? "up" : "down" })),
            ...agreement(status)
          })
        }
        return yield* Console.log(renderStatus(status))
      }
    }
  }).pipe(Effect.provide(CounterClient.layer({ url: command.url })))
}
