/**
 * `GET /docs`: Swagger UI over the server's own `/openapi.json`, with its script and style
 * served by the server itself (no CDN, works without internet).
 *
 * The Swagger UI bundle is the one @effect/platform already ships for `HttpApiSwagger`
 * (`dist/cjs/internal/httpApiSwagger.js`): no extra dependency. It is large, so it is loaded
 * on the first request for it, not at startup, and an idle node does not hold it in memory.
 *
 * @internal
 */
import { createRequire } from "node:module"
import * as Path from "node:path"

export interface Asset {
  readonly contentType: string
  readonly body: Buffer
}

const escapeHtml = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

export const docsPage = (title: string, assetsPath: string): string => `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8" />
  <meta name="viewport" content="width=device-width, initial-scale=1" />
  <title>${escapeHtml(title)} - API documentation</title>
  <link rel="stylesheet" href="${assetsPath}/swagger-ui.css" />
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="${assetsPath}/swagger-ui.js"></script>
  <script src="${assetsPath}/init.js"></script>
</body>
</html>
`

const initScript = (specPath: string): string =>
  `window.onload = function () {
  window.ui = SwaggerUIBundle({ url: ${JSON.stringify(specPath)}, dom_id: "#swagger-ui", deepLinking: true });
};
`

let bundle: { readonly css: Buffer; readonly js: Buffer } | undefined

/** Swagger UI's script and style from @effect/platform's bundle; throws if it moved. */
const loadBundle = (): { readonly css: Buffer; readonly js: Buffer } => {
  if (bundle === undefined) {
    const require = createRequire(import.meta.url)
    const entry = require.resolve("@effect/platform/HttpApiSwagger")
    const mod: unknown = require(Path.join(Path.dirname(entry), "internal", "httpApiSwagger.js"))
    if (
      typeof mod !== "object" || mod === null || !("css" in mod) || !("javascript" in mod) ||
      typeof mod.css !== "string" || typeof mod.javascript !== "string"
    ) {
      throw new Error("the Swagger UI bundle of @effect/platform was not found where expected")
    }
    bundle = { css: Buffer.from(mod.css), js: Buffer.from(mod.javascript) }
  }
  return bundle
}

/** The asset called `name` under the docs path, or undefined if there is none. */
export const docsAsset = (name: string, specPath: string): Asset | undefined => {
  switch (name) {
    case "swagger-ui.css":
      return { contentType: "text/css; charset=utf-8", body: loadBundle().css }
    case "swagger-ui.js":
      return { contentType: "application/javascript; charset=utf-8", body: loadBundle().js }
    case "init.js":
      return { contentType: "application/javascript; charset=utf-8", body: Buffer.from(initScript(specPath)) }
    default:
      return undefined
  }
}
