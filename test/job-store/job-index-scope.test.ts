import t from "tap";
import { Redis } from "ioredis";
import type { FastifyInstance } from "fastify";
import { sha256Hex } from "../../src/plugins/app/authentication.js";
import * as seed from "../../src/sandbox/seed.js";
import { buildTestApp, KEYS, testConfig } from "../helpers/app.js";
import { startOwnRedis } from "../helpers/redis-server.js";
import { setKey } from "../helpers/requests.js";

/** Issue 12, item 6: a caller limited to some subscriptions pages through their own indexes. */

const apiKeys = [
  { name: "admin", sha256: sha256Hex(KEYS.admin), roles: ["admin"] },
  { name: "reader-home", sha256: sha256Hex("key-reader-home"), roles: ["reader"], subscriptions: [seed.SUBSCRIPTION_ID] },
  { name: "reader-both", sha256: sha256Hex("key-reader-both"), roles: ["reader"], subscriptions: [seed.SUBSCRIPTION_ID, seed.OTHER_SUBSCRIPTION_ID] },
];

async function submit(app: FastifyInstance, fhirServiceId: string): Promise<string> {
  const body = { ...setKey("fhir-sys", undefined, undefined, { dryRun: true }), fhirServiceId };
  const response = await app.inject({ method: "POST", url: "/v1/change-requests", payload: body, headers: { "x-api-key": KEYS.admin } });
  if (response.statusCode !== 202) throw new Error(`${response.statusCode} ${response.body}`);
  return response.json().id as string;
}

async function listAll(app: FastifyInstance, key: string, query: string): Promise<string[]> {
  const ids: string[] = [];
  let url: string | undefined = `/v1/jobs?${query}`;
  while (url) {
    const response: { statusCode: number; body: string; json(): { value: Array<{ id: string }>; nextLink?: string } } = await app.inject({ method: "GET", url, headers: { "x-api-key": key } });
    if (response.statusCode !== 200) throw new Error(`${url}: ${response.statusCode} ${response.body}`);
    ids.push(...response.json().value.map((monitor) => monitor.id));
    url = response.json().nextLink;
  }
  return ids;
}

/** Redis commands the server ran while `action` ran (INFO commandstats on a server of the test's own). */
async function commandsDuring(redis: Redis, action: () => Promise<unknown>): Promise<number> {
  await redis.config("RESETSTAT");
  await action();
  const stats = await redis.info("commandstats");
  let calls = 0;
  for (const match of stats.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)) if (!["info", "config|resetstat"].includes(match[1]!)) calls += Number(match[2]);
  return calls;
}

t.test("a scoped page over 1,000 jobs of another subscription costs what an unscoped page costs", async (t) => {
  const redisServer = await startOwnRedis(t);
  const app = await buildTestApp(t, testConfig(t, { REDIS_URL: redisServer.url, CMK_API_KEYS: JSON.stringify(apiKeys) }));
  const redis = new Redis(redisServer.url);
  t.teardown(() => redis.disconnect());

  const home: string[] = [];
  for (let i = 0; i < 5; i++) home.push(await submit(app, seed.fhirServiceId(seed.FHIR_SYS)));
  const other: string[] = [];
  for (let batch = 0; batch < 40; batch++) other.push(...(await Promise.all(Array.from({ length: 25 }, () => submit(app, seed.FHIR_OTHER_ID)))));
  t.equal(other.length, 1000);

  const page = (key: string) => app.inject({ method: "GET", url: "/v1/jobs?top=5", headers: { "x-api-key": key } });
  // Once each first: the cursor key is read once per process.
  await page(KEYS.admin);
  await page("key-reader-home");

  let scoped: { json(): { value: Array<{ id: string }>; nextLink?: string } } | undefined;
  const scopedCost = await commandsDuring(redis, async () => (scoped = await page("key-reader-home")));
  const unscopedCost = await commandsDuring(redis, () => page(KEYS.admin));
  t.same(scoped?.json().value.map((job) => job.id), [...home].reverse(), "the caller's five jobs, newest first");
  t.notOk(scoped?.json().nextLink, "and no next page to search");
  t.ok(scopedCost <= unscopedCost + 2, `scoped page: ${scopedCost} Redis commands; unscoped: ${unscopedCost}`);

  // A caller with two subscriptions walks both indexes merged: every job once, newest first.
  const everything = await listAll(app, KEYS.admin, "top=100");
  t.equal(everything.length, 1005);
  t.same(await listAll(app, "key-reader-both", "top=100"), everything, "two subscriptions: the same order as the whole list");
  t.same(await listAll(app, "key-reader-home", "top=2"), [...home].reverse());
});

t.test("jobs are indexed per subscription in the same round trip as the other indexes", async (t) => {
  const app = await buildTestApp(t, testConfig(t, { CMK_API_KEYS: JSON.stringify(apiKeys) }));
  const id = await submit(app, seed.FHIR_OTHER_ID);
  const members = await app.redis.zrange(`${app.config.CMK_QUEUE_PREFIX}:jobs:idx:subscription:${seed.OTHER_SUBSCRIPTION_ID}`, 0, -1);
  t.equal(members.length, 1);
  t.match(members[0], new RegExp(`:${id}$`));
});
