#!/usr/bin/env node
// The bundled CLI (npm run build: tsc, then scripts/bundle.mjs).
//
// Start-up keeps V8's young generation at its initial size (1 MB semi-spaces). Loading the
// bundle and building a role's layers create objects that all survive, and V8 answers a
// high survival rate by doubling the young generation, up to 2 x 8 MB, which it gives back
// only 10-20 s later, once it sees the process idle: an idle node held ~82 MB for its first
// seconds instead of ~73 MB (bench/footprint). After the start-up window V8's default
// growth factor is restored, so a node under load sizes its young generation as usual.
// The flag is read each time V8 considers growing the young generation.
import { setFlagsFromString } from "node:v8"

const START_UP_WINDOW_MS = 10_000

setFlagsFromString("--semi-space-growth-factor=1")
setTimeout(() => setFlagsFromString("--semi-space-growth-factor=2"), START_UP_WINDOW_MS).unref()

// a dynamic import, so the flag is set before the bundle is evaluated
await import("../dist/bundle/main.js")
