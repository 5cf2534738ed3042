// Bundles the CLI (src/main.ts) into dist/bundle/ with esbuild: one process then loads a
// few files instead of every module of its dependencies one by one, which cuts its
// start-up time and an idle node's RSS (bench/footprint measures both; docs/performance.md).
// bin/dcounter.js runs the bundle; dist/src (tsc) stays for tests, benches and scripts.
import { rmSync } from "node:fs"
import { build } from "esbuild"

// a fresh directory: chunk names carry content hashes, so old ones would pile up
rmSync("dist/bundle", { recursive: true, force: true })

await build({
  entryPoints: ["src/main.ts"],
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  outdir: "dist/bundle",
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
  minifySyntax: true,
  minifyWhitespace: true,
  sourcemap: "linked",
  // msgpackr's optional native addon is loaded through require at run time, if present.
  external: ["msgpackr-extract"],
  // Bundled CommonJS dependencies call require(); give ESM chunks one.
  banner: { js: 'import { createRequire as __dcounterRequire } from "node:module"; const require = __dcounterRequire(import.meta.url);' },
  logLevel: "warning"
})
