import t from "tap";
import { buildTestApp, KEYS, testConfig } from "../helpers/app.js";

t.test("rate limits are counted in each API process and shared through Redis", async (t) => {
  const config = testConfig(t, { CMK_RATE_LIMIT_PER_MINUTE: "5" });
  // Two API processes of one deployment (one prefix); their counters are flushed here, not by the timer.
  const [a, b] = [await buildTestApp(t, config), await buildTestApp(t, config)];
  for (const app of [a, b]) app.jobStore.rateCounters.close();
  const get = (app: typeof a) => app.inject({ method: "GET", url: "/v1/jobs/00000000-0000-0000-0000-000000000000", headers: { "x-api-key": KEYS.reader } });

  for (let i = 0; i < 3; i++) t.equal((await get(a)).statusCode, 404, `A: request ${i + 1}`);
  for (let i = 0; i < 3; i++) t.equal((await get(b)).statusCode, 404, `B: request ${i + 1}, counted locally until the next flush`);
  await a.jobStore.rateCounters.flush();
  await b.jobStore.rateCounters.flush();
  t.equal((await get(b)).statusCode, 429, "B has learnt A's three: 7 of 5");
  const key = `${config.CMK_QUEUE_PREFIX}:rate-limit:apiKey:test-reader`;
  t.equal(await b.redis.get(key), "6", "the deployment's counter in Redis");
  const ttl = await b.redis.pttl(key);
  t.ok(ttl > 0 && ttl <= 60_000, `it expires with the window (${ttl} ms left)`);

  t.equal((await get(a)).statusCode, 404, "A has not flushed since B's counts: one more gets through");
  await a.jobStore.rateCounters.flush();
  t.equal((await get(a)).statusCode, 429, "after its flush A knows the total too");
  t.equal(Number(await a.redis.get(key)), 7);
});
