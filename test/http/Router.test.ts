import { describe, expect, it } from "@effect/vitest"
import { FastCheck } from "effect"
import { compilePath, MalformedPath, Router, UnsupportedPath } from "../../src/http/internal/router.js"

const make = () => {
  const router = new Router<string>()
  router.add("GET", "/counter", "counter")
  router.add("POST", "/increment", "increment")
  router.add("GET", "/counters", "list")
  router.add("GET", "/counters/:name", "get")
  router.add("DELETE", "/counters/:name", "delete")
  router.add("POST", "/counters/:name/increment", "namedIncrement")
  router.add("GET", "/counters/special", "special")
  router.add("GET", "/files/*", "files")
  router.add("GET", "/opt/:a?", "optional")
  return router
}

describe("Router", () => {
  it("finds static routes, parameters, methods and Allow", () => {
    const router = make()
    expect(router.find("/counter")?.table.byMethod.get("GET")).toBe("counter")
    expect(router.find("/counter/")).toBeUndefined()
    expect(router.find("/nope")).toBeUndefined()
    const get = router.find("/counters/abc")!
    expect(get.table.byMethod.get("GET")).toBe("get")
    expect(get.params).toEqual({ name: "abc" })
    // HEAD follows GET in Allow (the server answers it with the GET route)
    expect(get.table.allow).toBe("GET, HEAD, DELETE")
    expect(router.find("/counters/abc/increment")?.table.allow).toBe("POST")
    expect(router.find("/counters/abc/increment")?.params).toEqual({ name: "abc" })
    expect(router.find("/counters/abc/decrement")).toBeUndefined()
    expect(router.find("/counters/")).toBeUndefined()
    // a static route wins over a parameter in the same place
    expect(router.find("/counters/special")?.table.byMethod.get("GET")).toBe("special")
    expect(router.find("/files/a/b.txt")?.params).toEqual({ "*": "a/b.txt" })
    expect(router.find("/opt")?.table.byMethod.get("GET")).toBe("optional")
    expect(router.find("/opt/x")?.params).toEqual({ a: "x" })
  })

  it("refuses a second handler for the same method and path", () => {
    const router = make()
    expect(router.add("GET", "/counter", "again")).toBe(false)
    expect(router.add("GET", "/counters/:other", "again")).toBe(false)
    expect(router.add("PUT", "/counters/:other", "put")).toBe(true)
  })

  it("rejects paths it cannot serve and malformed escapes", () => {
    expect(() => compilePath("counter")).toThrow(UnsupportedPath)
    expect(() => compilePath("/file.:ext")).toThrow(UnsupportedPath)
    expect(() => compilePath("/a/:b?/c")).toThrow(UnsupportedPath)
    expect(() => compilePath("/a/*/c")).toThrow(UnsupportedPath)
    expect(compilePath("/a::b")).toEqual([{ _tag: "Static", value: "a:b" }])
    expect(() => make().find("/counters/%E0%A4%A")).toThrow(MalformedPath)
  })

  it.prop(
    "a parameter reads back whatever was percent-encoded into it",
    [FastCheck.string({ unit: "grapheme", minLength: 1, maxLength: 40 })],
    ([name]) => {
      const match = make().find(`/counters/${encodeURIComponent(name)}/increment`)
      expect(match?.table.byMethod.get("POST")).toBe("namedIncrement")
      expect(match?.params).toEqual({ name })
    },
    { fastCheck: { numRuns: 1000 } }
  )
})
