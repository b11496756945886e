import t from "tap";
import { Queue } from "bullmq";
import type { FastifyInstance } from "fastify";
import { createRedisConnection } from "../../src/job-store/redis-connection.js";
import { buildTestApp, KEYS, testConfig } from "../helpers/app.js";
import { countCommands, countRoundTrips } from "../helpers/redis-commands.js";
import { startOwnRedis } from "../helpers/redis-server.js";
import { setKey } from "../helpers/requests.js";

/**
 * What the hot paths cost in Redis, counted (never timed) on a redis-server of the test's own: commands
 * as `INFO commandstats` counts them (calls inside Lua scripts included), round trips as the API's
 * connection makes them (a pipeline is one). Goals (issue 13): accepting a change at most 16 commands
 * (BullMQ's own add with deduplication is 11 of them) in at most 2 round trips; a status read at most 2
 * commands in 1 round trip, the rate limiter included.
 */

t.test("accepting a change and reading a status", async (t) => {
  const redis = await startOwnRedis(t);
  const app = await buildTestApp(t, testConfig(t, { REDIS_URL: redis.url }));
  // The rate counters are flushed by a timer, off every request's path: stopped here so that a flush
  // does not land inside a measurement; its own cost is measured below.
  app.jobStore.rateCounters.close();
  const trips = countRoundTrips(app.redis, app.jobStore.queueConnection);
  t.teardown(() => trips.stop());
  let n = 0;
  const submit = (extra: object = {}, headers: Record<string, string> = {}) =>
    app.inject({ method: "POST", url: "/v1/change-requests", payload: setKey(`fhir-cost-${(n += 1)}`, undefined, undefined, extra), headers: { "x-api-key": KEYS.operator, ...headers } });
  const measure = async (what: () => Promise<{ statusCode: number; json(): { id: string } }>) => {
    trips.reset();
    const { result, commands } = await countCommands(redis.url, what);
    return { response: result, commands, roundTrips: trips.count, trips: trips.trips.map((trip) => trip.join("+")) };
  };

  // What BullMQ's own add with a deduplication id costs on this server: the floor of any accept.
  const connection = createRedisConnection(redis.url, "worker");
  t.teardown(() => connection.disconnect());
  const raw = new Queue("raw", { connection, prefix: "raw" });
  t.teardown(() => raw.close());
  await raw.add("x", { n: 0 }, { jobId: "warm", deduplication: { id: "warm" } });
  const { commands: bullmqAdd } = await countCommands(redis.url, () => raw.add("x", { n: 1 }, { jobId: "one", deduplication: { id: "one" } }));
  t.comment(`BullMQ add with deduplication: ${bullmqAdd.total} commands ${JSON.stringify(bullmqAdd.byCommand)}`);

  // Once first: scripts loaded on the connection.
  const first = await submit();
  t.equal(first.statusCode, 202);
  await app.inject({ method: "GET", url: `/v1/jobs/${first.json().id as string}`, headers: { "x-api-key": KEYS.reader } });

  const accept = await measure(() => submit());
  t.equal(accept.response.statusCode, 202);
  t.comment(`accept: ${accept.commands.total} commands ${JSON.stringify(accept.commands.byCommand)}; round trips ${accept.trips.join(" | ")}`);
  t.equal(accept.commands.total, bullmqAdd.total + 4, "BullMQ's add, then 3 index entries (all, FHIR service, subscription) and the audit entry");
  t.ok(accept.commands.total <= 16, `at most 16 commands (${accept.commands.total})`);
  t.equal(accept.roundTrips, 2, "the add, then one pipeline");
  t.same(accept.trips, ["evalsha", "zadd+zadd+zadd+xadd"]);

  const ticketed = await measure(() => submit({ ticket: { system: "servicenow", id: "CHG-COST" } }));
  t.equal(ticketed.commands.total, bullmqAdd.total + 5, "a ticket adds its index entry");
  t.ok(ticketed.commands.total <= 16, `at most 16 commands (${ticketed.commands.total})`);
  t.equal(ticketed.roundTrips, 2);

  const idempotent = await measure(() => submit({}, { "idempotency-key": "cost-1" }));
  t.equal(idempotent.response.statusCode, 202);
  t.equal(idempotent.commands.total, bullmqAdd.total + 5, "the key's record is one SET NX GET, written once, in the add's own script");
  t.ok(idempotent.commands.total <= 16, `at most 16 commands (${idempotent.commands.total})`);
  t.equal(idempotent.roundTrips, 2, "the claim and the add are one script, then one pipeline");
  t.same(idempotent.trips, ["evalsha", "zadd+zadd+zadd+xadd"]);
  const replay = await measure(() =>
    app.inject({ method: "POST", url: "/v1/change-requests", payload: setKey(`fhir-cost-${n}`), headers: { "x-api-key": KEYS.operator, "idempotency-key": "cost-1" } }),
  );
  t.equal(replay.response.statusCode, 202);
  t.equal(replay.response.json().id, idempotent.response.json().id, "a replay answers the first job");
  t.same(replay.commands.byCommand, { evalsha: 1, set: 1, hget: 1, xadd: 1 }, "the accept script's claim (nothing added), the first job's data, the replay's audit entry");
  t.comment(`idempotent accept: ${idempotent.commands.total} commands in ${idempotent.roundTrips} round trips; replay: ${replay.commands.total} in ${replay.roundTrips}`);

  const jobId = accept.response.json().id;
  const read = await measure(() => app.inject({ method: "GET", url: `/v1/jobs/${jobId}`, headers: { "x-api-key": KEYS.reader } }));
  t.equal(read.response.statusCode, 200);
  t.same(read.commands.byCommand, { hgetall: 1, lrange: 1 }, "the job's own record and its webhook deliveries: no getState script, no rate-limit call");
  t.equal(read.roundTrips, 1);

  // The rate limit's share: one round trip per flush, three commands per caller counted since the last one.
  for (let i = 0; i < 20; i++) await app.inject({ method: "GET", url: `/v1/jobs/${jobId}`, headers: { "x-api-key": KEYS.reader } });
  const flush = await measure(async () => {
    await app.jobStore.rateCounters.flush();
    return { statusCode: 0, json: () => ({ id: "" }) };
  });
  t.same(flush.commands.byCommand, { incrby: 2, pexpire: 2, pttl: 2 }, "20 reads and the submissions: two callers' counters, whatever the number of requests");
  t.equal(flush.roundTrips, 1);
});

t.test("a page of jobs reads its jobs in one round trip", async (t) => {
  const redis = await startOwnRedis(t);
  const app: FastifyInstance = await buildTestApp(t, testConfig(t, { REDIS_URL: redis.url }));
  app.jobStore.rateCounters.close();
  for (let i = 0; i < 10; i++) {
    const response = await app.inject({ method: "POST", url: "/v1/change-requests", payload: setKey(`fhir-page-${i}`), headers: { "x-api-key": KEYS.operator } });
    t.equal(response.statusCode, 202);
  }
  await app.inject({ method: "GET", url: "/v1/jobs?top=5", headers: { "x-api-key": KEYS.reader } });
  const trips = countRoundTrips(app.redis, app.jobStore.queueConnection);
  t.teardown(() => trips.stop());
  const { result, commands } = await countCommands(redis.url, () => app.inject({ method: "GET", url: "/v1/jobs?top=5", headers: { "x-api-key": KEYS.reader } }));
  t.equal(result.json().value.length, 5);
  t.same(commands.byCommand, { zrange: 1, hgetall: 6, lrange: 6 }, "one index range, then the page's jobs (and one more, to know a next page exists)");
  t.equal(trips.count, 2);
});
