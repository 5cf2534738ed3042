/**
 * No Docker engine runs here, so the compose file and the Dockerfile are checked as text:
 * every service's command and environment must be accepted by the real CLI parser with
 * the role the service is meant to have, and ports, volumes, addresses and dependencies
 * must be consistent with what each role then listens on.
 */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Option } from "effect"
import { spawnSync } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import * as path from "node:path"
import { parse as parseYaml } from "yaml"
import type { Invocation } from "../../src/cli/Invocation.js"
import { parse } from "../../src/cli/Invocation.js"

const root = path.resolve(import.meta.dirname, "../..")
const compose = parseYaml(readFileSync(path.join(root, "docker/docker-compose.yml"), "utf8"), { merge: true }) as {
  services: Record<string, Service>
  volumes?: Record<string, unknown>
}
const dockerfile = readFileSync(path.join(root, "docker/Dockerfile"), "utf8")

interface Service {
  image?: string
  build?: { context: string; dockerfile: string }
  command?: string | ReadonlyArray<string>
  entrypoint?: string | ReadonlyArray<string>
  environment?: Record<string, string | number> | ReadonlyArray<string>
  ports?: ReadonlyArray<string>
  volumes?: ReadonlyArray<string>
  hostname?: string
  depends_on?: Record<string, { condition: string }> | ReadonlyArray<string>
}

const envOf = (service: Service): Record<string, string> => {
  const env = service.environment ?? {}
  if (Array.isArray(env)) {
    return Object.fromEntries(env.map((kv: string) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]))
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)]))
}

const argsOf = (service: Service): ReadonlyArray<string> =>
  service.command === undefined ? [] : typeof service.command === "string" ? service.command.split(/\s+/).filter((a) => a !== "") : service.command

/** What the real CLI makes of a service, with the image's own environment underneath. */
const invocationOf = (service: Service) =>
  parse(argsOf(service), { DCOUNTER_LOG_FORMAT: "json", DCOUNTER_DATA_DIR: "/data", ...envOf(service) }).pipe(
    Effect.either,
    Effect.provide(NodeContext.layer)
  )

const portOf = (addr: string) => Number(addr.slice(addr.lastIndexOf(":") + 1))
const hostOf = (addr: string) => addr.slice(0, addr.lastIndexOf(":"))

const resolveAll = Effect.gen(function*() {
  const out: Array<[string, Service, Invocation]> = []
  for (const [name, service] of Object.entries(compose.services)) {
    const result = yield* invocationOf(service)
    if (Either.isLeft(result)) throw new Error(`service ${name}: dcounter: ${result.left.message}`)
    out.push([name, service, result.right])
  }
  return out
})

describe("docker-compose.yml", () => {
  it.effect("runs 1 discovery, 5 nodes and 1 gateway, each accepted by the real CLI parser", () =>
    Effect.gen(function*() {
      const services = yield* resolveAll
      const roles = services.map(([, , inv]) => inv._tag).sort()
      expect(roles).toEqual(["Discovery", "Gateway", "Node", "Node", "Node", "Node", "Node"])
      for (const [name, service] of services) {
        expect(service.build?.dockerfile, name).toBe("docker/Dockerfile")
        expect(service.image, name).toBe("dcounter:latest")
      }
    }))

  it.effect("publishes exactly the port each role listens on, on distinct host ports", () =>
    Effect.gen(function*() {
      const services = yield* resolveAll
      const hostPorts: Array<number> = []
      for (const [name, service, inv] of services) {
        const listen = inv._tag === "Node" ? inv.config.httpAddr : inv._tag === "Gateway" || inv._tag === "Discovery" ? inv.config.addr : ""
        const ports = service.ports ?? []
        expect(ports.length, name).toBe(1)
        const [host, container] = ports[0]!.split(":").map(Number)
        expect(container, `${name} publishes the port it listens on`).toBe(portOf(listen))
        hostPorts.push(host!)
      }
      expect(new Set(hostPorts).size).toBe(hostPorts.length)
      expect(hostPorts).toEqual(expect.arrayContaining([8000, 8080, 8010, 8011, 8012, 8013, 8014]))
    }))

  it.effect("gives every node its own volume on its data directory, and only nodes have one", () =>
    Effect.gen(function*() {
      const services = yield* resolveAll
      const used: Array<string> = []
      for (const [name, service, inv] of services) {
        if (inv._tag !== "Node") {
          expect(service.volumes ?? [], name).toEqual([])
          continue
        }
        expect(service.volumes, name).toHaveLength(1)
        const [volume, mount] = service.volumes![0]!.split(":")
        expect(mount, `${name} mounts its --data-dir`).toBe(inv.config.dataDir)
        expect(Object.keys(compose.volumes ?? {}), `${name}'s volume is declared`).toContain(volume)
        used.push(volume!)
      }
      expect(new Set(used).size).toBe(5)
    }))

  it.effect("nodes advertise their service name; every address points at an existing service", () =>
    Effect.gen(function*() {
      const services = yield* resolveAll
      const byName = new Map(services.map(([name, service, inv]) => [name, { service, inv }]))
      const discovery = services.find(([, , inv]) => inv._tag === "Discovery")!
      for (const [name, service, inv] of services) {
        if (inv._tag === "Discovery") {
          expect(hostOf(inv.config.addr), "discovery listens on every interface").toBe("0.0.0.0")
        }
        if (inv._tag === "Gateway") {
          expect(hostOf(inv.config.addr)).toBe("0.0.0.0")
          expect(Option.getOrThrow(inv.config.discovery)).toBe(`${discovery[0]}:${portOf((discovery[2] as Extract<Invocation, { _tag: "Discovery" }>).config.addr)}`)
        }
        if (inv._tag === "Node") {
          // peers and the gateway dial what a node advertises: its own service name
          expect(hostOf(inv.config.addr), name).toBe(name)
          expect(service.hostname ?? name).toBe(name)
          expect(hostOf(inv.config.httpAddr), name).toBe(name)
          expect(Option.getOrThrow(inv.config.discovery)).toBe(`${discovery[0]}:8000`)
        }
        const deps = service.depends_on === undefined ? [] : Array.isArray(service.depends_on) ? service.depends_on : Object.keys(service.depends_on)
        for (const dep of deps) expect(byName.has(dep), `${name} depends on ${dep}`).toBe(true)
      }
      const nodeAddrs = services.filter(([, , inv]) => inv._tag === "Node").map(([, , inv]) => (inv as Extract<Invocation, { _tag: "Node" }>).config.addr)
      expect(new Set(nodeAddrs).size).toBe(5)
    }))

  it.effect("a typo in a service's settings would be caught", () =>
    Effect.gen(function*() {
      const broken: Service = { environment: { ...envOf(compose.services["node1"]!), DCOUNTER_SYNC_INTERVAL: "2 seconds" } }
      const result = yield* invocationOf(broken)
      expect(Either.isLeft(result)).toBe(true)
    }))
})

describe("Dockerfile", () => {
  it("is multi-stage, runs as a non-root user on a slim image, with a HEALTHCHECK and the dcounter entrypoint", () => {
    const froms = dockerfile.match(/^FROM\s+\S+/gm) ?? []
    expect(froms.length).toBeGreaterThanOrEqual(2)
    expect(froms.at(-1)).toMatch(/node:20-slim/)
    const runtime = dockerfile.slice(dockerfile.lastIndexOf("FROM "))
    expect(runtime).toMatch(/^USER\s+(node|\d{3,})\s*$/m)
    expect(runtime).toMatch(/^HEALTHCHECK[\s\S]*dist\/scripts\/healthcheck\.js/m)
    expect(runtime).toMatch(/^ENTRYPOINT \["node", "\/app\/bin\/dcounter\.js"\]/m)
    // the files the image copies and runs exist in the repository (compiled from these sources)
    for (const file of ["bin/dcounter.js", "scripts/healthcheck.ts", "package-lock.json", "tsconfig.build.json"]) {
      expect(() => readFileSync(path.join(root, file)), file).not.toThrow()
    }
  })
})

// Debian's docker-compose 1.29 reads the Compose Specification without its later top-level
// `name` (it fails with "'name' does not match any of the regexes: '^x-'"); `docker
// compose` v2 reads both. Only keys both know keep the file usable by either.
const composeV1 = ["/usr/bin/docker-compose", "/usr/local/bin/docker-compose"].find((p) => existsSync(p))

describe("docker-compose.yml for both docker compose v2 and docker-compose 1.29", () => {
  it("has only top-level keys that docker-compose 1.29 accepts", () => {
    const raw = parseYaml(readFileSync(path.join(root, "docker/docker-compose.yml"), "utf8")) as Record<string, unknown>
    for (const key of Object.keys(raw)) {
      expect(["version", "services", "volumes", "networks", "secrets", "configs"].includes(key) || key.startsWith("x-"), key)
        .toBe(true)
    }
  })

  it.skipIf(composeV1 === undefined)("docker-compose 1.29 validates it (skipped: docker-compose is not installed)", () => {
    const result = spawnSync(composeV1!, ["-f", path.join(root, "docker/docker-compose.yml"), "config", "-q"], {
      encoding: "utf8",
      timeout: 30_000
    })
    expect(result.stderr).toBe("")
    expect(result.status).toBe(0)
  })
})
