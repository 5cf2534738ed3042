/**
 * What this program is: the package version (from dcounter's package.json, found above
 * this module both in `dist/` and in the bundle) and the Node.js version. Shown by
 * `dcounter --version`, `dcounter_build_info` and the OpenAPI documents.
 */
import { readFileSync } from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import type { Family } from "./Prometheus.js"

let cached: string | undefined

/** The version in package.json (the nearest one above this module that is dcounter's). */
export const version = (): string => {
  if (cached !== undefined) return cached
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8")) as { name?: string; version?: string }
      if (pkg.name === "dcounter" && pkg.version !== undefined) return (cached = pkg.version)
    } catch {
      // no package.json here: look one level up
    }
    dir = path.dirname(dir)
  }
  return (cached = "unknown")
}

/** `dcounter_build_info{version,role,nodejs} 1`, the usual way to export a version. */
export const family = (role: string): Family => ({
  name: "dcounter_build_info",
  type: "gauge",
  help: "Always 1; the labels say which dcounter version and role this is, on which Node.js.",
  samples: [{
    name: "dcounter_build_info",
    labels: [["version", version()], ["role", role], ["nodejs", process.version]],
    value: 1
  }]
})
