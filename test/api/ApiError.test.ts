import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import { ApiError } from "../../src/api/ApiError.js"

const Conflict = ApiError("TestConflict", "conflict", { status: 409, description: "It conflicts" })
type Conflict = InstanceType<typeof Conflict>

describe("ApiError", () => {
  it("of makes the contract's body; it encodes to exactly {error, message}", () => {
    const error: Conflict = Conflict.of("already there")
    expect(error).toBeInstanceOf(Conflict)
    expect(error.error).toBe("conflict")
    expect(JSON.stringify(Schema.encodeSync(Conflict)(error))).toBe(`{"error":"conflict","message":"already there"}`)
  })

  it("carries its identifier, status and description into the API and its OpenAPI document", () => {
    expect(Conflict.identifier).toBe("TestConflict")
    expect(HttpApiSchema.getStatusError(Conflict)).toBe(409)
    const api = HttpApi.make("test").add(
      HttpApiGroup.make("g").add(HttpApiEndpoint.post("put", "/put").addSuccess(Schema.Struct({})).addError(Conflict))
    )
    const spec = OpenApi.fromApi(api)
    const response = spec.paths["/put"]?.post?.responses[409]
    expect(JSON.stringify(response)).toContain("#/components/schemas/TestConflict")
    expect(spec.components.schemas["TestConflict"]).toMatchObject({
      type: "object",
      required: ["error", "message"],
      properties: { error: { type: "string", enum: ["conflict"] }, message: { type: "string" } },
      description: "It conflicts"
    })
  })

  it("decodes only its own code, to an instance", () => {
    const decode = Schema.decodeUnknownEither(Conflict)
    const ok = decode({ error: "conflict", message: "m" })
    expect(Either.isRight(ok) && ok.right instanceof Conflict).toBe(true)
    expect(Either.isLeft(decode({ error: "bad_request", message: "m" }))).toBe(true)
    expect(Either.isLeft(decode({ error: "conflict" }))).toBe(true)
  })

  it("each call is a class of its own", () => {
    const Other = ApiError("TestOther", "conflict", { status: 409, description: "It conflicts" })
    expect(Other.of("m")).not.toBeInstanceOf(Conflict)
  })
})
