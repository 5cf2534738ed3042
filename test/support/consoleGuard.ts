/**
 * Setup file of the unit tests (vitest.config.ts): a test that writes to the console, stdout
 * or stderr fails, with what it wrote in the failure. A passing `npm test` then prints only
 * vitest's own lines, and a new live test that forgets the quiet logger, or a module that
 * logs through its own sink, is caught the first time it runs rather than by a reader.
 *
 * Effect's default logger writes through `console.log`; `Logging`'s sink writes to stderr;
 * both land here. A test that means to write (a CLI's usage line) spies on the stream
 * itself, as `vi.spyOn` wraps what is installed here, or takes its lines with `drain()`.
 */
import { afterAll, afterEach, beforeEach } from "vitest"
import { format } from "node:util"

const written: Array<string> = []
const restores: Array<() => void> = []

const consoleMethods = ["log", "info", "warn", "error", "debug", "trace", "dir"] as const

const capture = (): void => {
  for (const name of consoleMethods) {
    const original = console[name]
    console[name] = (...args: Array<unknown>) => {
      written.push(`console.${name}: ${format(...args)}`)
    }
    restores.push(() => {
      console[name] = original
    })
  }
  for (const stream of ["stdout", "stderr"] as const) {
    const target = process[stream]
    const original = target.write
    // the callback forms of write() still get their callback: callers wait on it
    target.write = ((chunk: string | Uint8Array, ...rest: Array<unknown>) => {
      written.push(`${stream}: ${typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8")}`)
      const callback = rest.find((r): r is (error?: Error | null) => void => typeof r === "function")
      if (callback !== undefined) queueMicrotask(() => callback())
      return true
    }) as typeof target.write
    restores.push(() => {
      target.write = original
    })
  }
}

/** What was written since the test started (or the last drain), cleared. */
export const drain = (): ReadonlyArray<string> => written.splice(0, written.length)

const check = (when: string): void => {
  const lines = drain()
  if (lines.length > 0) {
    throw new Error(
      `${when} wrote ${lines.length} time(s) to the console, stdout or stderr; ` +
        `install the quiet logger (test/support/vitest.ts) or capture the output:\n` +
        lines.map((l) => "  " + l.trimEnd()).join("\n")
    )
  }
}

// installed when the file is loaded, so what a test module writes while it is imported counts too
capture()
beforeEach(() => {
  check("the file's import or set-up")
})
afterEach(() => {
  check("the test")
})
afterAll(() => {
  try {
    check("the file's tear-down")
  } finally {
    for (const restore of restores.splice(0).reverse()) restore()
  }
})
