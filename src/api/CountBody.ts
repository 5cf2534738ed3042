/**
 * The body of increment and decrement, shared by the node and gateway APIs: `{"by": N}`,
 * N a positive safe integer. No body at all, or `{}`, counts as 1; a literal `null` is refused.
 * Any other key is refused (400), so a typo such as `{"By": 5}` or a body that is not this
 * JSON object can never pass for an empty one and be counted as `by: 1`.
 */
import { Schema } from "effect"

const positiveInteger = () => "by must be a positive integer"

/**
 * `by`: a positive safe integer. The bound is checked before integrality (a number past it
 * is no safe integer either, and the message should name the bound); every refinement has
 * its own plain message, and a title so documentation does not show the refinement's name.
 */
export const By = Schema.Number.annotations({ message: positiveInteger }).pipe(
  Schema.lessThanOrEqualTo(Number.MAX_SAFE_INTEGER, {
    message: () => `by must be at most ${Number.MAX_SAFE_INTEGER}`
  }),
  Schema.int({ message: positiveInteger }),
  Schema.positive({ message: positiveInteger })
).annotations({
  identifier: "By",
  title: "By",
  description: `How much to add or subtract: a positive integer up to ${Number.MAX_SAFE_INTEGER} (default 1)`
})

export const CountBody = Schema.Struct({ by: Schema.optionalWith(By, { exact: true }) }).annotations({
  identifier: "CountBody",
  description: "Optional body of increment and decrement; no body counts as {\"by\": 1}",
  parseOptions: { onExcessProperty: "error" }
})
export type CountBody = typeof CountBody.Type

/** The amount a body asks for. */
export const byOf = (body: CountBody): number => body.by ?? 1
