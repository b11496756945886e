import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { loadConfig } from "../../src/config.js";
import { redisTarget } from "../../src/job-store/redis-connection.js";
import { warnAboutRedisDurability } from "../../src/runtime.js";
import { KEYS, waitForJob } from "../helpers/app.js";
import { openStream } from "../helpers/event-stream.js";
import { clusterUnavailable, startRedisCluster } from "../helpers/redis-cluster.js";
import { KEY_V1, KEY_V2, setKey } from "../helpers/requests.js";
import { startStack } from "../helpers/stack.js";
import { createCertificateAuthority, writeServerCertificate } from "../helpers/tls-certificates.js";

/**
 * CMK_REDIS_CLUSTER=true against a three-master Redis Cluster the test makes: every connection is an
 * ioredis Cluster, the prefix carries a hash tag, and every script, MULTI and pipeline of the store and of
 * BullMQ runs in one slot (a cluster refuses anything else with CROSSSLOT). The keys the service wrote are
 * read back from every node: all in one slot.
 */

const skip = await clusterUnavailable();

t.test("a change through API and worker, with every path of the store, on a Redis Cluster", { skip: skip ?? false }, async (t) => {
  const cluster = await startRedisCluster(t);
  const env = { REDIS_URL: cluster.url, CMK_REDIS_CLUSTER: "true" };
  const { app, config } = await startStack(t, { env });
  t.match(config.CMK_QUEUE_PREFIX, /^\{cmktest-[0-9a-f]+\}$/, "the prefix got a hash tag");
  const prefix = config.CMK_QUEUE_PREFIX;
  const base = await app.listen({ port: 0, host: "127.0.0.1" });

  t.equal((await app.inject({ method: "GET", url: "/readyz" })).statusCode, 200);
  const post = (body: object, headers: Record<string, string> = {}) =>
    app.inject({ method: "POST", url: "/v1/change-requests", payload: body, headers: { "x-api-key": KEYS.operator, ...headers } });

  // Accept (the BullMQ add and the pipeline of indexes and audit), with an Idempotency-Key (SET NX GET), replayed.
  const accepted = await post(setKey("fhir-sys", KEY_V2), { "idempotency-key": "cluster-1" });
  t.equal(accepted.statusCode, 202, accepted.body);
  const jobId = accepted.json().id as string;
  const replayed = await post(setKey("fhir-sys", KEY_V2), { "idempotency-key": "cluster-1" });
  t.equal(replayed.statusCode, 202);
  t.equal(replayed.headers["idempotent-replayed"], "true");
  // Events through the cluster's pub/sub, followed to the end; the worker's steps, claims and job end.
  const stream = await openStream(base, `/v1/jobs/${jobId}/events`);
  await stream.ended;
  t.equal(stream.events.at(-1)?.monitor.status, "Succeeded", "the event stream saw the job succeed");
  const { monitor } = await waitForJob(app, jobId);
  t.equal(monitor.status, "Succeeded", JSON.stringify(monitor.error ?? ""));

  // One unfinished job per FHIR service (BullMQ deduplication), and cancel (a script of nine keys and one it finds).
  const second = await post(setKey("fhir-sys", KEY_V1));
  t.equal(second.statusCode, 202);
  const busy = await post(setKey("fhir-sys", KEY_V2));
  t.equal(busy.statusCode, 409);
  t.equal(busy.json().code, "ChangeInProgress");
  const cancel = await app.inject({ method: "POST", url: `/v1/jobs/${second.json().id}/cancel`, headers: { "x-api-key": KEYS.operator } });
  t.ok([200, 202, 409].includes(cancel.statusCode), `cancel answered ${cancel.statusCode}: ${cancel.body}`);
  await waitForJob(app, second.json().id);

  // Reads: the list (and its continuation token, sealed with the page-cursor key), the audit trail.
  const page = await app.inject({ method: "GET", url: "/v1/jobs?top=1", headers: { "x-api-key": KEYS.reader } });
  t.equal(page.statusCode, 200);
  t.ok(page.json().nextLink, "a next page");
  const next = await app.inject({ method: "GET", url: page.json().nextLink, headers: { "x-api-key": KEYS.reader } });
  t.equal(next.statusCode, 200);
  t.equal(next.json().value[0]?.id, jobId, "the older job on the next page");
  const audit = await app.inject({ method: "GET", url: "/v1/audit", headers: { "x-api-key": KEYS.admin } });
  t.equal(audit.statusCode, 200);
  t.ok(audit.json().value.length >= 3, "accepted, refused and finished changes are in the trail");

  // Everything the service wrote, on every node: one slot.
  await new Promise((resolve) => setTimeout(resolve, 500)); // the rate counters' next flush
  const keys = (await cluster.keys()).filter(({ key }) => key.startsWith(prefix));
  const slots = new Set(keys.map(({ slot }) => slot));
  t.equal(slots.size, 1, `${keys.length} keys in ${slots.size} slot(s)`);
  t.equal(new Set(keys.map(({ node }) => node)).size, 1, "on one node");
  for (const kind of [":changes:", ":jobs:idx:all", ":jobs:", ":audit", ":idempotency:", ":rate-limit:", ":page-cursor-key"]) {
    t.ok(keys.some(({ key }) => key.includes(kind)), `a ${kind} key is among them`);
  }
});

t.test("cancel of a job no worker holds finishes it inside its script, on a Redis Cluster", { skip: skip ?? false }, async (t) => {
  const cluster = await startRedisCluster(t);
  const { app } = await startStack(t, { worker: false, env: { REDIS_URL: cluster.url, CMK_REDIS_CLUSTER: "true" } });
  const accepted = await app.inject({ method: "POST", url: "/v1/change-requests", payload: setKey("fhir-sys", KEY_V2), headers: { "x-api-key": KEYS.operator } });
  t.equal(accepted.statusCode, 202);
  const canceled = await app.inject({ method: "POST", url: `/v1/jobs/${accepted.json().id}/cancel`, headers: { "x-api-key": KEYS.operator } });
  t.equal(canceled.statusCode, 200, canceled.body);
  t.equal(canceled.json().status, "Canceled");
  // The script released the FHIR service's deduplication key (found in the job's hash): a new change is accepted.
  const again = await app.inject({ method: "POST", url: "/v1/change-requests", payload: setKey("fhir-sys", KEY_V1), headers: { "x-api-key": KEYS.operator } });
  t.equal(again.statusCode, 202, again.body);

  // A cluster node taken for a single Redis is named at start-up.
  const quiet = { warn: () => undefined };
  t.match((await warnAboutRedisDurability(cluster.url, quiet)).join("\n"), /is a Redis Cluster node: set CMK_REDIS_CLUSTER=true/);
  t.notMatch((await warnAboutRedisDurability(redisTarget(loadConfig({ REDIS_URL: cluster.url, CMK_REDIS_CLUSTER: "true" })), quiet)).join("\n"), /Cluster/);
});

t.test("a Redis Cluster over TLS: nodes reached as the cluster announces them (addresses), certificates checked against REDIS_URL's host", { skip: skip ?? false }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "cmk-cluster-tls-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // The certificate names the host only: the nodes' addresses (127.0.0.1) pass because the identity checked is REDIS_URL's host.
  // Nodes present it to each other too (the cluster bus authenticates both ends).
  const tls = await writeServerCertificate(dir, "cluster", await createCertificateAuthority("cmk test cluster CA"), { dnsNames: ["localhost"], clientAuth: true });
  const cluster = await startRedisCluster(t, { tls });
  t.match(cluster.url, /^rediss:\/\/localhost:/);
  const { app } = await startStack(t, { env: { REDIS_URL: cluster.url, CMK_REDIS_CLUSTER: "true", CMK_REDIS_CA_FILE: tls.caFile } });
  t.equal((await app.inject({ method: "GET", url: "/readyz" })).statusCode, 200);
  const accepted = await app.inject({ method: "POST", url: "/v1/change-requests", payload: setKey("fhir-sys", KEY_V2), headers: { "x-api-key": KEYS.operator } });
  t.equal(accepted.statusCode, 202, accepted.body);
  t.equal((await waitForJob(app, accepted.json().id)).monitor.status, "Succeeded");
});
