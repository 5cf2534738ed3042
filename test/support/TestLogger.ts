/**
 * The Effect logger of the tests. Effect's default logger prints every `Effect.log*` of the
 * product to the console; @effect/vitest removes it for `it.effect` and `it.scoped` but not
 * for `it.live` and `it.scopedLive`, where servers, WALs and clients log their start, stop
 * and retries. `test/support/vitest.ts` runs those under `quiet`.
 *
 * A test that asserts on log lines installs `capture()` inside its effect: it replaces the
 * default logger where there still is one and is added beside `quiet` where there is not, so
 * it sees every line either way.
 */
import { Array as Arr, Layer, Logger } from "effect"

/** No Effect log line reaches the console. */
export const quiet: Layer.Layer<never> = Logger.remove(Logger.defaultLogger)

/** One captured log call. */
export interface Line {
  /** `INFO`, `WARN`, `ERROR`, ... */
  readonly level: string
  /** the message's parts, joined by spaces */
  readonly message: string
  /** the log call's time in ms (the TestClock's under `it.effect`) */
  readonly at: number
}

/** A logger that keeps what it is given, in order, for a test to assert on. */
export const capture = (): { readonly lines: ReadonlyArray<Line>; readonly layer: Layer.Layer<never> } => {
  const lines: Array<Line> = []
  const logger = Logger.make<unknown, void>(({ date, logLevel, message }) => {
    lines.push({ level: logLevel.label, message: Arr.ensure(message).map(String).join(" "), at: date.getTime() })
  })
  return { lines, layer: Logger.replace(Logger.defaultLogger, logger) }
}
