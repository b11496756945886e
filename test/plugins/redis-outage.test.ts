import t from "tap";
import { buildTestApp, KEYS, testConfig } from "../helpers/app.js";
import { startOwnRedis } from "../helpers/redis-server.js";
import { setKey } from "../helpers/requests.js";

t.test("Redis stopped: 503 QueueUnavailable within 3 s; restarted: 202 again", async (t) => {
  const redis = await startOwnRedis(t);
  const app = await buildTestApp(t, testConfig(t, { REDIS_URL: redis.url }));
  const post = (service: string) => app.inject({ method: "POST", url: "/v1/change-requests", payload: setKey(service), headers: { "x-api-key": KEYS.operator } });

  t.equal((await post("fhir-sys")).statusCode, 202);
  await redis.stop();

  for (const service of ["fhir-uami", "fhir-norole"]) {
    const started = Date.now();
    const refused = await post(service);
    const elapsed = Date.now() - started;
    t.equal(refused.statusCode, 503);
    t.match(refused.json(), { code: "QueueUnavailable", status: 503 });
    t.match(refused.headers["content-type"], /application\/problem\+json/);
    t.ok(refused.headers["retry-after"]);
    t.ok(elapsed < 3000, `answered in ${elapsed} ms`);
  }
  const ready = await app.inject({ method: "GET", url: "/readyz" });
  t.equal(ready.statusCode, 503);

  await redis.start();
  const deadline = Date.now() + 10_000;
  let answer = await post("fhir-uami");
  while (answer.statusCode !== 202 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    answer = await post("fhir-uami");
  }
  t.equal(answer.statusCode, 202, "recovers by itself");
  t.equal((await app.inject({ method: "GET", url: "/readyz" })).statusCode, 200);
});
