/**
 * Cluster key checks for HTTP bearer tokens. The comparison is constant-time: both sides
 * are hashed to equal-length SHA-256 digests and compared with `timingSafeEqual`, so
 * neither the key's content nor its length leaks through timing.
 */
import { createHash, timingSafeEqual } from "node:crypto"
import { Redacted } from "effect"

const digest = (value: string): Buffer => createHash("sha256").update(value, "utf8").digest()

/** True when `given` equals `expected`, compared in constant time. */
export const matches = (expected: Redacted.Redacted<string>, given: Redacted.Redacted<string>): boolean =>
  timingSafeEqual(digest(Redacted.value(expected)), digest(Redacted.value(given)))
