import t from "tap";
import { Redis } from "ioredis";
import { startOwnRedis } from "../../helpers/redis-server.js";
import { commandDelta, describeCommands, parseCommandStats, perRequest, snapshot, type CommandDelta } from "../../../scripts/bench/redis-counters.js";

t.test("a delta counts what Redis ran, calls inside scripts included, without the benchmark's own INFO", async (t) => {
  // Its own Redis: the shared one counts every other test's commands too.
  const redis = await startOwnRedis(t);
  const client = new Redis(redis.url);
  t.teardown(() => client.disconnect());
  await client.ping();

  const before = await snapshot(client);
  await client.hset("record", { monitor: "{}" });
  await client.eval("redis.call('SET', KEYS[1], '1'); return redis.call('GET', KEYS[1])", 1, "key");
  const delta = commandDelta(before, await snapshot(client));

  t.same(delta.byCommand, { hset: 1, eval: 1, set: 1, get: 1 });
  t.equal(delta.total, 4);
  t.equal(delta.totalProcessed, 4, "INFO stats agrees with INFO commandstats");
  t.equal(describeCommands(delta.byCommand), "1 EVAL, 1 GET, 1 HSET, 1 SET");
});

t.test("subcommands keep their name", async (t) => {
  t.same(parseCommandStats("# Commandstats\r\ncmdstat_client|setname:calls=2,usec=3,usec_per_call=1.50\r\ncmdstat_evalsha:calls=7,usec=9\r\n"), {
    "client|setname": 2,
    evalsha: 7,
  });
});

t.test("per request: the background rate seen while idle is taken out, scaled to the window", async (t) => {
  const window: CommandDelta = { total: 12, totalProcessed: 12, byCommand: { hgetall: 8, ping: 4 }, ms: 1000 };
  const idle: CommandDelta = { total: 2, totalProcessed: 2, byCommand: { ping: 2 }, ms: 500 };
  const result = perRequest(window, 4, idle);
  t.equal(result.background, 4);
  t.equal(result.total, 2);
  t.same(result.byCommand, { hgetall: 2 }, "a command that is all background drops out");
});
