/**
 * What this program is: the package version (from dcounter's package.json, found above
 * this module both in `dist/` and in the bundle) and the Node.js version. Shown by
 * `dcounter --version`, `dcounter_build_info` and the OpenAPI documents.
 */
import { readFileSync } from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import type { Family } from "./Prometheus.js"

interface Package {
  readonly version: string
  readonly license: string
}

let cached: Package | undefined

/** dcounter's package.json (the nearest one above this module whose name is dcounter). */
const pkg = (): Package => {
  if (cached !== undefined) return cached
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 5; i++) {
    try {
      const json = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8")) as {
        name?: string
        version?: string
        license?: string
      }
      if (json.name === "dcounter" && json.version !== undefined) {
        return (cached = { version: json.version, license: json.license ?? "unknown" })
      }
    } catch {
      // no package.json here: look one level up
    }
    dir = path.dirname(dir)
  }
  return (cached = { version: "unknown", license: "unknown" })
}

/** The version in package.json. */
export const version = (): string => pkg().version

/** The license in package.json (an SPDX identifier). */
export const license = (): string => pkg().license

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
