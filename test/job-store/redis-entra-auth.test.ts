import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { Redis } from "ioredis";
import pino from "pino";
import t from "tap";
import { loadConfig } from "../../src/config.js";
import { createRedisConnection, redisTarget } from "../../src/job-store/redis-connection.js";
import { RedisEntraAuth } from "../../src/job-store/redis-entra-auth.js";
import { SERVICE_APP } from "../../src/sandbox/seed.js";
import { API_KEYS, KEYS } from "../helpers/app.js";
import { EntraRedisStandIn } from "../helpers/entra-redis.js";
import { openStream } from "../helpers/event-stream.js";
import { freePort } from "../helpers/redis-server.js";
import { KEY_V1, KEY_V2, setKey } from "../helpers/requests.js";
import { setFaults } from "../helpers/sandbox-admin.js";
import { sandboxCredential, startTestSandbox } from "../helpers/sandbox.js";
import { startServerProcess } from "../helpers/server-process.js";

/**
 * CMK_REDIS_AUTH=entra against a Redis that enforces Entra ID tokens as Azure's does (see
 * test/helpers/entra-redis.ts: the sandbox's Entra ID tells it of every token; Redis' ACL accepts only the
 * newest; a connection that has not sent the next token by the time the last one expires is dropped and
 * counted). The sandbox issues Redis tokens with a short lifetime, so refreshes happen within the test.
 */

const REDIS_AUDIENCE = "https://redis.azure.com";
const PRINCIPAL = SERVICE_APP.objectId;

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function capturingLogger() {
  const lines: Array<{ msg: string; [field: string]: unknown }> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(line) as { msg: string });
      done();
    },
  });
  return { lines, logger: pino({ level: "info" }, stream) };
}

t.test("every connection the factory makes, and every duplicate, signs in with the current token and sends the next before it expires", async (t) => {
  const standIn = await EntraRedisStandIn.start(t, PRINCIPAL);
  // 10 s tokens (exp is whole seconds: 9-10 s), refreshed 2-2.5 s before they expire.
  const sandbox = await startTestSandbox(t, { entra: { tokenLifetimeSeconds: { [REDIS_AUDIENCE]: 10 }, onTokenIssued: standIn.onTokenIssued } });
  const { lines, logger } = capturingLogger();
  const auth = new RedisEntraAuth(sandboxCredential(sandbox), { logger });
  t.teardown(() => auth.close());
  await auth.start();
  t.equal(auth.credentials().username, PRINCIPAL, "the user is the principal's object id, from the token's oid");

  const target = redisTarget(loadConfig({ REDIS_URL: standIn.redis.url, CMK_REDIS_AUTH: "entra" }), auth);
  const worker = createRedisConnection(target, "worker");
  const subscriber = createRedisConnection(target, "subscriber");
  const early = worker.duplicate();
  for (const connection of [worker, subscriber, early]) connection.on("error", () => undefined);
  t.teardown(() => [worker, subscriber, early].forEach((connection) => connection.disconnect()));
  const received: string[] = [];
  subscriber.on("message", (_channel: string, message: string) => received.push(message));
  await subscriber.subscribe("entra-test");
  t.equal(await worker.ping(), "PONG");
  t.equal(await early.ping(), "PONG");

  // Two refreshes, and the moments the first two tokens expire.
  await until("two tokens expired", () => standIn.checks.length >= 2, 40_000);
  t.equal(standIn.generations.length >= 3, true, `${standIn.generations.length} tokens issued`);
  for (const check of standIn.checks) {
    t.same(check.violations, [], `when token ${check.generation} expired, every connection had sent the next one`);
    t.same(check.connections.map((connection) => connection.name).sort(), ["cmk-service:subscriber", "cmk-service:worker", "cmk-service:worker"], "the connection, its duplicate and the subscriber");
  }
  t.equal(auth.connectionCount, 3, "the duplicate is tracked");
  t.equal(lines.filter((line) => line.msg === "Redis token (CMK_REDIS_AUTH=entra) refreshed on every connection").length >= 2, true, "each refresh is logged");

  // A connection opened after the refreshes signs in with the newest token (the only one accepted).
  const late = worker.duplicate();
  late.on("error", () => undefined);
  t.teardown(() => late.disconnect());
  t.equal(await late.ping(), "PONG");
  t.equal(await worker.ping(), "PONG");
  t.equal(await early.ping(), "PONG");
  // The subscriber reconnected with each token (a subscribed connection may not send AUTH) and still hears
  // (what is published while it reconnects is lost to it: the event hub reads the event log after each reconnect).
  await until(
    "the subscriber hears",
    async () => {
      await worker.publish("entra-test", "after the refreshes");
      return received.includes("after the refreshes");
    },
    5000,
  );
  t.equal(await standIn.failedSignIns(), 0, "Redis refused no sign-in");

  // Redis itself refuses an older token, and a connection without one.
  const stranger = new Redis(standIn.redis.url, { lazyConnect: true, enableReadyCheck: false, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  stranger.on("error", () => undefined);
  t.teardown(() => stranger.disconnect());
  await stranger.connect();
  await t.rejects(stranger.ping(), /NOAUTH/, "no token: NOAUTH");
  await t.rejects(stranger.call("AUTH", PRINCIPAL, standIn.generations[0]!.token), /WRONGPASS/, "the first token, replaced since: WRONGPASS");
});

t.test("the service as npm start runs it with CMK_REDIS_AUTH=entra: API, worker (BullMQ's blocking connections too) and event streams stay signed in across refreshes; refused credentials are said clearly", async (t) => {
  // 40 s tokens: refreshed after 30 s, 10 s before they expire; a worker's blocking read (BZPOPMIN, 5 s) may hold the AUTH back that long.
  const lifetime = 40;
  const standIn = await EntraRedisStandIn.start(t, PRINCIPAL);
  const sandbox = await startTestSandbox(t, { lroMs: 300, entra: { tokenLifetimeSeconds: { [REDIS_AUDIENCE]: lifetime }, onTokenIssued: standIn.onTokenIssued } });
  const port = await freePort();
  const prefix = `cmktest-${randomBytes(6).toString("hex")}`;
  const server = startServerProcess({
    REDIS_URL: standIn.redis.url,
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
