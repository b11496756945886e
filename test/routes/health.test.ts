import t from "tap";
import { buildTestApp, testConfig } from "../helpers/app.js";

t.test("liveness and readiness", async (t) => {
  const app = await buildTestApp(t, testConfig(t));
  const live = await app.inject({ method: "GET", url: "/healthz" });
  t.equal(live.statusCode, 200);
  const ready = await app.inject({ method: "GET", url: "/readyz" });
  t.equal(ready.statusCode, 200);
  t.same(ready.json().checks, { redis: "ok" });
});

t.test("readiness is 503 when Redis does not answer, and submissions 503 QueueUnavailable", async (t) => {
  const app = await buildTestApp(t, testConfig(t, { REDIS_URL: "redis://127.0.0.1:1" }));
  const started = Date.now();
  const ready = await app.inject({ method: "GET", url: "/readyz" });
  t.equal(ready.statusCode, 503);
  t.same(ready.json().checks, { redis: "unreachable" });
  const submit = await app.inject({
    method: "POST",
    url: "/v1/change-requests",
    headers: { "x-api-key": "test-operator-key" },
    payload: {
      operation: "SetKey",
      fhirServiceId: "/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg-sandbox/providers/Microsoft.HealthcareApis/workspaces/wssandbox/fhirservices/fhir-sys",
      keyEncryptionKeyUrl: "https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048/00000000000000000000000000000002",
      identity: { type: "SystemAssigned" },
    },
  });
  t.equal(submit.statusCode, 503);
  t.match(submit.json(), { code: "QueueUnavailable" });
  t.ok(submit.headers["retry-after"], "Retry-After on 503");
  t.ok(Date.now() - started < 8000, "answers within seconds");
});

t.test("azure mode: readiness also needs a token for ARM", async (t) => {
  // buildTestApp's Azure adapters reach no token endpoint.
  const app = await buildTestApp(t, testConfig(t, { CMK_MODE: "azure" }));
  const ready = await app.inject({ method: "GET", url: "/readyz" });
  t.equal(ready.statusCode, 503);
  // The credential is named, and why it gave no token (here the SDK is still retrying the dead address).
  t.same(ready.json().checks, { redis: "ok", azureToken: "unavailable", azureCredential: "ClientSecretCredential", azureTokenError: "no token within 3000 ms" });
});
