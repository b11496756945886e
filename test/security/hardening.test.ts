import { Writable } from "node:stream";
import pino from "pino";
import t from "tap";
import { buildApp } from "../../src/app.js";
import { loggerOptions } from "../../src/logging.js";
import { createAzureAdapters } from "../../src/azure/adapters.js";
import { createSandboxContext } from "../../src/azure/azure-context.js";
import { READER_APP } from "../../src/sandbox/seed.js";
import { buildTestApp, KEYS, testConfig } from "../helpers/app.js";
import { sandboxHttpClient, startTestSandbox } from "../helpers/sandbox.js";
import { callerToken } from "../helpers/tokens.js";

const nowhere = () => createAzureAdapters(createSandboxContext({ url: "https://127.0.0.1:1", caPem: "" }), { pollIntervalMs: 100 });

t.test("oversized bodies are 413 problem+json", async (t) => {
  const app = await buildTestApp(t, testConfig(t));
  const response = await app.inject({
    method: "POST",
    url: "/v1/change-requests",
    headers: { "x-api-key": KEYS.operator, "content-type": "application/json" },
    payload: JSON.stringify({ operation: "SetKey", padding: "x".repeat(70 * 1024) }),
  });
  t.equal(response.statusCode, 413);
  t.match(response.headers["content-type"], /^application\/problem\+json/);
  t.equal(response.json().code, "PayloadTooLarge");
});

t.test("malformed URLs are problem+json too", async (t) => {
  const app = await buildTestApp(t, testConfig(t));
  const response = await app.inject({ method: "GET", url: "/v1/jobs/%E0%A4%A" });
  t.equal(response.statusCode, 400);
  t.match(response.headers["content-type"], /^application\/problem\+json/);
  t.ok(response.json().code);
});

t.test("an unexpected failure answers 500 without its message or stack", async (t) => {
  const app = await buildApp(testConfig(t), { apiKeys: [], azure: nowhere() });
  t.teardown(() => app.close());
  app.get("/boom", async () => {
    throw new Error("connection string password=hunter2 at /srv/app/secret.ts:12");
  });
  const response = await app.inject({ method: "GET", url: "/boom" });
  t.equal(response.statusCode, 500);
  t.equal(response.json().code, "InternalError");
  t.notMatch(response.body, /hunter2|secret\.ts|at \//);
});

t.test("credentials and tokens never reach a log line", async (t) => {
  const sandbox = await startTestSandbox(t);
  const lines: string[] = [];
  const sink = new Writable({ write: (chunk, _encoding, done) => (lines.push(String(chunk)), done()) });
  const logger = pino(loggerOptions("trace"), sink);
  const config = testConfig(t);
  const app = await buildApp(config, { apiKeys: config.apiKeys ?? [], azure: nowhere(), logger, httpClient: sandboxHttpClient(sandbox) });
  t.teardown(() => app.close());
  // Something a careless log call might do: serialize the whole request headers, or an object holding a token.
  app.addHook("onRequest", async (request) => request.log.debug({ headers: request.headers, credentials: { token: request.headers.authorization, clientSecret: "s3cr3t-value" } }, "debug dump"));
  await app.ready();

  const token = await callerToken(sandbox, READER_APP);
  const forged = `${token.split(".").slice(0, 2).join(".")}.${"A".repeat(342)}`;
  for (const headers of [{ authorization: `Bearer ${token}` }, { authorization: `Bearer ${forged}` }, { "x-api-key": KEYS.admin }, { "x-api-key": "a-wrong-key-value" }]) {
    await app.inject({ method: "GET", url: "/v1/jobs/00000000-0000-0000-0000-000000000000", headers });
    await app.inject({ method: "POST", url: "/v1/change-requests", headers, payload: { operation: "SetKey" } });
  }
  const log = lines.join("");
  t.ok(log.includes("debug dump") && log.includes("request refused"), "the requests were logged");
  for (const secret of [token.split(".")[1]!, token.split(".")[2]!, forged.split(".")[2]!, KEYS.admin, "a-wrong-key-value", "s3cr3t-value"]) {
    t.notOk(log.includes(secret), `no log line carries ${secret.slice(0, 12)}…`);
  }
  t.ok(log.includes("[Redacted]"));
});
