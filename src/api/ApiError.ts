/**
 * The error answers of the roles' HTTP APIs that carry only the contract's shape,
 * `{"error": "<code>", "message": "<human text>"}`, with an annotated status: one call
 * builds the Schema class (its identifier names the OpenAPI component) and its `of`.
 *
 *     export const BadRequest = ApiError("NodeBadRequest", "bad_request", {
 *       status: 400,
 *       description: "The request is malformed; nothing changed"
 *     })
 *     export type BadRequest = InstanceType<typeof BadRequest>
 *
 *     BadRequest.of("by must be positive") // {"error": "bad_request", "message": "by must be positive"}
 *
 * Errors with more fields (the gateway's `node`) are written as their own `Schema.Class`.
 */
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import { Schema } from "effect"

export interface ApiErrorAnnotations {
  /** the HTTP status it is answered with */
  readonly status: number
  /** for OpenAPI */
  readonly description: string
}

/** A Schema class `{ error: code, message }` named `identifier`, answered with `status`. */
export const ApiError = <const Code extends string>(identifier: string, code: Code, annotations: ApiErrorAnnotations) => {
  class ApiError extends Schema.Class<ApiError>(identifier)(
    { error: Schema.Literal(code), message: Schema.String },
    HttpApiSchema.annotations({ status: annotations.status, description: annotations.description })
  ) {
    /** The error with this `message`. */
    static readonly of = (message: string): ApiError => new ApiError({ error: code, message })
  }
  return ApiError
}
