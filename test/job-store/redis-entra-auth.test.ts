import { Redis } from "ioredis";
import t from "tap";
import { loadConfig } from "../../src/config.js";
import { createRedisConnection, redisTarget } from "../../src/job-store/redis-connection.js";
import { RedisEntraAuth } from "../../src/job-store/redis-entra-auth.js";
import { SERVICE_APP } from "../../src/sandbox/seed.js";
import { EntraRedisStandIn } from "../helpers/entra-redis.js";
import { capturingLogger } from "../helpers/log-capture.js";
import { clusterUnavailable, startRedisCluster } from "../helpers/redis-cluster.js";
import { setFaults } from "../helpers/sandbox-admin.js";
import { sandboxCredential, startTestSandbox } from "../helpers/sandbox.js";
import { until } from "../helpers/until.js";

/**
 * CMK_REDIS_AUTH=entra against a Redis that enforces Entra ID tokens as Azure's does (see
 * test/helpers/entra-redis.ts: the sandbox's Entra ID tells it of every token; Redis' ACL accepts only the
 * newest; a connection that has not sent the next token by the time the last one expires is dropped and
 * counted). The sandbox issues Redis tokens with a short lifetime, so refreshes happen within the test.
 */

const REDIS_AUDIENCE = "https://redis.azure.com";
const PRINCIPAL = SERVICE_APP.objectId;

t.test("every connection the factory makes, and every duplicate, signs in with the current token and sends the next before it expires", async (t) => {
  const standIn = await EntraRedisStandIn.start(t, PRINCIPAL);
  // 10 s tokens (exp is whole seconds: 9-10 s), refreshed 2-2.5 s before they expire.
  const sandbox = await startTestSandbox(t, { entra: { tokenLifetimeSeconds: { [REDIS_AUDIENCE]: 10 }, onTokenIssued: standIn.onTokenIssued } });
  const { lines, logger } = capturingLogger();
  const auth = new RedisEntraAuth(sandboxCredential(sandbox), { logger });
  t.teardown(() => auth.close());
  await auth.start();
  t.equal(auth.credentials().username, PRINCIPAL, "the user is the principal's object id, from the token's oid");

  const target = redisTarget(loadConfig({ REDIS_URL: standIn.url, CMK_REDIS_AUTH: "entra" }), auth);
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
  const stranger = new Redis(standIn.url, { lazyConnect: true, enableReadyCheck: false, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  stranger.on("error", () => undefined);
  t.teardown(() => stranger.disconnect());
  await stranger.connect();
  await t.rejects(stranger.ping(), /NOAUTH/, "no token: NOAUTH");
  await t.rejects(stranger.call("AUTH", PRINCIPAL, standIn.generations[0]!.token), /WRONGPASS/, "the first token, replaced since: WRONGPASS");
});

t.test("on a Redis Cluster every node connection, the cluster's subscriber and duplicates are kept signed in", { skip: (await clusterUnavailable()) ?? false }, async (t) => {
  const cluster = await startRedisCluster(t);
  const standIn = await EntraRedisStandIn.start(t, PRINCIPAL, cluster);
  const sandbox = await startTestSandbox(t, { entra: { tokenLifetimeSeconds: { [REDIS_AUDIENCE]: 10 }, onTokenIssued: standIn.onTokenIssued } });
  const auth = new RedisEntraAuth(sandboxCredential(sandbox), { logger: capturingLogger().logger });
  t.teardown(() => auth.close());
  await auth.start();
  const target = redisTarget(loadConfig({ REDIS_URL: standIn.url, CMK_REDIS_AUTH: "entra", CMK_REDIS_CLUSTER: "true" }), auth);
  const worker = createRedisConnection(target, "worker");
  const subscriber = createRedisConnection(target, "subscriber");
  const early = worker.duplicate();
  for (const connection of [worker, subscriber, early]) connection.on("error", () => undefined);
  t.teardown(() => [worker, subscriber, early].forEach((connection) => connection.disconnect()));
  const received: string[] = [];
  subscriber.on("message", (_channel: string, message: string) => received.push(message));
  await subscriber.subscribe("entra-test");
  // Keys in slots of all three masters: connections to every node.
  const touch = (connection: typeof worker) => Promise.all(["a", "b", "c", "d", "e"].map((key) => connection.set(`entra-test:${key}`, key)));
  await touch(worker);
  await touch(early);

  await until("two tokens expired", () => standIn.checks.length >= 2, 40_000);
  for (const check of standIn.checks) {
    t.same(check.violations, [], `when token ${check.generation} expired, every connection on every node had sent the next one`);
    t.equal(new Set(check.connections.map((connection) => connection.id.split("/")[0])).size, 3, `connections on all three nodes (${check.connections.length})`);
  }
  const late = worker.duplicate();
  late.on("error", () => undefined);
  t.teardown(() => late.disconnect());
  await touch(late);
  await touch(worker);
  await until(
    "the cluster's subscriber hears",
    async () => {
      await worker.publish("entra-test", "after the refreshes");
      return received.includes("after the refreshes");
    },
    5000,
  );
  t.equal(await standIn.failedSignIns(), 0, "Redis refused no sign-in");
});

t.test("no token at start stops start-up with the reason; a failed refresh is a warning, retried while the token lasts", async (t) => {
  const standIn = await EntraRedisStandIn.start(t, PRINCIPAL);
  const sandbox = await startTestSandbox(t, { entra: { tokenLifetimeSeconds: { [REDIS_AUDIENCE]: 12 }, onTokenIssued: standIn.onTokenIssued } });

  const wrongSecret = new RedisEntraAuth(sandboxCredential(sandbox, SERVICE_APP, "not-the-secret"), { logger: capturingLogger().logger, startRetryMs: 10 });
  await t.rejects(wrongSecret.start(), { name: "RedisSignInError", message: /^Redis sign-in \(CMK_REDIS_AUTH=entra\): no token for https:\/\/redis\.azure\.com\/\.default after 5 attempts: .*AADSTS7000215/ });

  const { lines, logger } = capturingLogger();
  const auth = new RedisEntraAuth(sandboxCredential(sandbox), { logger });
  t.teardown(() => auth.close());
  await auth.start();
  const connection = createRedisConnection(redisTarget(loadConfig({ REDIS_URL: standIn.url, CMK_REDIS_AUTH: "entra" }), auth), "worker");
  connection.on("error", () => undefined);
  t.teardown(() => connection.disconnect());
  t.equal(await connection.ping(), "PONG");

  // Entra ID refuses when the refresh is due (after 75% of 11-12 s), then answers again. (A 5xx or 429 would
  // be remembered by the credential, MSAL, for up to 60 s: longer than this token lives.)
  await setFaults(sandbox, { rules: [{ service: "entra", status: 400, probability: 1 }] });
  await until("the failed refresh is reported", () => lines.some((line) => /not refreshed; the current one still works/.test(line.msg)), 15_000);
  const warning = lines.find((line) => /not refreshed/.test(line.msg))!;
  t.match(warning, { level: 40, err: /could not get a token for https:\/\/redis\.azure\.com\/\.default/, expiresInSeconds: Number, retryInSeconds: 2 });
  await setFaults(sandbox, { rules: [] });
  await until("refreshed once Entra ID is back", () => lines.some((line) => line.msg === "Redis token (CMK_REDIS_AUTH=entra) refreshed on every connection"), 10_000);
  await until("the first token's expiry checked", () => standIn.checks.length >= 1, 15_000);
  t.same(standIn.checks[0]!.violations, [], "the connection had the new token before the old one expired");
  t.equal(await connection.ping(), "PONG");
});
