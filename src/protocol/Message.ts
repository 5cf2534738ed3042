/**
 * Gossip wire messages. Every message travels in one frame (see Frame.ts) encoded by
 * Codec.ts; what a peer sends is validated against these schemas before anything uses it.
 */
import { Either, Schema } from "effect"
import { Entries, validateEntries } from "../crdt/Entry.js"
import { ReplicaId } from "../crdt/ReplicaId.js"

/** The protocol version this build speaks; Hello carries it. */
export const PROTOCOL_VERSION = 1

/** `host:port`, as given to `--addr` and advertised in Hello. */
export const HostPort = Schema.String.pipe(
  Schema.pattern(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253}):([0-9]{1,5})$/, {
    message: () => "an address is host:port"
  }),
  Schema.filter((s) => {
    const port = Number(s.slice(s.lastIndexOf(":") + 1))
    return (port >= 1 && port <= 65535) || "the port must be 1..65535"
  })
)
export type HostPort = typeof HostPort.Type

/** First frame on every connection: who is talking and where to reach it. */
export class Hello extends Schema.TaggedClass<Hello>()("Hello", {
  protocol: Schema.Int,
  replicaId: ReplicaId,
  gossipAddr: HostPort,
  httpAddr: HostPort
}) {}

/**
 * A point in a peer's history: that peer's state at map version `version` of its
 * incarnation `incarnation` (a random id per start: versions restart with the process).
 * "I hold everything you held at this point" is what an anti-entropy watermark says.
 */
export class Watermark extends Schema.Class<Watermark>("Watermark")({
  incarnation: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(64)),
  version: Schema.NonNegativeInt
}) {}

/**
 * "Here is the digest of my state": equal -> DigestAck, different -> the receiver's
 * entries changed since `since` (all of them when `since` is absent or from another
 * incarnation), and, unless this pull is itself a `reply`, a pull back so that the asker
 * answers with what the receiver lacks.
 */
export class DigestPull extends Schema.TaggedClass<DigestPull>()("DigestPull", {
  digest: Schema.String.pipe(Schema.maxLength(128)),
  /** How many entries the asker holds: a hint for choosing delta or full push. */
  entries: Schema.NonNegativeInt,
  /** The asker's watermark for the receiver: what of the receiver's history it holds. */
  since: Schema.optional(Watermark),
  /** A pull sent back in answer to a pull: answered, never pulled back again. */
  reply: Schema.optional(Schema.Boolean),
  /** The asker's own incarnation: a whole state already on its way to it is not sent again. */
  incarnation: Schema.optional(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(64)))
}) {}

/** "My digest is the same as yours." */
export class DigestAck extends Schema.TaggedClass<DigestAck>()("DigestAck", {
  digest: Schema.String.pipe(Schema.maxLength(128)),
  /** Where the sender's history stood: the asker now holds all of it up to here. */
  at: Schema.optional(Watermark)
}) {}

/**
 * Part `part` (0-based) of `parts` of an anti-entropy answer: once every part has arrived,
 * the receiver holds the sender's state as of `upTo`.
 */
export class SyncPart extends Schema.Class<SyncPart>("SyncPart")({
  upTo: Watermark,
  part: Schema.NonNegativeInt,
  parts: Schema.Int.pipe(Schema.between(1, 1_000_000))
}) {}

/**
 * Set on an eager push that holds every entry that changed in the sender's history from
 * `from` (exclusive) to `to` of incarnation `incarnation`: a receiver whose watermark for
 * the sender is at `from` or later moves it to `to`, so anti-entropy has nothing to send
 * for what the eager pushes carried.
 */
export class Covers extends Schema.Class<Covers>("Covers")({
  incarnation: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(64)),
  from: Schema.NonNegativeInt,
  to: Schema.NonNegativeInt
}) {}

/** State to merge: the sender's full state (`full`) or a delta of it. */
export class Push extends Schema.TaggedClass<Push>()("Push", {
  full: Schema.Boolean,
  entries: Entries,
  /** The sender's digest after this state, so the receiver can tell if it is now equal. */
  digest: Schema.String.pipe(Schema.maxLength(128)),
  /** Set on the parts of an anti-entropy answer (see `SyncPart`). */
  sync: Schema.optional(SyncPart),
  /** Set on an eager push that covers a stretch of the sender's history (see `Covers`). */
  covers: Schema.optional(Covers)
}) {}

/**
 * A Push built without the generic Schema check of every entry, which `new Push(...)` runs
 * and which allocates per entry, too slow for a full state: the entries are checked
 * by `validateEntries` (same verdict, no allocation), the other fields by the schema.
 * Throws on invalid input, like the constructor. Use it on the gossip hot path.
 */
export const makePush = (props: {
  readonly full: boolean
  readonly entries: Entries
  readonly digest: string
  readonly sync?: SyncPart | undefined
  readonly covers?: Covers | undefined
}): Push => {
  const entries = validateEntries(props.entries)
  if (Either.isLeft(entries)) throw entries.left
  const head = new Push({ full: props.full, entries: [], digest: props.digest, sync: props.sync, covers: props.covers })
  return new Push({ full: head.full, entries: entries.right, digest: head.digest, sync: head.sync, covers: head.covers }, true)
}

export class PeerInfo extends Schema.Class<PeerInfo>("PeerInfo")({
  gossipAddr: HostPort,
  httpAddr: HostPort,
  replicaId: Schema.optional(ReplicaId)
}) {}

/** Peer exchange: peers the sender knows to be alive. */
export class PeerList extends Schema.TaggedClass<PeerList>()("PeerList", {
  peers: Schema.Array(PeerInfo).pipe(Schema.maxItems(4096))
}) {}

/** Failure detection probe; answered by PingAck with the same sequence number. */
export class Ping extends Schema.TaggedClass<Ping>()("Ping", {
  seq: Schema.NonNegativeInt
}) {}

export class PingAck extends Schema.TaggedClass<PingAck>()("PingAck", {
  seq: Schema.NonNegativeInt
}) {}

export const Message = Schema.Union(Hello, DigestPull, DigestAck, Push, PeerList, Ping, PingAck)
export type Message = typeof Message.Type
