/**
 * A small precompiled router: static paths in a map, parameterised paths (`/counters/:name`,
 * an optional last `:param?`, a trailing `*`) checked in order of specificity. Paths use the
 * syntax of `HttpApiEndpoint` (find-my-way): `::` is a literal colon.
 *
 * @internal
 */

export type Segment =
  | { readonly _tag: "Static"; readonly value: string }
  | { readonly _tag: "Param"; readonly name: string; readonly optional: boolean }
  | { readonly _tag: "Rest" }

/** Thrown at startup for a path the router cannot serve. */
export class UnsupportedPath extends Error {
  constructor(readonly path: string, reason: string) {
    super(`unsupported route path ${JSON.stringify(path)}: ${reason}`)
    this.name = "UnsupportedPath"
  }
}

const PARAM_NAME = /^[A-Za-z_$][A-Za-z0-9_$-]*$/

/** Splits a route path into segments; throws `UnsupportedPath` for syntax it does not handle. */
export const compilePath = (path: string): ReadonlyArray<Segment> => {
  if (!path.startsWith("/")) throw new UnsupportedPath(path, "it must start with /")
  const raw = path === "/" ? [""] : path.slice(1).split("/")
  const segments: Array<Segment> = []
  raw.forEach((part, i) => {
    const last = i === raw.length - 1
    if (part === "*") {
      if (!last) throw new UnsupportedPath(path, "* is only allowed as the last segment")
      segments.push({ _tag: "Rest" })
      return
    }
    if (part.startsWith(":") && !part.startsWith("::")) {
      const optional = part.endsWith("?")
      const name = part.slice(1, optional ? -1 : undefined)
      if (!PARAM_NAME.test(name)) throw new UnsupportedPath(path, `parameter ${JSON.stringify(part)} is not a plain name`)
      if (optional && !last) throw new UnsupportedPath(path, "an optional parameter must be the last segment")
      segments.push({ _tag: "Param", name, optional })
      return
    }
    if (/[:*(]/.test(part.replaceAll("::", ""))) {
      throw new UnsupportedPath(path, `segment ${JSON.stringify(part)} mixes text and parameters`)
    }
    segments.push({ _tag: "Static", value: part.replaceAll("::", ":") })
  })
  return segments
}

export const isStatic = (segments: ReadonlyArray<Segment>): boolean => segments.every((s) => s._tag === "Static")

export const staticKey = (segments: ReadonlyArray<Segment>): string =>
  "/" + segments.map((s) => (s._tag === "Static" ? s.value : "")).join("/")

/** A set of routes, each a table of handlers by method. */
export interface Table<A> {
  readonly pattern: string
  readonly byMethod: Map<string, A>
  /** `Allow` header value, kept in step with `byMethod` (with GET comes HEAD, served by it) */
  allow: string
}

export interface Match<A> {
  readonly table: Table<A>
  /** decoded path parameters; an empty shared object for static routes */
  readonly params: Record<string, string>
}

/** A path parameter that is not valid percent-encoding. */
export class MalformedPath extends Error {
  constructor(readonly path: string) {
    super(`malformed percent-encoding in path ${JSON.stringify(path)}`)
    this.name = "MalformedPath"
  }
}

const EMPTY_PARAMS: Record<string, string> = Object.freeze({}) as Record<string, string>

interface Dynamic<A> {
  readonly segments: ReadonlyArray<Segment>
  readonly table: Table<A>
  readonly staticCount: number
}

/** The methods of a route for `Allow`; HEAD follows GET (the server answers it with the GET route). */
const allowHeader = (methods: Iterable<string>): string => {
  const list = [...methods]
  const get = list.indexOf("GET")
  if (get !== -1 && !list.includes("HEAD")) list.splice(get + 1, 0, "HEAD")
  return list.join(", ")
}

export class Router<A> {
  private readonly statics = new Map<string, Table<A>>()
  private dynamics: Array<Dynamic<A>> = []
  private readonly byPattern = new Map<string, Table<A>>()

  /** Adds a handler; returns false when the method and path are already taken. */
  add(method: string, path: string, value: A): boolean {
    const segments = compilePath(path)
    const pattern = "/" + segments.map((s) => (s._tag === "Static" ? s.value : s._tag === "Rest" ? "*" : ":")).join("/")
    let table = this.byPattern.get(pattern)
    if (table === undefined) {
      table = { pattern: path, byMethod: new Map(), allow: "" }
      this.byPattern.set(pattern, table)
      if (isStatic(segments)) {
        this.statics.set(staticKey(segments), table)
      } else {
        this.dynamics.push({
          segments,
          table,
          staticCount: segments.filter((s) => s._tag === "Static").length
        })
        // more static segments first, then rest routes last: static beats parametric
        this.dynamics = this.dynamics
          .map((d, i) => ({ d, i }))
          .sort((x, y) => {
            const xr = x.d.segments.some((s) => s._tag === "Rest") ? 1 : 0
            const yr = y.d.segments.some((s) => s._tag === "Rest") ? 1 : 0
            return xr - yr || y.d.staticCount - x.d.staticCount || x.i - y.i
          })
          .map((x) => x.d)
      }
    }
    if (table.byMethod.has(method)) return false
    table.byMethod.set(method, value)
    table.allow = allowHeader(table.byMethod.keys())
    return true
  }

  /** Finds the routes of a request path (without its query string). */
  find(path: string): Match<A> | undefined {
    const table = this.statics.get(path)
    if (table !== undefined) return { table, params: EMPTY_PARAMS }
    if (this.dynamics.length === 0) return undefined
    const parts = path === "/" ? [""] : path.slice(1).split("/")
    for (const d of this.dynamics) {
      const params = matchSegments(d.segments, parts, path)
      if (params !== undefined) return { table: d.table, params }
    }
    return undefined
  }
}

const decode = (raw: string, path: string): string => {
  if (raw.indexOf("%") === -1) return raw
  try {
    return decodeURIComponent(raw)
  } catch {
    throw new MalformedPath(path)
  }
}

const matchSegments = (
  segments: ReadonlyArray<Segment>,
  parts: ReadonlyArray<string>,
  path: string
): Record<string, string> | undefined => {
  const params: Record<string, string> = {}
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!
    const part = parts[i]
    switch (segment._tag) {
      case "Static":
        if (part !== segment.value) return undefined
        break
      case "Param":
        if (part === undefined || part === "") {
          if (segment.optional && i === parts.length - (part === undefined ? 0 : 1)) return params
          return undefined
        }
        params[segment.name] = decode(part, path)
        break
      case "Rest":
        params["*"] = decode(parts.slice(i).join("/"), path)
        return params
    }
  }
  return parts.length === segments.length ? params : undefined
}
