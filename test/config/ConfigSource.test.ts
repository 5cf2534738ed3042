/** Reading settings through the flags-over-environment provider, and the one-line errors it gives. */
import { describe, expect, it } from "@effect/vitest"
import { Config, Duration, Effect, Either, Option } from "effect"
import fc from "fast-check"
import * as ConfigSource from "../../src/config/ConfigSource.js"
import * as Setting from "../../src/config/Setting.js"
import * as Values from "../../src/config/Values.js"

const interval = Setting.withDefault(
  { name: "sync-interval", value: "duration", description: "d", default: "2s" },
  Values.duration,
  Duration.seconds(2)
)
const peers = Setting.optional(
  { name: "peers", value: "host:port,...", description: "p", default: "none" },
  Values.hostPortList
)
const both = Config.all({ interval: interval.config, peers: peers.config })

const load = <A>(config: Config.Config<A>, flags: ConfigSource.Flags, env: Record<string, string> = {}) =>
  Effect.either(ConfigSource.load(config, flags, env))

describe("ConfigSource", () => {
  it.effect("a flag beats its variable, the variable beats the default; an empty variable is unset", () =>
    Effect.gen(function*() {
      const env = { DCOUNTER_SYNC_INTERVAL: "1s", DCOUNTER_PEERS: "a:1,b:2" }
      const fromEnv = yield* ConfigSource.load(both, {}, env)
      expect(Duration.toMillis(fromEnv.interval)).toBe(1000)
      expect(fromEnv.peers).toEqual(Option.some(["a:1", "b:2"]))
      const fromFlag = yield* ConfigSource.load(both, { "sync-interval": "700ms" }, env)
      expect(Duration.toMillis(fromFlag.interval)).toBe(700)
      const defaults = yield* ConfigSource.load(both, {}, { DCOUNTER_SYNC_INTERVAL: " ", DCOUNTER_PEERS: "" })
      expect(Duration.toMillis(defaults.interval)).toBe(2000)
      expect(defaults.peers).toEqual(Option.none())
    }))

  it.effect("a bad value names the flag or the variable it came from, with the value as given", () =>
    Effect.gen(function*() {
      const flag = yield* load(both, { "sync-interval": "abc" })
      expect(Either.getLeft(flag).pipe(Option.map((e) => e.message))).toEqual(
        Option.some(`invalid --sync-interval "abc": expected a duration like 500ms, 2s or 1m`)
      )
      const variable = yield* load(both, {}, { DCOUNTER_PEERS: "a:1,b" })
      expect(Either.getLeft(variable).pipe(Option.map((e) => e.message))).toEqual(
        Option.some(`invalid DCOUNTER_PEERS="a:1,b" (--peers): "b" is not host:port; expected a list like a:9001,b:9002`)
      )
      // a valid flag hides an invalid variable: the variable is never read
      expect(Either.isRight(yield* load(both, { "sync-interval": "1s" }, { DCOUNTER_SYNC_INTERVAL: "soon" }))).toBe(true)
    }))

  it.effect("with several bad values, the first in declaration order is reported", () =>
    Effect.gen(function*() {
      const result = yield* load(both, { "sync-interval": "x", peers: "y" })
      expect(Either.getLeft(result).pipe(Option.map((e) => e.message))).toEqual(
        Option.some(`invalid --sync-interval "x": expected a duration like 500ms, 2s or 1m`)
      )
    }))

  it.effect("a check across options fails with its own line", () =>
    Effect.gen(function*() {
      const checked = both.pipe(
        Config.mapOrFail((v) =>
          Option.isNone(v.peers) ? Either.left(Setting.fail("give --peers")) : Either.right(v)
        )
      )
      const result = yield* load(checked, {})
      expect(Either.getLeft(result).pipe(Option.map((e) => e.message))).toEqual(Option.some("give --peers"))
    }))

  it.prop(
    "any text is read as the flag gives it: commas, spaces and quotes are not split or changed",
    [fc.string({ minLength: 1, maxLength: 40 }).filter((s) => s.trim() !== "")],
    ([text]) => {
      const raw = Setting.read("cluster-key", Either.right)
      const read = Effect.runSync(ConfigSource.load(raw, { "cluster-key": text }, {}))
      const fromEnv = Effect.runSync(ConfigSource.load(raw, {}, { DCOUNTER_CLUSTER_KEY: text }))
      return read === text && fromEnv === text
    }
  )

  it.prop(
    "every duration the help can show reads back as itself",
    [fc.integer({ min: 1, max: 10 * 24 * 3_600_000 })],
    ([millis]) => {
      const shown = Values.formatDuration(Duration.millis(millis))
      const read = Effect.runSync(ConfigSource.load(interval.config, { "sync-interval": shown }, {}))
      return Duration.toMillis(read) === millis
    }
  )
})
