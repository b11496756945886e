import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Redis } from "ioredis";
import t, { type Test } from "tap";
import { ConfigError } from "../../src/config.js";
import { answersPing, NO_REDIS_HINT, RedisNotInstalledError, resolveRedis } from "../../src/redis/local-redis.js";
import { freePort } from "../helpers/redis-server.js";

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function tempDir(t: Test): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), "cmk-local-redis-"));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  return directory;
}

/** A URL where nothing answers, as the default address is on a machine without Redis. */
const nothingAt = async () => `redis://127.0.0.1:${await freePort()}`;

t.test("REDIS_URL given, or a Redis on the default address: used as it is, nothing started", async (t) => {
  const dataDir = await tempDir(t);
  const given = await resolveRedis({ url: await nothingAt(), urlSet: true, production: false, dataDir });
  t.equal(given.started, undefined, "an unreachable REDIS_URL is the operator's choice: no private server");
  const local = await resolveRedis({ url: process.env.REDIS_URL ?? "redis://127.0.0.1:6379", urlSet: false, production: false, dataDir });
  t.equal(local.started, undefined, "the Redis on the default address answers");
});

t.test("production: a missing Redis is a configuration error naming REDIS_URL", async (t) => {
  const url = await nothingAt();
  const error = await resolveRedis({ url, urlSet: false, production: true, dataDir: await tempDir(t) }).catch((caught: Error) => caught);
  t.ok(error instanceof ConfigError);
  t.equal((error as ConfigError).variable, "REDIS_URL");
});

t.test("no redis-server on the PATH: one message with the ways to get Redis", async (t) => {
  const error = await resolveRedis({ url: await nothingAt(), urlSet: false, production: false, dataDir: await tempDir(t), path: await tempDir(t) }).catch((caught: Error) => caught);
  t.ok(error instanceof RedisNotInstalledError);
  t.equal((error as Error).message, NO_REDIS_HINT);
  t.match(NO_REDIS_HINT, /apt-get install redis-server/);
  t.match(NO_REDIS_HINT, /brew install redis/);
  t.match(NO_REDIS_HINT, /docker run .* redis:7/);
});

t.test("nothing on the default address: a private redis-server with AOF and noeviction, shared, taken over, stopped", async (t) => {
  const dataDir = join(await tempDir(t), "redis");
  const options = { url: await nothingAt(), urlSet: false, production: false, dataDir };
  const first = await resolveRedis(options);
  t.teardown(() => first.close());
  t.match(first.started, /a private redis-server runs on 127\.0\.0\.1:\d+ \(AOF on, noeviction, data in /);
  t.not(first.url, options.url, "on a free port of its own");

  const client = new Redis(first.url, { lazyConnect: true });
  await client.connect();
  t.same(await client.config("GET", "appendonly"), ["appendonly", "yes"]);
  t.same(await client.config("GET", "maxmemory-policy"), ["maxmemory-policy", "noeviction"]);
  t.same(await client.config("GET", "dir"), ["dir", dataDir]);
  await client.set("survives", "a restart");
  client.disconnect();

  const second = await resolveRedis(options);
  t.equal(second.url, first.url, "a second start in the same folder shares it");
  t.match(second.started, /sharing the private redis-server/);
  await second.close();
  t.ok(await answersPing("127.0.0.1", Number(new URL(first.url).port)), "a sharer does not stop it");

  // The owner died without stopping it (SIGKILL): the next start takes it over and stops it on exit.
  const ownerFile = join(dataDir, "owner.json");
  const record = JSON.parse(await readFile(ownerFile, "utf8")) as { redisPid: number; port: number };
  await writeFile(ownerFile, JSON.stringify({ ...record, ownerPid: 2 ** 22 + 1 }));
  const heir = await resolveRedis(options);
  t.equal(heir.url, first.url);
  t.match(heir.started, /took over the private redis-server/);
  await heir.close();
  t.notOk(alive(record.redisPid), "stopped with its owner");

  // Started again: the data came back from the AOF.
  const again = await resolveRedis(options);
  t.teardown(() => again.close());
  const reader = new Redis(again.url, { lazyConnect: true });
  await reader.connect();
  t.equal(await reader.get("survives"), "a restart", "AOF kept the data across a stop");
  reader.disconnect();
  t.equal(dirname(ownerFile), dataDir);
});
