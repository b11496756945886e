import t from "tap";
import { createReadCache } from "../../src/azure/read-cache.js";

/** The cache's rules; test/routes/v1/validations.test.ts shows them against the emulator's request log. */

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

t.test("concurrent lookups share one load; answers are kept ttlMs; errors and refused answers are not", async (t) => {
  let clock = 0;
  const cache = createReadCache(5000, () => clock);
  let loads = 0;
  const pending = deferred<string>();
  const load = () => ((loads += 1), pending.promise);
  const burst = [cache.read("a", load), cache.read("a", load), cache.read("a", load)];
  pending.resolve("A");
  t.same(await Promise.all(burst), ["A", "A", "A"]);
  t.equal(loads, 1);
  clock = 4999;
  t.equal(await cache.read("a", async () => "stale?"), "A", "kept within ttlMs");
  clock = 5000;
  t.equal(await cache.read("a", async () => "fresh"), "fresh", "read again after ttlMs");

  await t.rejects(cache.read("b", async () => Promise.reject(new Error("503"))), /503/);
  t.equal(await cache.read("b", async () => "ok"), "ok", "an error is not kept");
  t.equal(await cache.read("c", async () => "unreadable", () => false), "unreadable");
  t.equal(await cache.read("c", async () => "found"), "found", "an answer `keep` refused is not kept");
});

t.test("forget drops kept answers and lookups still running (a write happened meanwhile)", async (t) => {
  const cache = createReadCache(60_000);
  t.equal(await cache.read("fhir:x", async () => "before"), "before");
  cache.forget("fhir:");
  t.equal(await cache.read("fhir:x", async () => "after"), "after");

  const slow = deferred<string>();
  const running = cache.read("fhir:y", () => slow.promise);
  cache.forget("fhir:y");
  slow.resolve("read before the write");
  t.equal(await running, "read before the write", "its own caller still gets it");
  t.equal(await cache.read("fhir:y", async () => "read after the write"), "read after the write", "but it is not kept");
});

t.test("ttl 0: nothing is kept, concurrent lookups are still shared", async (t) => {
  const cache = createReadCache(0);
  let loads = 0;
  const load = async () => ((loads += 1), "v");
  await Promise.all([cache.read("k", load), cache.read("k", load)]);
  t.equal(loads, 1);
  await cache.read("k", load);
  t.equal(loads, 2);
});
