/**
 * The counter names in sorted order, for paged listing (`GET /counters?limit&after&prefix`).
 *
 * A page must not sort every name per request: at a million counters that is a second of
 * CPU per page. The index keeps a sorted array of the names and is maintained lazily:
 *
 * - it is cold until the first page is asked for (a node nobody lists keeps no copy of its
 *   names, and neither do the short-lived maps of the write path); the first page sorts the
 *   names once;
 * - after that, `add` only appends a new name to a small unsorted list; the next page sorts
 *   that list and merges it into the sorted array (linear in the names, no full re-sort);
 * - a page then finds its start by binary search for `after` and `prefix`, and costs
 *   O(log n + limit) when no name was added since the previous page.
 *
 * Names are never removed (a counter, once written, exists for good), and `add` is called
 * once per new name, so the index holds no duplicates. Order is JavaScript's string order
 * (UTF-16 code units), which for the counter name alphabet `[A-Za-z0-9._:-]` is byte order.
 */

/** What a page asks for. */
export interface PageRequest {
  /** at most this many names; values below 1 count as 1, fractions are rounded down */
  readonly limit: number
  /** the page starts after this name (which need not exist) */
  readonly after?: string | undefined
  /** only names starting with this (the empty prefix: every name) */
  readonly prefix?: string | undefined
}

/** One page of names, sorted; `next` (the last name of the page) when more names follow. */
export interface NamePage {
  readonly names: ReadonlyArray<string>
  readonly next: string | undefined
}

/** The first index `i` with `sorted[i] >= x` (`sorted.length` if none). */
export const lowerBound = (sorted: ReadonlyArray<string>, x: string): number => {
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (sorted[mid]! < x) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** The first index `i` with `sorted[i] > x` (`sorted.length` if none). */
export const upperBound = (sorted: ReadonlyArray<string>, x: string): number => {
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (sorted[mid]! <= x) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** Merges two sorted arrays into a new sorted one. */
export const mergeSorted = (a: ReadonlyArray<string>, b: ReadonlyArray<string>): Array<string> => {
  const out = new Array<string>(a.length + b.length)
  let i = 0
  let j = 0
  let k = 0
  while (i < a.length && j < b.length) out[k++] = a[i]! <= b[j]! ? a[i++]! : b[j++]!
  while (i < a.length) out[k++] = a[i++]!
  while (j < b.length) out[k++] = b[j++]!
  return out
}

/** A page of `sorted` (see `PageRequest`). */
export const pageOf = (sorted: ReadonlyArray<string>, request: PageRequest): NamePage => {
  const limit = Math.max(1, Math.floor(request.limit))
  const prefix = request.prefix ?? ""
  let start = prefix === "" ? 0 : lowerBound(sorted, prefix)
  if (request.after !== undefined) start = Math.max(start, upperBound(sorted, request.after))
  const names: Array<string> = []
  let i = start
  for (; i < sorted.length && names.length < limit; i++) {
    const name = sorted[i]!
    if (!name.startsWith(prefix)) break
    names.push(name)
  }
  const more = names.length === limit && i < sorted.length && sorted[i]!.startsWith(prefix)
  return { names, next: more ? names[names.length - 1] : undefined }
}

export class NameIndex {
  /** The names in order as of the last page; undefined while cold (no page asked yet). */
  private sorted: Array<string> | undefined = undefined
  /** Names added since the last page, unsorted. */
  private added: Array<string> = []

  /** Records a new name (one never added before); a no-op while the index is cold. */
  add(name: string): void {
    if (this.sorted !== undefined) this.added.push(name)
  }

  /**
   * One page of names. `all` lists every name (in any order): it is read only the first
   * time, to build the index.
   */
  page(all: () => Iterable<string>, request: PageRequest): NamePage {
    return pageOf(this.current(all), request)
  }

  private current(all: () => Iterable<string>): ReadonlyArray<string> {
    if (this.sorted === undefined) {
      this.sorted = Array.from(all()).sort()
      this.added = []
    } else if (this.added.length > 0) {
      this.sorted = mergeSorted(this.sorted, this.added.sort())
      this.added = []
    }
    return this.sorted
  }
}
