/**
 * Seeded pseudo-random numbers for the chaos suite, so a run can be replayed: the seed is
 * printed at start and taken from `CHAOS_SEED` when set. Every subsystem (each workload
 * client, the fault scheduler, the fuzzer) forks its own stream by label, so the choices
 * of one do not shift when another happens to draw more numbers in a run.
 */

/** sfc32: small, fast, good statistical quality; four 32-bit words of state. */
export class Prng {
  private a: number
  private b: number
  private c: number
  private d: number

  constructor(readonly seed: number, readonly label = "root") {
    const h = hash32(`${seed}:${label}`)
    this.a = h ^ 0x9e3779b9
    this.b = hash32(`${label}:${seed}:b`)
    this.c = hash32(`c:${seed}:${label}`)
    this.d = 1
    for (let i = 0; i < 16; i++) this.next()
  }

  /** A uniform unsigned 32-bit integer. */
  next(): number {
    this.a >>>= 0
    this.b >>>= 0
    this.c >>>= 0
    this.d >>>= 0
    let t = (this.a + this.b) | 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) | 0
    this.c = (this.c << 21) | (this.c >>> 11)
    this.d = (this.d + 1) | 0
    t = (t + this.d) | 0
    this.c = (this.c + t) | 0
    return t >>> 0
  }

  /** A uniform float in [0, 1). */
  float(): number {
    return this.next() / 4294967296
  }

  /** A uniform integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1))
  }

  bool(p = 0.5): boolean {
    return this.float() < p
  }

  pick<A>(items: ReadonlyArray<A>): A {
    if (items.length === 0) throw new Error("Prng.pick: empty list")
    return items[this.int(0, items.length - 1)]!
  }

  shuffle<A>(items: ReadonlyArray<A>): Array<A> {
    const out = [...items]
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(0, i)
      const t = out[i]!
      out[i] = out[j]!
      out[j] = t
    }
    return out
  }

  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n)
    let i = 0
    for (; i + 4 <= n; i += 4) out.writeUInt32LE(this.next(), i)
    if (i < n) {
      const last = this.next()
      for (let k = 0; i < n; i++, k++) out[i] = (last >>> (8 * k)) & 0xff
    }
    return out
  }

  /** An independent stream derived from this one's seed and a label. */
  fork(label: string): Prng {
    return new Prng(this.seed, `${this.label}/${label}`)
  }
}

/** FNV-1a then a murmur3 finaliser: a 32-bit hash of a string. */
const hash32 = (s: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** The run's seed: `CHAOS_SEED` if set (decimal), else a fresh random one. */
export const chaosSeed = (): number => {
  const raw = process.env["CHAOS_SEED"]
  if (raw !== undefined && raw !== "") {
    const n = Number(raw)
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`CHAOS_SEED must be a non-negative integer, got ${raw}`)
    return n
  }
  return Math.floor(Math.random() * 2 ** 31)
}
