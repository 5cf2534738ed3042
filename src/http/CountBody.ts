/**
 * The body of increment and decrement, shared by the node and gateway APIs: `{"by": N}`,
 * N a positive safe integer. No body at all, or `{}`, counts as 1; a literal `null` is refused.
 * Any other key is refused (400), so a typo such as `{"By": 5}` or a body that is not this
 * JSON object can never pass for an empty one and be counted as `by: 1`.
 */
import { Schema } from "effect"

/** `by`: a positive safe integer. */
export const By = Schema.Number.pipe(
  Schema.int({ message: () => "by must be an integer" }),
  Schema.positive({ message: () => "by must be positive" }),
  Schema.lessThanOrEqualTo(Number.MAX_SAFE_INTEGER, { message: () => "by must be at most 2^53-1" })
).annotations({ description: "How much to add or subtract: a positive safe integer (default 1)" })

export const CountBody = Schema.Struct({ by: Schema.optional(By) }).annotations({
  identifier: "CountBody",
  description: "Optional body of increment and decrement; no body counts as {\"by\": 1}",
  parseOptions: { onExcessProperty: "error" }
})
export type CountBody = typeof CountBody.Type

/** The amount a body asks for. */
export const byOf = (body: CountBody): number => body.by ?? 1
