import t from "tap";
import { buildTestApp, KEYS, testConfig } from "../helpers/app.js";
import { setKey } from "../helpers/requests.js";

t.test("GET /metrics: Prometheus text with requests per route and jobs per state", async (t) => {
  const app = await buildTestApp(t, testConfig(t));
  await app.inject({ method: "POST", url: "/v1/change-requests", payload: setKey("fhir-sys"), headers: { "x-api-key": KEYS.operator } });
  await app.inject({ method: "GET", url: "/v1/jobs/00000000-0000-4000-8000-000000000000", headers: { "x-api-key": KEYS.reader } });
  const response = await app.inject({ method: "GET", url: "/metrics" });
  t.equal(response.statusCode, 200);
  t.match(response.headers["content-type"], /^text\/plain/);
  t.match(response.body, /cmk_http_requests_total\{method="POST",route="\/v1\/change-requests",status="202"\} 1/);
  t.match(response.body, /route="\/v1\/jobs\/:jobId",status="404"/, "routes, not URLs, label the series");
  t.match(response.body, /cmk_jobs\{state="waiting"\} 1/);
  t.match(response.body, /cmk_process_cpu_user_seconds_total/);
});

t.test("a scrape still answers when Redis does not", async (t) => {
  const app = await buildTestApp(t, testConfig(t, { REDIS_URL: "redis://127.0.0.1:1" }));
  const response = await app.inject({ method: "GET", url: "/metrics" });
  t.equal(response.statusCode, 200);
  t.notMatch(response.body, /cmk_jobs\{/);
});
