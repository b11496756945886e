import { readFile } from "node:fs/promises";
import t from "tap";
import { buildTestApp, testConfig } from "./helpers/app.js";

t.test("openapi/openapi.json is what /docs/json serves (run `npm run openapi` after changing a route)", async (t) => {
  const app = await buildTestApp(t, testConfig(t));
  const served = (await app.inject({ method: "GET", url: "/docs/json" })).json();
  const committed = JSON.parse(await readFile(new URL("../openapi/openapi.json", import.meta.url), "utf8"));
  t.same(served, committed);
  const ui = await app.inject({ method: "GET", url: "/docs/" });
  t.equal(ui.statusCode, 200);
  t.match(ui.body, /swagger/i);
});

t.test("every /v1 operation declares a credential and its problems", async (t) => {
  const document = JSON.parse(await readFile(new URL("../openapi/openapi.json", import.meta.url), "utf8"));
  for (const [path, operations] of Object.entries<Record<string, { security?: unknown[]; responses: Record<string, unknown> }>>(document.paths)) {
    if (!path.startsWith("/v1/")) continue;
    for (const [method, operation] of Object.entries(operations)) {
      t.ok(operation.security?.length, `${method} ${path} has security`);
      t.ok(operation.responses["401"] && operation.responses["403"], `${method} ${path} documents 401 and 403`);
    }
  }
});
