/**
 * Effect metrics of the gossip transport, exported by `/metrics` (Prometheus names).
 * Updated synchronously (`unsafeUpdate`) from socket callbacks, without running an Effect
 * per frame. They live in Effect's global metric registry: every transport of a process
 * adds to the same series.
 */
import { Metric } from "effect"
import * as Prometheus from "../observability/Prometheus.js"

export const framesInTotal = Metric.counter("dcounter_frames_in_total", {
  description: "gossip frames received and accepted",
  incremental: true
})

export const framesOutTotal = Metric.counter("dcounter_frames_out_total", {
  description: "gossip frames written to peers",
  incremental: true
})

export const bytesInTotal = Metric.counter("dcounter_bytes_in_total", {
  description: "gossip bytes received",
  incremental: true
})

export const bytesOutTotal = Metric.counter("dcounter_bytes_out_total", {
  description: "gossip bytes written to peers",
  incremental: true
})

const framesRejectedTotal = Metric.counter("dcounter_frames_rejected_total", {
  description: "gossip frames rejected (the connection that sent it is closed), by reason",
  incremental: true
})

const rejected = (reason: string) => Metric.tagged(framesRejectedTotal, "reason", reason)

/** The rejected-frames counter of each reason (the `reason` label). */
export const framesRejected = {
  too_large: rejected("too_large"),
  malformed: rejected("malformed"),
  unauthenticated: rejected("unauthenticated"),
  undecodable: rejected("undecodable"),
  handshake: rejected("handshake")
} as const
for (const m of [framesInTotal, framesOutTotal, bytesInTotal, bytesOutTotal, ...Object.values(framesRejected)]) {
  Prometheus.declared(m)
}

/** Why an inbound frame was rejected. */
export type RejectReason = keyof typeof framesRejected
