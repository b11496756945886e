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

interface ResponseObject {
  description: string;
  headers?: Record<string, unknown>;
  content?: Record<string, { schema?: { $ref?: string }; examples?: Record<string, { summary?: string; value: { status?: number } }> }>;
}
interface OperationObject {
  operationId?: string;
  security?: unknown[];
  requestBody?: unknown;
  responses: Record<string, ResponseObject>;
}

const document = JSON.parse(await readFile(new URL("../openapi/openapi.json", import.meta.url), "utf8")) as {
  info: { version: string };
  paths: Record<string, Record<string, OperationObject>>;
};
const operations = Object.entries(document.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, operation]) => ({ path, method, operation, name: `${method} ${path}` })));
/** Probes: no credential, no rate limit, no input. */
const PROBES = new Set(["/healthz", "/readyz"]);

t.test("info.version is package.json's", async (t) => {
  const manifest = JSON.parse(await readFile(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
  t.equal(document.info.version, manifest.version);
});

t.test("every operation has a stable camelCase operationId of its own", async (t) => {
  const ids = operations.map(({ operation }) => operation.operationId);
  for (const { name, operation } of operations) t.match(operation.operationId, /^[a-z][a-zA-Z0-9]+$/, `${name}: ${operation.operationId}`);
  t.equal(new Set(ids).size, ids.length, "no two operations share one");
});

t.test("every operation declares a credential and its problems: 401, 403, 429 on /v1; 429 on /metrics; 413, 415 where a body can be sent", async (t) => {
  for (const { path, method, operation, name } of operations) {
    const statuses = Object.keys(operation.responses);
    if (path.startsWith("/v1/")) {
      t.ok(operation.security?.length, `${name} has security`);
      t.ok(operation.responses["401"] && operation.responses["403"], `${name} documents 401 and 403`);
    } else {
      t.same(operation.security, [], `${name} needs no credential, and says so`);
    }
    if (!PROBES.has(path)) {
      t.ok(operation.responses["429"], `${name} is rate limited: documents 429`);
      t.ok(statuses.some((status) => status.startsWith("4")), `${name} documents a 4xx`);
    }
    if (method === "post") t.ok(operation.responses["413"] && operation.responses["415"], `${name} documents 413 and 415`);
  }
});

t.test("problems are application/problem+json with the Problem schema and a named example each", async (t) => {
  for (const { path, operation, name } of operations) {
    for (const [status, response] of Object.entries(operation.responses)) {
      // /readyz answers its own status body when not ready: not a problem.
      if (Number(status) < 400 || path === "/readyz") continue;
      t.same(Object.keys(response.content ?? {}), ["application/problem+json"], `${name} ${status}: problem+json only`);
      const media = response.content?.["application/problem+json"];
      t.equal(media?.schema?.$ref, "#/components/schemas/Problem", `${name} ${status}: the Problem schema`);
      const examples = Object.values(media?.examples ?? {});
      t.ok(examples.length > 0, `${name} ${status}: named examples`);
      for (const example of examples) t.equal(example.value.status, Number(status), `${name} ${status}: ${example.summary}`);
    }
  }
});

t.test("successes are application/json, but for the event stream, the metrics and the compliance report's CSV", async (t) => {
  const media: Record<string, string[]> = { "get /v1/jobs/{jobId}/events": ["text/event-stream"], "get /metrics": ["text/plain"], "get /v1/compliance": ["application/json", "text/csv"] };
  for (const { operation, name } of operations) {
    for (const [status, response] of Object.entries(operation.responses)) {
      if (!status.startsWith("2") || !response.content) continue;
      t.same(Object.keys(response.content), media[name] ?? ["application/json"], `${name} ${status}`);
    }
  }
});
