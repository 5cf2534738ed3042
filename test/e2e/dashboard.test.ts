/**
 * The gateway's dashboard in a real browser (Debian's chromium through playwright-core;
 * no browser is downloaded): it lists the 5 nodes of a real cluster, a click on Increment
 * changes the cluster value it shows, named counters are listed most recently written first
 * and searched, a killed node
 * stays shown down, and a screenshot is saved under test-results/.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { chromium } from "playwright-core"
import type { Browser, Page } from "playwright-core"
import * as Processes from "../../scripts/lib/Processes.js"
import * as LocalCluster from "./LocalCluster.js"

const CHROMIUM = "/usr/bin/chromium"
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
  "--disable-sync"
]
const resultsDir = path.join(Processes.repoRoot, "test-results")

const browser = Effect.acquireRelease(
  Effect.promise((): Promise<Browser> => chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true })),
  (b) => Effect.promise(() => b.close())
)

/** Waits until the page shows `value` as the cluster value. */
const shows = (page: Page, value: string, timeout: number) =>
  Effect.promise(() =>
    page.waitForFunction(`document.getElementById("cluster-value").textContent === ${JSON.stringify(value)}`, undefined, {
      timeout
    })
  )

describe("dashboard", () => {
  it.scopedLive("lists every node, and a click on Increment changes the cluster value", () =>
    Effect.gen(function*() {
      if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`)
      const cluster = yield* LocalCluster.start({ nodes: 5 })
      // some history for the chart
      for (let i = 0; i < 3; i++) yield* LocalCluster.post(`${cluster.gateway}/increment`, 2)
      const b = yield* browser
      const page = yield* Effect.promise(() => b.newPage({ viewport: { width: 1280, height: 860 } }))
      const errors: Array<string> = []
      page.on("pageerror", (e) => errors.push(e.message))
      page.on("requestfailed", (r) => {
        if (!r.url().startsWith(cluster.gateway)) errors.push(`request outside the gateway: ${r.url()}`)
      })
      yield* Effect.promise(() => page.goto(`${cluster.gateway}/`))

      // every node, healthy, with its value
      yield* Effect.promise(() =>
        page.waitForFunction(`document.querySelectorAll("tr[data-node][data-healthy=true]").length === 5`, undefined, {
          timeout: 30_000
        })
      )
      const rows = yield* Effect.promise(() => page.locator("tr[data-node]").count())
      expect(rows).toBe(5)
      const addrs = yield* Effect.promise(() => page.locator("tr[data-node]").evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-node"))))
      expect(new Set(addrs)).toEqual(new Set(cluster.nodes.map((n) => n.http)))
      yield* shows(page, "6", 30_000)

      // a click on Increment changes the shown value, to what the cluster then holds
      yield* Effect.promise(() => page.click("#increment"))
      yield* shows(page, "7", 15_000)
      expect(yield* LocalCluster.converged(cluster.nodes)).toBe(7)
      // and the page sees every node agree
      yield* Effect.promise(() =>
        page.waitForFunction(`document.getElementById("convergence").textContent.includes("every healthy node agrees")`, undefined, {
          timeout: 15_000
        })
      )
      yield* Effect.promise(() => page.click("#decrement"))
      yield* shows(page, "6", 15_000)
      // named counters, most recently written first, and the search box narrows them by prefix.
      // Each write is let reach every node before the next, so every node saw them in this order.
      const write = (name: string, by: number, value: number) =>
        Effect.gen(function*() {
          expect((yield* LocalCluster.post(`${cluster.gateway}/counters/${name}/increment`, by)).status).toBe(200)
          yield* LocalCluster.waitUntil(
            Effect.map(
              Effect.forEach(cluster.nodes, (n) => LocalCluster.json(`http://${n.http}/counters/${name}`)),
              (bodies) => bodies.every((b) => (b as { value?: number } | undefined)?.value === value)
            ),
            "15 seconds",
            `${name} = ${value} on every node`
          )
        })
      // the page shows the answer of the write; every node holds it soon after
      yield* LocalCluster.waitUntil(
        Effect.map(LocalCluster.values(cluster.nodes), (vs) => vs.every((v) => v === 6)),
        "15 seconds",
        "the decrement on every node"
      )
      yield* write("likes:a", 3, 3)
      yield* write("likes:b", 1, 1)
      yield* write("views", 5, 5)
      const countersShown = (n: number) =>
        Effect.promise(() =>
          page.waitForFunction(`document.querySelectorAll("tr[data-counter]").length === ${n}`, undefined, { timeout: 15_000 })
        )
      const shownNames = Effect.promise(() => page.locator("tr[data-counter]").evaluateAll((trs) => trs.map((tr) => tr.textContent)))
      const shownInOrder = (names: ReadonlyArray<string>) =>
        Effect.promise(() =>
          page.waitForFunction(
            `JSON.stringify([...document.querySelectorAll("tr[data-counter]")].map((tr) => tr.textContent)) === ${JSON.stringify(JSON.stringify(names))}`,
            undefined,
            { timeout: 15_000 }
          )
        ).pipe(Effect.catchAllDefect((e) => Effect.flatMap(shownNames, (shown) => Effect.die(new Error(`shown: ${JSON.stringify(shown)}: ${String(e)}`)))))
      yield* countersShown(4)
      yield* shownInOrder(["views5", "likes:b1", "likes:a3", "default6"])
      expect(yield* Effect.promise(() => page.locator("#counter-page").textContent())).toContain("most recently written first")
      yield* Effect.promise(() => page.fill("#search", "likes:"))
      yield* shownInOrder(["likes:b1", "likes:a3"])
      // a write moves a counter to the top
      yield* write("likes:a", 1, 4)
      yield* shownInOrder(["likes:a4", "likes:b1"])
      yield* Effect.promise(() => page.fill("#search", ""))
      yield* shownInOrder(["likes:a4", "views5", "likes:b1", "default6"])

      // a node that dies stays in the table, shown down with since when
      const victim = cluster.nodes[4]!
      victim.child.kill("SIGKILL")
      yield* victim.child.exited
      yield* Effect.promise(() =>
        page.waitForFunction(
          `(() => { const tr = document.querySelector('tr[data-node="${victim.http}"]'); return tr !== null && tr.getAttribute("data-healthy") === "false" && tr.textContent.includes("since"); })()`,
          undefined,
          { timeout: 30_000 }
        )
      )
      expect(yield* Effect.promise(() => page.locator("tr[data-node]").count())).toBe(5)
      expect(yield* Effect.promise(() => page.locator("#health-text").textContent())).toBe("4 / 5 nodes healthy")
      // a favicon of its own: the page asks nothing outside the gateway for it
      expect(yield* Effect.promise(() => page.locator('link[rel="icon"]').getAttribute("href"))).toMatch(/^data:image\/svg\+xml,/)

      // let the chart draw a few points, then keep a picture of the page
      yield* Effect.promise(() => page.waitForTimeout(3000))
      fs.mkdirSync(resultsDir, { recursive: true })
      const file = path.join(resultsDir, "dashboard.png")
      yield* Effect.promise(() => page.screenshot({ path: file, fullPage: true }))
      expect(fs.statSync(file).size).toBeGreaterThan(10_000)
      expect(errors).toEqual([])
    }), { timeout: 240_000 })
})
