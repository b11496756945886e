/**
 * Writes openapi/openapi.json from the route schemas (`npm run openapi`). The document is what /docs/json
 * serves; a test fails when the committed file drifts from it.
 */
import { writeFile, mkdir } from "node:fs/promises";
import { buildOpenApiDocument } from "../src/openapi.js";

const target = new URL("../openapi/openapi.json", import.meta.url);
await mkdir(new URL(".", target), { recursive: true });
await writeFile(target, `${JSON.stringify(await buildOpenApiDocument(), null, 2)}\n`);
console.log(`wrote ${target.pathname}`);
