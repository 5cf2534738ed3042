/** Counter names: 1 to 128 characters of `[A-Za-z0-9._:-]`. */
import { Schema } from "effect"

export const COUNTER_NAME_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/

export const CounterName = Schema.String.pipe(
  Schema.pattern(COUNTER_NAME_PATTERN, {
    message: () => "a counter name is 1 to 128 characters of [A-Za-z0-9._:-]"
  }),
  Schema.brand("CounterName")
)
export type CounterName = typeof CounterName.Type

/** The counter behind `/counter`, `/increment` and `/decrement`. */
export const DEFAULT_COUNTER = "default" as CounterName

export const isCounterName = (s: string): s is CounterName => COUNTER_NAME_PATTERN.test(s)
