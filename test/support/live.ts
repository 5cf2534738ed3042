/** Helpers for live tests (real sockets on loopback): a free port and a bounded poll. */
import { Duration, Effect } from "effect"
import { createServer } from "node:net"

/** A loopback port that was free a moment ago (listen on 0, close). */
export const freePort: Effect.Effect<number> = Effect.async<number>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** Polls `check` every 20 ms until it returns true; fails after `within`. */
export const eventually = (
  what: string,
  within: Duration.DurationInput,
  check: Effect.Effect<boolean>
): Effect.Effect<void, Error> =>
  Effect.gen(function*() {
    while (!(yield* check)) yield* Effect.sleep("20 millis")
  }).pipe(
    Effect.timeoutFail({ duration: within, onTimeout: () => new Error(`not within ${Duration.format(within)}: ${what}`) })
  )
