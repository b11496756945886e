import t from "tap";
import { buildTestApp, KEYS, testConfig } from "../helpers/app.js";
import { setKey } from "../helpers/requests.js";
import { startStack } from "../helpers/stack.js";

t.test("rate limits: per credential after authentication, per address before it", async (t) => {
  const app = await buildTestApp(t, testConfig(t, { CMK_RATE_LIMIT_PER_MINUTE: "5" }));
  const get = (headers: Record<string, string>, url = "/v1/jobs/00000000-0000-0000-0000-000000000000") => app.inject({ method: "GET", url, headers });

  for (let i = 0; i < 5; i++) t.equal((await get({ "x-api-key": KEYS.reader })).statusCode, 404, `reader request ${i + 1}`);
  const limited = await get({ "x-api-key": KEYS.reader });
  t.equal(limited.statusCode, 429);
  t.match(limited.headers["content-type"], /^application\/problem\+json/);
  t.match(limited.json(), { code: "TooManyRequests", status: 429 });
  const retryAfter = Number(limited.headers["retry-after"]);
  t.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);

  t.equal((await get({ "x-api-key": KEYS.operator })).statusCode, 404, "another credential from the same address has its own budget");

  // Wrong keys are counted per address: guessing is throttled, and comes before the 401.
  const statuses: number[] = [];
  for (let i = 0; i < 7; i++) statuses.push((await get({ "x-api-key": `guess-${i}` })).statusCode);
  t.same(statuses, [401, 401, 401, 401, 401, 429, 429]);

  for (let i = 0; i < 10; i++) t.equal((await get({}, "/healthz")).statusCode, 200, "probes are never limited");
});

t.test("routes that read Azure have their own, lower limit per credential", async (t) => {
  const { app } = await startStack(t, { worker: false, env: { CMK_AZURE_READ_RATE_LIMIT_PER_MINUTE: "60", CMK_READ_CACHE_MS: "5000" } });
  const validate = (key: string) => app.inject({ method: "POST", url: "/v1/validations", payload: setKey("fhir-sys"), headers: { "x-api-key": key } });
  for (let i = 0; i < 60; i++) {
    const response = await validate(KEYS.reader);
    if (response.statusCode !== 200) t.fail(`validation ${i + 1} answered ${response.statusCode}`);
  }
  const limited = await validate(KEYS.reader);
  t.equal(limited.statusCode, 429, "the 61st validation in a minute");
  t.match(limited.json(), { code: "TooManyRequests", detail: /read Azure/ });
  const retryAfter = Number(limited.headers["retry-after"]);
  t.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
  const encryption = "/v1/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg-sandbox/workspaces/wssandbox/fhirservices/fhir-sys/encryption";
  t.equal((await app.inject({ method: "GET", url: encryption, headers: { "x-api-key": KEYS.reader } })).statusCode, 429, "one budget for every route that reads Azure");
  t.equal((await app.inject({ method: "GET", url: "/v1/jobs", headers: { "x-api-key": KEYS.reader } })).statusCode, 200, "other routes still answer");
  t.equal((await validate(KEYS.operator)).statusCode, 200, "another credential has its own budget");
});
