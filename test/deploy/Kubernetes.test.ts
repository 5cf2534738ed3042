/**
 * deploy/kubernetes: every manifest is valid against the Kubernetes API schemas (shipped
 * by the `kubernetes-models` package, validated offline with ajv), and is wired to the
 * program: the role's CLI accepts every flag and DCOUNTER_ variable the manifests pass (the
 * real parser runs on them, with the downward API values filled in), probe paths exist in
 * the role's API definition, and ports and names agree between containers, Services, DNS
 * discovery, volumes and the Secret.
 */
import { NodeContext } from "@effect/platform-node"
import * as OpenApi from "@effect/platform/OpenApi"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Option, Redacted } from "effect"
import { Service, Secret } from "kubernetes-models/v1"
import { Deployment, StatefulSet } from "kubernetes-models/apps/v1"
import { PodDisruptionBudget } from "kubernetes-models/policy/v1"
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { parseAllDocuments } from "yaml"
import { envName, flagNamesOf } from "../../src/cli/Flags.js"
import type { Invocation } from "../../src/cli/Invocation.js"
import { parse } from "../../src/cli/Invocation.js"
import { advertisedAddr, advertisedHttpAddr } from "../../src/config/NodeConfig.js"
import { GatewayApi } from "../../src/gateway/GatewayApi.js"
import { NodeApi } from "../../src/node/NodeApi.js"

const dir = path.resolve(import.meta.dirname, "../../deploy/kubernetes")
const dockerfile = readFileSync(path.resolve(import.meta.dirname, "../../docker/Dockerfile"), "utf8")

interface Manifest {
  readonly apiVersion: string
  readonly kind: string
  readonly metadata: { readonly name: string; readonly labels?: Record<string, string> }
  readonly [key: string]: unknown
}

const readYaml = (file: string): ReadonlyArray<unknown> =>
  parseAllDocuments(readFileSync(path.join(dir, file), "utf8")).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]!.message}`)
    return doc.toJS()
  })

const kustomization = readYaml("kustomization.yaml")[0] as {
  readonly kind: string
  readonly resources: ReadonlyArray<string>
  readonly images?: ReadonlyArray<{ readonly name: string }>
}
const manifests: ReadonlyArray<readonly [string, Manifest]> = kustomization.resources.flatMap((file) =>
  readYaml(file).map((m) => [file, m as Manifest] as const)
)

/** The schema-carrying model of each kind the manifests use. */
const models: Record<string, new(data: never) => { validate(): void }> = {
  "v1/Service": Service,
  "v1/Secret": Secret,
  "apps/v1/StatefulSet": StatefulSet,
  "apps/v1/Deployment": Deployment,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget
}

const validate = (m: unknown): void => {
  const { apiVersion, kind } = m as Manifest
  const Model = models[`${apiVersion}/${kind}`]
  if (Model === undefined) throw new Error(`no schema for ${apiVersion} ${kind}`)
  new Model(m as never).validate()
}

const find = <T>(kind: string, name: string): T => {
  const found = manifests.find(([, m]) => m.kind === kind && m.metadata.name === name)
  if (found === undefined) throw new Error(`no ${kind} ${name}`)
  return found[1] as T
}

// ---------------------------------------------------------------------------------------
// pod templates as the CLI sees them

interface EnvVar {
  readonly name: string
  readonly value?: string
  readonly valueFrom?: { readonly fieldRef?: { readonly fieldPath: string } }
}
interface Port {
  readonly name: string
  readonly containerPort: number
}
interface Probe {
  readonly httpGet: { readonly path: string; readonly port: string | number }
}
interface Container {
  readonly name: string
  readonly image: string
  readonly args?: ReadonlyArray<string>
  readonly env?: ReadonlyArray<EnvVar>
  readonly ports: ReadonlyArray<Port>
  readonly livenessProbe: Probe
  readonly readinessProbe: Probe
  readonly volumeMounts?: ReadonlyArray<{ readonly name: string; readonly mountPath: string }>
  readonly resources: { readonly requests: Record<string, string>; readonly limits: Record<string, string> }
  readonly securityContext: Record<string, unknown>
}
interface PodSpec {
  readonly containers: ReadonlyArray<Container>
  readonly securityContext: { readonly runAsNonRoot?: boolean; readonly runAsUser?: number; readonly fsGroup?: number }
  readonly terminationGracePeriodSeconds: number
  readonly volumes?: ReadonlyArray<{ readonly name: string; readonly secret?: { readonly secretName: string } }>
}
interface Workload {
  readonly metadata: { readonly name: string }
  readonly spec: {
    readonly selector: { readonly matchLabels: Record<string, string> }
    readonly serviceName?: string
    readonly podManagementPolicy?: string
    readonly volumeClaimTemplates?: ReadonlyArray<{ readonly metadata: { readonly name: string } }>
    readonly template: { readonly metadata: { readonly labels: Record<string, string> }; readonly spec: PodSpec }
  }
}
interface ServiceManifest {
  readonly metadata: { readonly name: string }
  readonly spec: {
    readonly clusterIP?: string
    readonly publishNotReadyAddresses?: boolean
    readonly selector: Record<string, string>
    readonly ports: ReadonlyArray<{ readonly name: string; readonly port: number; readonly targetPort: string | number }>
  }
}

/** What the downward API gives in the test: a pod IP and a namespace. */
const downward: Record<string, string> = { "status.podIP": "10.1.2.3", "metadata.namespace": "prod" }

/** The container's environment with `$(VAR)` references expanded, as the kubelet does. */
const environmentOf = (container: Container): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const v of container.env ?? []) {
    const raw = v.value ?? downward[v.valueFrom?.fieldRef?.fieldPath ?? ""]
    if (raw === undefined) throw new Error(`${container.name}: env ${v.name} has no value the test knows`)
    out[v.name] = raw.replace(/\$\(([A-Z_][A-Z0-9_]*)\)/g, (_, name: string) => {
      const ref = out[name]
      if (ref === undefined) throw new Error(`${container.name}: $(${name}) is used before it is defined`)
      return ref
    })
  }
  return out
}

const portNamed = (container: Container, name: string | number): number => {
  if (typeof name === "number") return name
  const port = container.ports.find((p) => p.name === name)
  if (port === undefined) throw new Error(`${container.name} has no port named ${name}`)
  return port.containerPort
}

const portOf = (addr: string) => Number(addr.slice(addr.lastIndexOf(":") + 1))

/**
 * The real CLI parser over the container's args and environment (with the image's own
 * defaults underneath); `--cluster-key-file` points at a copy of the Secret's key.
 */
const invocationOf = (container: Container, keyFile: string) =>
  Effect.gen(function*() {
    const env = { DCOUNTER_LOG_FORMAT: "json", DCOUNTER_DATA_DIR: "/data", ...environmentOf(container) }
    const result = yield* parse(container.args ?? [], { ...env, DCOUNTER_CLUSTER_KEY_FILE: keyFile }).pipe(
      Effect.either,
      Effect.provide(NodeContext.layer)
    )
    if (Either.isLeft(result)) throw new Error(`${container.name}: dcounter refuses it: ${result.left.message}`)
    return { invocation: result.right as Invocation, env }
  })

const secretKeyFile = (mountPath: string, envPath: string) => {
  const secret = find<{ stringData: Record<string, string> }>("Secret", "dcounter-cluster-key")
  expect(path.dirname(envPath), "the key file is in the Secret's mount").toBe(mountPath)
  const key = secret.stringData[path.basename(envPath)]
  expect(key, `the Secret has the key ${path.basename(envPath)}`).toBeDefined()
  const tmp = mkdtempSync(path.join(tmpdir(), "dcounter-k8s-"))
  const file = path.join(tmp, "cluster-key")
  writeFileSync(file, key!)
  return { file, key: key!, cleanup: () => rmSync(tmp, { recursive: true, force: true }) }
}


// ---------------------------------------------------------------------------------------

describe("deploy/kubernetes manifests", () => {
  it("the kustomization lists every manifest of the folder, and the image is the Dockerfile's", () => {
    expect(kustomization.kind).toBe("Kustomization")
    const files = readdirSync(dir).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml").sort()
    expect([...kustomization.resources].sort()).toEqual(files)
    expect(kustomization.images?.map((i) => i.name)).toEqual(["dcounter"])
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node", "\/app\/bin\/dcounter.js"\]$/m)
    expect(dockerfile).toMatch(/^USER node$/m)
  })

  it("every manifest is valid against the Kubernetes API schemas", () => {
    expect(manifests.length).toBeGreaterThanOrEqual(6)
    for (const [file, manifest] of manifests) {
      try {
        validate(manifest)
      } catch (e) {
        throw new Error(`${file} (${manifest.kind} ${manifest.metadata.name}): ${String(e)}`)
      }
    }
  })

  it("the schema check catches a broken manifest", () => {
    const broken = structuredClone(find<{
      spec: { template: { spec: { containers: Array<{ ports: Array<{ containerPort: unknown }> }> } } }
    }>("StatefulSet", "dcounter-node"))
    broken.spec.template.spec.containers[0]!.ports[0]!.containerPort = "9000x"
    expect(() => validate(broken)).toThrow(/containerPort/)
    const noSelector = structuredClone(find<{ spec: { selector?: unknown } }>("Deployment", "dcounter-gateway"))
    delete noSelector.spec.selector
    expect(() => validate(noSelector)).toThrow(/selector/)
  })
})

describe("deploy/kubernetes wiring", () => {
  const nodes = find<Workload>("StatefulSet", "dcounter-node")
  const nodeService = find<ServiceManifest>("Service", "dcounter-nodes")
  const gateways = find<Workload>("Deployment", "dcounter-gateway")
  const gatewayService = find<ServiceManifest>("Service", "dcounter-gateway")

  it("every DCOUNTER_ variable the manifests pass names an option of the container's role", () => {
    for (const [workload, role] of [[nodes, "node"], [gateways, "gateway"]] as const) {
      for (const container of workload.spec.template.spec.containers) {
        expect(container.args).toEqual(["--role", role])
        const accepted = new Set([...flagNamesOf(role)].map(envName))
        for (const v of container.env ?? []) {
          if (v.name.startsWith("DCOUNTER_")) expect(accepted.has(v.name), `${role}: ${v.name}`).toBe(true)
        }
      }
    }
  })

  it.effect("the nodes: wildcard bind, pod IP advertised, DNS discovery of their headless Service, data on the volume", () =>
    Effect.gen(function*() {
      const container = nodes.spec.template.spec.containers[0]!
      const env = environmentOf(container)
      const mount = container.volumeMounts!.find((m) => m.name === "cluster-key")!
      const key = secretKeyFile(mount.mountPath, env["DCOUNTER_CLUSTER_KEY_FILE"]!)
      try {
        const { invocation } = yield* invocationOf(container, key.file)
        if (invocation._tag !== "Node") throw new Error(`expected a node, got ${invocation._tag}`)
        const config = invocation.config
        expect(Option.map(config.clusterKey, Redacted.value)).toEqual(Option.some(key.key))
        // listens on every interface, on the container's ports; tells others the pod IP
        expect(config.addr).toBe(`0.0.0.0:${portNamed(container, "gossip")}`)
        expect(config.httpAddr).toBe(`0.0.0.0:${portNamed(container, "http")}`)
        expect(advertisedAddr(config)).toBe(`${downward["status.podIP"]}:${portNamed(container, "gossip")}`)
        expect(advertisedHttpAddr(config)).toBe(`${downward["status.podIP"]}:${portNamed(container, "http")}`)
        // peers: the A records of the headless Service, on the node's own gossip port
        expect(nodes.spec.serviceName).toBe(nodeService.metadata.name)
        expect(nodeService.spec.clusterIP).toBe("None")
        expect(nodeService.spec.publishNotReadyAddresses).toBe(true)
        expect(config.discoveryDns).toEqual(Option.some({
          kind: "A",
          name: `${nodeService.metadata.name}.${downward["metadata.namespace"]}.svc.cluster.local`,
          port: undefined
        }))
        // the data directory is the claimed volume
        const dataMount = container.volumeMounts!.find((m) => m.mountPath === config.dataDir)
        expect(dataMount, "a volume is mounted at --data-dir").toBeDefined()
        expect(nodes.spec.volumeClaimTemplates!.map((t) => t.metadata.name)).toContain(dataMount!.name)
        expect(nodes.spec.podManagementPolicy).toBe("Parallel")
      } finally {
        key.cleanup()
      }
    }))

  it.effect("the gateways: the nodes' HTTP port from the same DNS name, their own port in their Service", () =>
    Effect.gen(function*() {
      const container = gateways.spec.template.spec.containers[0]!
      const env = environmentOf(container)
      const mount = container.volumeMounts!.find((m) => m.name === "cluster-key")!
      const key = secretKeyFile(mount.mountPath, env["DCOUNTER_CLUSTER_KEY_FILE"]!)
      try {
        const { invocation } = yield* invocationOf(container, key.file)
        if (invocation._tag !== "Gateway") throw new Error(`expected a gateway, got ${invocation._tag}`)
        const nodeContainer = nodes.spec.template.spec.containers[0]!
        expect(invocation.config.nodesDns).toEqual([{
          kind: "A",
          name: `${nodeService.metadata.name}.${downward["metadata.namespace"]}.svc.cluster.local`,
          port: portNamed(nodeContainer, "http")
        }])
        expect(portOf(invocation.config.addr)).toBe(portNamed(container, "http"))
        for (const port of gatewayService.spec.ports) {
          expect(portNamed(container, port.targetPort)).toBe(portOf(invocation.config.addr))
        }
      } finally {
        key.cleanup()
      }
    }))

  it("Services and the PodDisruptionBudget select the pods of their workload; Service ports are container ports", () => {
    const pdb = find<{ spec: { selector: { matchLabels: Record<string, string> }; maxUnavailable?: number } }>(
      "PodDisruptionBudget",
      "dcounter-node"
    )
    const pairs: ReadonlyArray<readonly [Workload, Record<string, string>]> = [
      [nodes, nodeService.spec.selector],
      [nodes, pdb.spec.selector.matchLabels],
      [gateways, gatewayService.spec.selector]
    ]
    for (const [workload, selector] of pairs) {
      expect(workload.spec.template.metadata.labels).toMatchObject(selector)
      expect(workload.spec.template.metadata.labels).toMatchObject(workload.spec.selector.matchLabels)
    }
    // the gateway selector does not catch nodes, nor the other way round
    expect(nodes.spec.template.metadata.labels).not.toMatchObject(gatewayService.spec.selector)
    expect(gateways.spec.template.metadata.labels).not.toMatchObject(nodeService.spec.selector)
    const nodeContainer = nodes.spec.template.spec.containers[0]!
    for (const port of nodeService.spec.ports) {
      // headless: clients dial the pod port directly, so the Service says the same number
      expect(port.port, port.name).toBe(portNamed(nodeContainer, port.targetPort))
    }
    expect(pdb.spec.maxUnavailable).toBe(1)
  })

  it("probes ask /livez and /readyz of the role's API, on its HTTP port", () => {
    const apis = { node: Object.keys(OpenApi.fromApi(NodeApi).paths), gateway: Object.keys(OpenApi.fromApi(GatewayApi).paths) }
    for (const [workload, role] of [[nodes, "node"], [gateways, "gateway"]] as const) {
      const container = workload.spec.template.spec.containers[0]!
      expect(container.livenessProbe.httpGet.path).toBe("/livez")
      expect(container.readinessProbe.httpGet.path).toBe("/readyz")
      for (const probe of [container.livenessProbe, container.readinessProbe]) {
        expect(apis[role]).toContain(probe.httpGet.path)
        expect(portNamed(container, probe.httpGet.port)).toBe(portNamed(container, "http"))
      }
    }
  })

  it("pods run as the image's unprivileged user, with limits and time to stop gracefully", () => {
    for (const workload of [nodes, gateways]) {
      const pod = workload.spec.template.spec
      expect(pod.securityContext.runAsNonRoot).toBe(true)
      expect(pod.securityContext.runAsUser).toBe(1000) // `node` in node:20-slim
      expect(pod.securityContext.fsGroup, "the Secret's file is readable by the pod's group").toBe(1000)
      // HTTP drain (2s) + deregistration (1s) + gossip close + WAL flush, with room
      expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(10)
      for (const container of pod.containers) {
        expect(container.image).toBe("dcounter")
        expect(Object.keys(container.resources.requests).sort()).toEqual(["cpu", "memory"])
        expect(container.resources.limits["memory"]).toBeDefined()
        expect(container.securityContext["allowPrivilegeEscalation"]).toBe(false)
      }
      const secretVolumes = (pod.volumes ?? []).filter((v) => v.secret !== undefined)
      expect(secretVolumes.map((v) => v.secret!.secretName)).toEqual(["dcounter-cluster-key"])
    }
  })
})
