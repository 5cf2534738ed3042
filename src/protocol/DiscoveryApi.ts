/**
 * The discovery role's HTTP API (see CONTRACT.md, "discovery"): one definition of routes,
 * bodies, errors and security, from which the server routes and decodes and OpenAPI is
 * generated. Errors are JSON `{"error": "<code>", "message": "<human text>"}`.
 *
 * With a cluster key, the `discovery` group (register, heartbeat, peers, deregister)
 * requires `Authorization: Bearer <key>`; `/health` never does.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import * as OpenApi from "@effect/platform/OpenApi"
import { Schema } from "effect"
import { ApiError } from "../api/ApiError.js"
import { HostPort } from "./Message.js"
import { ProbesGroup } from "../api/Probes.js"

// ---------------------------------------------------------------------------------------
// errors

/** Malformed JSON, a missing field, a bad address or a wrong type (400). */
export const BadRequest = ApiError("DiscoveryBadRequest", "bad_request", {
  status: 400,
  description: "The request body is malformed; nothing changed"
})
export type BadRequest = InstanceType<typeof BadRequest>

/** A cluster key is set and the request did not carry it (401). */
export const Unauthorized = ApiError("DiscoveryUnauthorized", "unauthorized", {
  status: 401,
  description: "Missing or wrong `Authorization: Bearer <cluster key>`"
})
export type Unauthorized = InstanceType<typeof Unauthorized>

/** A heartbeat for an address that is not registered (404): the client registers again. */
export const NotRegistered = ApiError("DiscoveryNotRegistered", "not_registered", {
  status: 404,
  description: "The address is not registered (or expired): register again"
})
export type NotRegistered = InstanceType<typeof NotRegistered>

/** The registry is at its bound and the address is new (507). */
export const RegistryFull = ApiError("DiscoveryRegistryFull", "registry_full", {
  status: 507,
  description: "The registry holds its maximum number of peers"
})
export type RegistryFull = InstanceType<typeof RegistryFull>

// ---------------------------------------------------------------------------------------
// bodies

/** A node id as nodes advertise it: 1 to 128 visible ASCII characters. */
export const NodeId = Schema.String.pipe(
  Schema.pattern(/^[\x21-\x7e]{1,128}$/, { message: () => "a nodeId is 1 to 128 visible ASCII characters" })
)

export const RegisterRequest = Schema.Struct({
  addr: HostPort,
  httpAddr: HostPort,
  nodeId: NodeId
}).annotations({ identifier: "RegisterRequest" })
export type RegisterRequest = typeof RegisterRequest.Type

export const AddrRequest = Schema.Struct({
  addr: HostPort
}).annotations({ identifier: "AddrRequest" })
export type AddrRequest = typeof AddrRequest.Type

export const Empty = Schema.Struct({}).annotations({ identifier: "Empty" })

export const Peer = Schema.Struct({
  addr: HostPort,
  httpAddr: HostPort,
  nodeId: Schema.String,
  /** ISO-8601, UTC */
  lastSeen: Schema.Date
}).annotations({ identifier: "Peer" })
export type Peer = typeof Peer.Type

export const Peers = Schema.Array(Peer).annotations({ identifier: "Peers" })

export const Health = Schema.Struct({
  status: Schema.Literal("ok"),
  role: Schema.Literal("discovery"),
  peers: Schema.NonNegativeInt
}).annotations({ identifier: "DiscoveryHealth" })

// ---------------------------------------------------------------------------------------
// security

/**
 * `Authorization: Bearer <cluster key>` on the `discovery` group. Its layer (see
 * DiscoveryHandlers) lets everything through when no key is configured.
 */
export class ClusterAuth extends HttpApiMiddleware.Tag<ClusterAuth>()("dcounter/DiscoveryClusterAuth", {
  failure: Unauthorized,
  security: {
    bearer: HttpApiSecurity.bearer.pipe(
      HttpApiSecurity.annotate(
        OpenApi.Description,
        "The cluster key (`--cluster-key`), required when discovery runs with one"
      )
    )
  }
}) {}

// ---------------------------------------------------------------------------------------
// API

export class DiscoveryGroup extends HttpApiGroup.make("discovery")
  .add(
    HttpApiEndpoint.post("register", "/register").annotate(OpenApi.Summary, "Register a node").annotate(OpenApi.Description, "Adds or refreshes a node's gossip and HTTP addresses and id; it then sends heartbeats.")
      .setPayload(RegisterRequest)
      .addSuccess(Empty)
      .addError(RegistryFull)
  )
  .add(
    HttpApiEndpoint.post("heartbeat", "/heartbeat").annotate(OpenApi.Summary, "Keep a registration alive").annotate(OpenApi.Description, "404 when the address is not registered (the node then registers again).")
      .setPayload(AddrRequest)
      .addSuccess(Empty)
      .addError(NotRegistered)
  )
  .add(HttpApiEndpoint.get("peers", "/peers").annotate(OpenApi.Summary, "List the registered nodes").annotate(OpenApi.Description, "Every node heard from within the peer TTL, with when it was last seen.").addSuccess(Peers))
  .add(
    HttpApiEndpoint.post("deregister", "/deregister").annotate(OpenApi.Summary, "Remove a node").annotate(OpenApi.Description, "Called by a node that shuts down cleanly.")
      .setPayload(AddrRequest)
      .addSuccess(Empty)
  )
  .middleware(ClusterAuth)
  .annotate(OpenApi.Description, "Registration of nodes (with the cluster key when discovery has one)")
{}

export class HealthGroup extends HttpApiGroup.make("health")
  .add(HttpApiEndpoint.get("health", "/health").annotate(OpenApi.Summary, "Whether discovery is up").annotate(OpenApi.Description, "Always 200 while the process answers.").addSuccess(Health))
  .annotate(OpenApi.Description, "Whether discovery is up")
{}

export class DiscoveryApi extends HttpApi.make("discovery")
  .add(DiscoveryGroup)
  .add(HealthGroup)
  .add(ProbesGroup)
  .addError(BadRequest)
  .annotate(OpenApi.Title, "dcounter discovery")
  .annotate(OpenApi.Description, "Registry of dcounter nodes: register, heartbeat, list, deregister")
{}
