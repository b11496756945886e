import t from "tap";
import { Redis } from "ioredis";
import { createJobStore } from "../../src/job-store/job-store.js";
import { REDIS_URL, testConfig } from "../helpers/app.js";

/**
 * ARM's per-subscription budget in Redis (scripts/arm-budget-1.lua): each take reserves the next slot, so
 * callers leave one per 1/rate seconds after the burst, whichever worker they are in; ARM's own count and
 * a 429's Retry-After push the slots back. The script's answers (the wait each caller is given, and Redis'
 * time it was given at) are checked, never this process's clock.
 */
t.test("slots one per 1/rate after the burst, shared by every connection; 429 and low remaining push them back", async (t) => {
  const config = testConfig(t);
  const connections = [new Redis(REDIS_URL), new Redis(REDIS_URL)];
  t.teardown(() => connections.forEach((redis) => redis.disconnect()));
  const stores = connections.map((redis) => createJobStore({ redis, prefix: config.CMK_QUEUE_PREFIX, retentionHours: 24 }));
  t.teardown(() => Promise.all(stores.map((store) => store.close())));
  const bucket = stores[0]!.keys.armBudget("22222222-2222-2222-2222-222222222222", "writes");
  // 2 a second (a slot every 500 ms), a burst of 3.
  const take = (i: number) => stores[i % 2]!.redis.cmkArmBudget(bucket, 3, 2, "take", "", "", 60_000);
  const answers: Array<[number, number]> = [];
  for (let i = 0; i < 7; i++) answers.push(await take(i));
  t.same(answers.slice(0, 3).map(([wait]) => wait), [0, 0, 0], "the burst goes at once");
  // However long the calls took, each caller's slot (Redis' time + its wait) is 500 ms after the previous one's.
  const slots = answers.map(([wait, now]) => now + wait);
  for (let i = 4; i < 7; i++) t.ok(Math.abs(slots[i]! - slots[i - 1]! - 500) <= 1, `slot ${i - 2} is 500 ms after slot ${i - 3} (${slots[i]! - slots[i - 1]!} ms)`);
  t.ok(answers[3]![0] > 0, "after the burst, callers wait");

  const other = stores[0]!.keys.armBudget("33333333-3333-3333-3333-333333333333", "writes");
  t.equal((await stores[1]!.redis.cmkArmBudget(other, 3, 2, "take", "", "", 60_000))[0], 0, "another subscription has its own budget");

  // ARM answered 429 with Retry-After 10 s: every later slot is after it.
  await stores[0]!.redis.cmkArmBudget(other, 3, 2, "observe", "", "10000", 60_000);
  const [afterThrottle] = await stores[0]!.redis.cmkArmBudget(other, 3, 2, "take", "", "", 60_000);
  t.ok(afterThrottle >= 10_000 && afterThrottle <= 10_501, `after a 429 the next slot waits Retry-After (${afterThrottle} ms)`);

  // ARM says nothing is left (another client spent it): the bucket drops to that.
  const third = stores[0]!.keys.armBudget("44444444-4444-4444-4444-444444444444", "reads");
  await stores[0]!.redis.cmkArmBudget(third, 100, 10, "observe", "0", "", 60_000);
  const [next] = await stores[0]!.redis.cmkArmBudget(third, 100, 10, "take", "", "", 60_000);
  t.ok(next > 0 && next <= 100, `no burst left: the next read waits for a refill (${next} ms)`);
  t.ok((await connections[0]!.pttl(bucket)) > 0, "idle buckets expire");
});
