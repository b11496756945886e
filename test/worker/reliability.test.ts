import t from "tap";
import { KEYS, waitForJob } from "../helpers/app.js";
import { startStack } from "../helpers/stack.js";
import { fhirPuts, lastSeq, sandboxRequests, setFaults } from "../helpers/sandbox-admin.js";
import { KEY_V1, setKey, uamiId } from "../helpers/requests.js";

t.test("transient and permanent Azure failures", async (t) => {
  const { app, sandbox } = await startStack(t, { lroMs: 300 });
  const submit = async (body: object) => {
    const response = await app.inject({ method: "POST", url: "/v1/change-requests", payload: body, headers: { "x-api-key": KEYS.operator } });
    t.equal(response.statusCode, 202, response.body);
    return (await waitForJob(app, response.json().id, 60_000)).monitor;
  };

  t.test("a 429 with Retry-After on the PUT is waited out and the job succeeds with one write", async (t) => {
    const since = await lastSeq(sandbox);
    await setFaults(sandbox, { rules: [{ service: "arm", method: "PUT", pathContains: "fhirservices/fhir-sys", status: 429, probability: 1, times: 1, retryAfterSeconds: 1 }] });
    const monitor = await submit(setKey("fhir-sys"));
    t.equal(monitor.status, "Succeeded", JSON.stringify(monitor.error ?? {}));
    const puts = fhirPuts(await sandboxRequests(sandbox, since), "fhir-sys");
    t.same(puts.map((put) => put.status), [429, 200], "the throttled PUT, then the one that was applied");
  });

  t.test("ARM 503s beyond the SDK's own retries make the job retry, and the monitor says why", async (t) => {
    await setFaults(sandbox, { rules: [{ service: "arm", method: "GET", pathContains: "fhirservices/fhir-norole", status: 503, probability: 1, times: 8, retryAfterSeconds: 0 }] });
    const monitor = await submit(setKey("fhir-norole", KEY_V1));
    t.ok(monitor.attempts >= 2, `attempts ${monitor.attempts}`);
    t.ok(monitor.retries?.length >= 1, "each retry's reason is recorded");
    t.match(monitor.retries[0], { attempt: 1, code: "AzureUnavailable", step: String, message: String });
  });

  t.test("a permanent 403 on the write fails at once with its code", async (t) => {
    await setFaults(sandbox, { rules: [{ service: "arm", method: "PUT", pathContains: "fhirservices/fhir-sys", status: 403, probability: 1, errorCode: "AuthorizationFailed" }] });
    const monitor = await submit(setKey("fhir-sys", KEY_V1));
    await setFaults(sandbox, { rules: [] });
    t.equal(monitor.status, "Failed");
    t.match(monitor.error, { code: "AzureAuthorizationFailed", details: [{ code: "AuthorizationFailed" }] });
    t.equal(monitor.attempts, 1, "not retried");
  });

  t.test("a service that already has the key and identity gets no write", async (t) => {
    const since = await lastSeq(sandbox);
    const monitor = await submit(setKey("fhir-uami", KEY_V1, { type: "UserAssigned", userAssignedIdentityId: uamiId("uami-sandbox") }));
    t.equal(monitor.status, "Succeeded");
    t.equal(monitor.result.armWrites, 0);
    t.equal(fhirPuts(await sandboxRequests(sandbox, since), "fhir-uami").length, 0);
  });
});
