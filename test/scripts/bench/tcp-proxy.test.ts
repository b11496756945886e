import t from "tap";
import { Redis } from "ioredis";
import { startOwnRedis } from "../../helpers/redis-server.js";
import { startTcpProxy } from "../../../scripts/bench/tcp-proxy.js";

t.test("the proxy counts a client's round trips: one per awaited command, one per pipeline or MULTI block", async (t) => {
  const redis = await startOwnRedis(t);
  const proxy = await startTcpProxy(redis.port);
  t.teardown(() => proxy.close());
  const client = new Redis(`redis://127.0.0.1:${proxy.port}`);
  t.teardown(() => client.disconnect());
  await client.ping();

  let before = proxy.turns();
  await client.set("a", "1");
  await client.get("a");
  await client.incr("b");
  t.equal(proxy.turns() - before, 3, "three commands, each awaited");

  before = proxy.turns();
  await client.pipeline().set("a", "2").get("a").incr("b").exec();
  t.equal(proxy.turns() - before, 1, "a pipeline");

  before = proxy.turns();
  await client.multi().set("a", "3").incr("b").exec();
  t.equal(proxy.turns() - before, 1, "a MULTI block");

  before = proxy.turns();
  await Promise.all([client.get("a"), client.get("b")]);
  t.equal(proxy.turns() - before, 1, "concurrent commands written together");
  t.equal(await client.get("b"), "3", "traffic passes through unchanged");
});

t.test("with a simulated round trip, traffic still passes in order", async (t) => {
  const redis = await startOwnRedis(t);
  const proxy = await startTcpProxy(redis.port, 20);
  t.teardown(() => proxy.close());
  const client = new Redis(`redis://127.0.0.1:${proxy.port}`);
  t.teardown(() => client.disconnect());
  const replies = await Promise.all(Array.from({ length: 20 }, () => client.incr("counter")));
  t.same(replies, Array.from({ length: 20 }, (_, index) => index + 1));
});
