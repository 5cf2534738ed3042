/**
 * Metrics of the HTTP serving path, recorded by `ApiServer` without an Effect per request:
 * `dcounter_http_requests_total{method,route,status}` and
 * `dcounter_http_request_duration_seconds{method,route}`. `route` is the route pattern
 * (`/counters/:name`), or `unmatched` for requests no route took, so cardinality is bounded.
 */
import { Metric, MetricBoundaries, MetricLabel } from "effect"

export const httpRequestsTotal = Metric.counter("dcounter_http_requests_total", {
  description: "HTTP requests answered, by method, route pattern and status code.",
  incremental: true
})

export const httpRequestDuration = Metric.histogram(
  "dcounter_http_request_duration_seconds",
  MetricBoundaries.fromIterable([
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
  ]),
  "Time from the request's arrival to its response, by method and route pattern."
)

/** Records one answered request: `(status, seconds) => void`. */
export type HttpRecorder = (status: number, seconds: number) => void

/**
 * A recorder for one method and route. Tag arrays are created once per status and reused:
 * Effect caches a metric's hook per tag-array identity, so a record is two map lookups and
 * two additions.
 */
export const httpRecorder = (method: string, route: string): HttpRecorder => {
  const routeTags = [MetricLabel.make("method", method), MetricLabel.make("route", route)]
  const byStatus = new Map<number, ReadonlyArray<MetricLabel.MetricLabel>>()
  // the route's latency series exists from start-up (count 0), not from its first request
  httpRequestDuration.unsafeValue(routeTags)
  return (status, seconds) => {
    let tags = byStatus.get(status)
    if (tags === undefined) {
      tags = [...routeTags, MetricLabel.make("status", String(status))]
      byStatus.set(status, tags)
    }
    httpRequestsTotal.unsafeUpdate(1, tags)
    httpRequestDuration.unsafeUpdate(seconds, routeTags)
  }
}
