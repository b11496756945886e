import { randomBytes } from "node:crypto";
import t from "tap";
import { SERVICE_APP } from "../src/sandbox/seed.js";
import { API_KEYS, KEYS } from "./helpers/app.js";
import { EntraRedisStandIn } from "./helpers/entra-redis.js";
import { openStream } from "./helpers/event-stream.js";
import { freePort } from "./helpers/redis-server.js";
import { KEY_V1, KEY_V2, setKey } from "./helpers/requests.js";
import { setFaults } from "./helpers/sandbox-admin.js";
import { startTestSandbox } from "./helpers/sandbox.js";
import { startServerProcess } from "./helpers/server-process.js";
import { until } from "./helpers/until.js";

/**
 * `npm start` with CMK_REDIS_AUTH=entra against a Redis that enforces Entra ID tokens as Azure's does
 * (test/helpers/entra-redis.ts), with Redis tokens of 40 s from the sandbox: server.ts signs in before
 * its first connection, and every connection of the process (API, event subscription, worker, webhook
 * worker and BullMQ's blocking duplicates) sends each new token before the last one expires.
 */

const REDIS_AUDIENCE = "https://redis.azure.com";
const PRINCIPAL = SERVICE_APP.objectId;

t.test("the service as npm start runs it with CMK_REDIS_AUTH=entra: API, worker (BullMQ's blocking connections too) and event streams stay signed in across refreshes; refused credentials are said clearly", async (t) => {
  // 40 s tokens: refreshed after 30 s, 10 s before they expire; a worker's blocking read (BZPOPMIN, 5 s) may hold the AUTH back that long.
  const lifetime = 40;
  const standIn = await EntraRedisStandIn.start(t, PRINCIPAL);
  const sandbox = await startTestSandbox(t, { lroMs: 300, entra: { tokenLifetimeSeconds: { [REDIS_AUDIENCE]: lifetime }, onTokenIssued: standIn.onTokenIssued } });
  const port = await freePort();
  const prefix = `cmktest-${randomBytes(6).toString("hex")}`;
  const server = startServerProcess({
    REDIS_URL: standIn.url,
    CMK_REDIS_AUTH: "entra",
    CMK_SANDBOX_URL: sandbox.url,
    CMK_SANDBOX_CA_FILE: sandbox.caFile,
    CMK_QUEUE_PREFIX: prefix,
    CMK_API_KEYS: JSON.stringify(API_KEYS),
    CMK_ARM_POLL_INTERVAL_MS: "250",
    PORT: String(port),
    HOST: "127.0.0.1",
    LOG_LEVEL: "info",
    NODE_ENV: "development",
  });
  t.teardown(() => server.stop("SIGKILL"));
  await server.waitFor(/listening on/);
  const base = `http://127.0.0.1:${port}`;
  const submit = async (body: object) => {
    const response = await fetch(`${base}/v1/change-requests`, { method: "POST", headers: { "content-type": "application/json", "x-api-key": KEYS.operator }, body: JSON.stringify(body) });
    return { status: response.status, body: (await response.json()) as { id: string; code?: string } };
  };
  const followToEnd = async (jobId: string) => {
    const stream = await openStream(base, `/v1/jobs/${jobId}/events`);
    await stream.ended;
    return stream.events.at(-1)?.monitor.status;
  };
  const ready = async () => (await fetch(`${base}/readyz`)).json() as Promise<{ status: string; checks: Record<string, string> }>;

  // A change through API, worker and an event stream (which opens the API's subscription).
  const first = await submit(setKey("fhir-sys", KEY_V2));
  t.equal(first.status, 202, JSON.stringify(first.body));
  t.equal(await followToEnd(first.body.id), "Succeeded");

  // After the first refresh, a change whose ARM operation lasts past the second one, followed live.
  await until("the first refresh", () => standIn.generations.length >= 2, (lifetime + 10) * 1000);
  await setFaults(sandbox, { rules: [], lroDurationMs: 35_000 });
  const second = await submit(setKey("fhir-sys", KEY_V1));
  t.equal(second.status, 202, JSON.stringify(second.body));
  const followed = followToEnd(second.body.id);

  await until("the first two tokens expired", () => standIn.checks.length >= 2, (lifetime + 15) * 1000);
  t.equal(await followed, "Succeeded", "the event stream saw the job end across a refresh (its subscription reconnected)");
  const blocking = (queue: string) => `${prefix}:${Buffer.from(queue).toString("base64")}`;
  for (const check of standIn.checks.slice(0, 2)) {
    t.same(check.violations, [], `when token ${check.generation} expired, every connection had sent the next one`);
    const names = check.connections.map((connection) => connection.name);
    for (const name of ["cmk-service:api", "cmk-service:subscriber", "cmk-service:worker", blocking("changes"), blocking("webhooks")]) {
      t.ok(names.includes(name), `${name} was checked (${check.connections.length} connections in all)`);
    }
  }
  t.equal(await standIn.failedSignIns(), 0, "Redis refused no sign-in");
  t.ok((server.output().match(/refreshed on every connection/g) ?? []).length >= 2, "each refresh is logged");

  // The principal loses access (its token is no longer accepted) and its connections are dropped.
  await setFaults(sandbox, { rules: [], lroDurationMs: 300 });
  await standIn.revoke();
  await until("readiness says why", async () => (await ready()).checks.redis === "credentials refused", 15_000);
  const refused = await submit(setKey("fhir-sys", KEY_V2));
  t.equal(refused.status, 503);
  t.equal(refused.body.code, "QueueUnavailable");
  await server.waitFor(/refuses the service's credentials \(WRONGPASS[^)]*\); the service signs in with a Microsoft Entra ID token \(CMK_REDIS_AUTH=entra\) as user c0000000-0000-4000-8000-000000000004/, 5000);
  t.notMatch(server.output(), new RegExp(standIn.generations.at(-1)!.token.slice(-40)), "the token is never logged");

  // Access is back: the service reconnects by itself, with its newest token, and works again.
  await standIn.restore();
  await until("ready again", async () => (await ready()).status === "ready", 15_000);
  const third = await submit(setKey("fhir-sys", KEY_V2));
  t.equal(third.status, 202, JSON.stringify(third.body));
  t.equal(await followToEnd(third.body.id), "Succeeded");
});
