import { describe, expect, it } from "@effect/vitest"
import * as Dashboard from "../../src/gateway/Dashboard.js"

describe("Dashboard", () => {
  it("is one self-contained page whose script compiles", () => {
    const scripts = [...Dashboard.html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]!)
    expect(scripts).toHaveLength(1)
    // compiles (does not run: there is no DOM here)
    expect(() => new Function(scripts[0]!)).not.toThrow()
    // nothing is fetched from elsewhere: no external script, style, font or image (the
    // favicon is inline)
    expect(Dashboard.html).not.toMatch(/<script[^>]*\ssrc=|<link[^>]*\shref="(?!data:)|@import|url\(["']?https?:/i)
    expect(Dashboard.html).toMatch(/<link rel="icon" href="data:image\/svg\+xml,/)
    // the elements the page and its browser test rely on
    for (const id of ["cluster-value", "increment", "decrement", "nodes", "chart", "convergence", "counters", "search"]) {
      expect(Dashboard.html).toContain(`id="${id}"`)
    }
    // it reads only the gateway's own API
    const fetched = [...scripts[0]!.matchAll(/getJson\("([^"]+)"/g)].map((m) => m[1])
    // "/" + kind: /increment, /decrement; "/counters?" + the page's query
    expect(fetched.sort()).toEqual(["/", "/counter", "/counters?", "/nodes"])
  })
})
