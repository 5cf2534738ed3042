/**
 * `Transport` over the in-process `MemoryNetwork` (see MemoryNetwork.ts for the delivery model and the
 * faults): for tests and `dcounter simulate`. Messages are passed by reference, not
 * encoded; a peer's first message on a connection is preceded by its Hello, as on TCP.
 */
import { Effect, Layer, Queue } from "effect"
import type { Hello } from "../protocol/Message.js"
import { MemoryNetwork } from "./MemoryNetwork.js"
import type { Inbound } from "./Transport.js"
import { Transport } from "./Transport.js"

export interface TransportMemoryOptions {
  /** capacity of the inbound queue (default 4096); a full queue holds senders back */
  readonly inboundQueueSize?: number
}

export const make = (self: Hello, options: TransportMemoryOptions = {}) =>
  Effect.gen(function* () {
    const network = yield* MemoryNetwork
    const inbound = yield* Queue.bounded<Inbound>(options.inboundQueueSize ?? 4096)
    yield* Effect.addFinalizer(() => Queue.shutdown(inbound))
    yield* network.register(self, inbound)
    const addr = self.gossipAddr
    return Transport.of({
      self,
      send: (to, message) => network.send(addr, to, message),
      inbound,
      forget: (to) => network.forget(addr, to),
      connections: network.links(addr),
      stats: Effect.gen(function* () {
        const counts = yield* network.counts(addr)
        return {
          framesIn: counts.framesIn,
          framesOut: counts.framesOut,
          framesRejected: 0,
          bytesIn: 0,
          bytesOut: 0,
          connectionsIn: 0
        }
      })
    })
  })

export const layer = (self: Hello, options: TransportMemoryOptions = {}): Layer.Layer<Transport, never, MemoryNetwork> =>
  Layer.scoped(Transport, make(self, options))
