/**
 * Redis's glob patterns (`SCAN ... MATCH`, `stringmatchlen`): `*` any run, `?` any one
 * character, `[abc]`, `[a-z]`, `[^a]` classes, `\x` a literal `x`. Matched iteratively with
 * one backtrack point, so a pattern cannot make it take more than
 * O(pattern length x text length) steps.
 */

/** Whether `text` matches `pattern`. */
export const globMatch = (pattern: string, text: string): boolean => {
  let p = 0
  let t = 0
  let starP = -1
  let starT = 0
  while (t < text.length) {
    if (p < pattern.length) {
      const c = pattern[p]!
      if (c === "*") {
        // collapse runs of stars; remember where to resume if what follows fails
        while (p < pattern.length && pattern[p] === "*") p++
        if (p === pattern.length) return true
        starP = p
        starT = t
        continue
      }
      const step = matchOne(pattern, p, text[t]!)
      if (step > 0) {
        p += step
        t++
        continue
      }
    }
    if (starP === -1) return false
    p = starP
    t = ++starT
  }
  while (p < pattern.length && pattern[p] === "*") p++
  return p === pattern.length
}

/**
 * Whether the pattern element at `p` matches character `ch`: the element's length in the
 * pattern when it does, 0 when it does not.
 */
const matchOne = (pattern: string, p: number, ch: string): number => {
  const c = pattern[p]!
  if (c === "?") return 1
  if (c === "\\" && p + 1 < pattern.length) return pattern[p + 1] === ch ? 2 : 0
  if (c !== "[") return c === ch ? 1 : 0
  let i = p + 1
  const negate = pattern[i] === "^"
  if (negate) i++
  let matched = false
  while (i < pattern.length && pattern[i] !== "]") {
    if (pattern[i] === "\\" && i + 1 < pattern.length) {
      if (pattern[i + 1] === ch) matched = true
      i += 2
    } else if (i + 2 < pattern.length && pattern[i + 1] === "-" && pattern[i + 2] !== "]") {
      let lo = pattern[i]!
      let hi = pattern[i + 2]!
      if (lo > hi) [lo, hi] = [hi, lo]
      if (ch >= lo && ch <= hi) matched = true
      i += 3
    } else {
      if (pattern[i] === ch) matched = true
      i++
    }
  }
  // an unclosed class runs to the end of the pattern, as in Redis
  const length = (i < pattern.length ? i + 1 : i) - p
  return matched !== negate ? length : 0
}

/** The literal prefix of a pattern (before its first special character). */
export const literalPrefix = (pattern: string): string => {
  let i = 0
  while (i < pattern.length && !"*?[\\".includes(pattern[i]!)) i++
  return pattern.slice(0, i)
}
