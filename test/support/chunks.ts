/** Test helpers for incremental decoders: the same bytes fed in arbitrary pieces. */

/** `bytes` cut at the given points (taken modulo its length, deduplicated, sorted). */
export const split = <B extends Uint8Array>(bytes: B, cuts: ReadonlyArray<number>): Array<B> => {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
  const out: Array<B> = []
  let from = 0
  for (const p of points) {
    out.push(bytes.subarray(from, p) as B)
    from = p
  }
  out.push(bytes.subarray(from) as B)
  return out
}
