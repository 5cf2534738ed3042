/** Runs the built `dcounter` binary once: its exit code and output (60 s bound). */
import { execFile } from "node:child_process"
import { Effect } from "effect"
import * as Processes from "../../scripts/lib/Processes.js"

export const dcounter = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.async<{ code: number; stdout: string; stderr: string }>((resume) => {
    const child = execFile(
      process.execPath,
      [Processes.dcounterBin, ...args],
      { env: { PATH: process.env["PATH"] ?? "", ...env }, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1
        resume(Effect.succeed({ code, stdout, stderr }))
      }
    )
    return Effect.sync(() => child.kill())
  })
