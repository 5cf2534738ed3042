/**
 * The peers a node knew, kept in its data directory (`peers.json`) so that a node restarted
 * while discovery is down and without `--peers` can still find its cluster: at start it
 * learns them back (as if from peer exchange, so the usual failure detection prunes the ones
 * that are gone), and while it runs it rewrites the file with its alive and suspect peers.
 * Found by the chaos suite: a node its peers had declared dead, restarted during a discovery
 * outage, never rejoined. The file is a hint, never a source of truth: a missing or
 * unreadable file is logged and ignored.
 */
import * as Fs from "node:fs/promises"
import * as Path from "node:path"
import { Duration, Effect, Layer, Queue, Schedule, Schema } from "effect"
import * as PeerManager from "./PeerManager.js"
import { HostPort } from "../protocol/Message.js"
import { DataDir } from "../storage/DataDir.js"

const FILE = "peers.json"
/** Most peers remembered. */
const MAX_PEERS = 256

const KnownPeer = Schema.Struct({ gossipAddr: HostPort, httpAddr: Schema.optional(HostPort) })
const KnownPeersFile = Schema.parseJson(Schema.Array(KnownPeer).pipe(Schema.maxItems(MAX_PEERS)))
const decodeFile = Schema.decodeUnknownEither(KnownPeersFile)

/** Reads the remembered peers; none when the file is missing or invalid (logged). */
const load = Effect.fn("KnownPeers.load")(function*(dir: string) {
  const file = Path.join(dir, FILE)
  const text = yield* Effect.tryPromise(() => Fs.readFile(file, "utf8")).pipe(
    Effect.catchAll((e) =>
      e.error instanceof Error && "code" in e.error && e.error.code === "ENOENT"
        ? Effect.succeed(undefined)
        : Effect.logWarning(`cannot read ${file}; starting without remembered peers`, e.error).pipe(Effect.as(undefined))
    )
  )
  if (text === undefined) return []
  const decoded = decodeFile(text)
  if (decoded._tag === "Left") {
    yield* Effect.logWarning(`ignoring ${file}: not a list of peers`)
    return []
  }
  return decoded.right
})

/**
 * Writes the alive and suspect peers atomically (temp file + rename). Not to be run twice at
 * once (both would write the same temp file): `layer` runs it under one lock, and the write
 * is uninterruptible so that an interrupted save cannot go on writing behind the lock.
 */
const save = Effect.fn("KnownPeers.save")(function*(
  dir: string,
  peers: PeerManager.PeerManager["Type"],
  last: { written: string | undefined }
) {
  const views = yield* peers.peers
  const known = views
    .filter((p) => p.status !== "dead")
    .slice(0, MAX_PEERS)
    .map((p) => (p.httpAddr === undefined ? { gossipAddr: p.addr } : { gossipAddr: p.addr, httpAddr: p.httpAddr }))
  const text = JSON.stringify(known)
  // an unchanged list is not written again: an idle node touches no file
  if (text === last.written) return
  const file = Path.join(dir, FILE)
  const tmp = `${file}.tmp`
  yield* Effect.tryPromise(async () => {
    await Fs.writeFile(tmp, text)
    await Fs.rename(tmp, file)
  }).pipe(
    Effect.tap(() => Effect.sync(() => void (last.written = text))),
    Effect.uninterruptible,
    Effect.catchAll((e) => Effect.logWarning(`cannot write ${file}`, e.error))
  )
})

/** Learns the remembered peers at start and keeps the file up to date every `interval`. */
export const layer = (interval: Duration.DurationInput = Duration.seconds(5)): Layer.Layer<
  never,
  never,
  DataDir | PeerManager.PeerManager
> =>
  Layer.scopedDiscard(
    Effect.gen(function*() {
      const dir = (yield* DataDir).path
      const peers = yield* PeerManager.PeerManager
      const remembered = yield* load(dir)
      for (const p of remembered) yield* peers.add(p, "exchange")
      if (remembered.length > 0) yield* Effect.logInfo(`learned ${remembered.length} remembered peer(s) from ${FILE}`)
      // saves run one at a time: the periodic one, the one on a membership event, the last one
      const lock = yield* Effect.makeSemaphore(1)
      const last = { written: undefined as string | undefined }
      const saveNow = lock.withPermits(1)(save(dir, peers, last))
      yield* saveNow.pipe(Effect.repeat(Schedule.spaced(interval)), Effect.forkScoped)
      // and at once when a peer joins or comes back, so a node killed soon after meeting its
      // peers still remembers them
      const events = yield* peers.events
      yield* Queue.take(events).pipe(
        Effect.flatMap((event) => event._tag === "Joined" || event._tag === "Recovered" ? saveNow : Effect.void),
        Effect.forever,
        Effect.forkScoped
      )
      yield* Effect.addFinalizer(() => saveNow)
    })
  )
