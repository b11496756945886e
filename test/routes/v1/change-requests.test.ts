import t from "tap";
import { buildTestApp, KEYS, testConfig } from "../../helpers/app.js";

const FHIR_SYS = "/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg-sandbox/providers/Microsoft.HealthcareApis/workspaces/wssandbox/fhirservices/fhir-sys";
const KEY = "https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048/00000000000000000000000000000002";
const valid = { operation: "SetKey", fhirServiceId: FHIR_SYS, keyEncryptionKeyUrl: KEY, identity: { type: "SystemAssigned" } };

t.test("change request validation and authorization (no worker: jobs stay NotStarted)", async (t) => {
  const app = await buildTestApp(t, testConfig(t));
  const post = (body: unknown, key: string | null = KEYS.operator, headers: Record<string, string> = {}) =>
    app.inject({ method: "POST", url: "/v1/change-requests", payload: body as object, headers: { ...(key ? { "x-api-key": key } : {}), ...headers } });

  t.test("no credential: 401 problem+json", async (t) => {
    const response = await post(valid, null);
    t.equal(response.statusCode, 401);
    t.match(response.headers["content-type"], /^application\/problem\+json/);
    t.match(response.json(), { code: "Unauthorized", status: 401, title: String, detail: String, type: String, instance: "/v1/change-requests" });
    t.equal((await post(valid, "wrong-key")).statusCode, 401, "an unknown key is refused too");
  });

  t.test("a reader key may not submit: 403", async (t) => {
    const response = await post(valid, KEYS.reader);
    t.equal(response.statusCode, 403);
    t.match(response.json(), { code: "Forbidden", requiredRole: "operator" });
  });

  t.test("malformed bodies get 400 with errors naming each field", async (t) => {
    const response = await post({ operation: "SetKey", fhirServiceId: "/subscriptions/nope", identity: { type: "Robot" }, colour: "blue" });
    t.equal(response.statusCode, 400);
    const problem = response.json();
    t.equal(problem.code, "ValidationFailed");
    const paths = problem.errors.map((error: { path: string }) => error.path);
    t.ok(paths.includes("/body/fhirServiceId"), "bad fhirServiceId named");
    t.ok(paths.includes("/body/keyEncryptionKeyUrl"), "missing keyEncryptionKeyUrl named");
    t.ok(paths.includes("/body/colour"), "unknown property named");
    t.ok(paths.some((path: string) => path.startsWith("/body/identity")), "bad identity named");
    for (const error of problem.errors) t.ok(error.message.length > 5, `message for ${error.path}: ${error.message}`);
  });

  t.test("an unknown operation, a missing one and broken JSON are 400 too", async (t) => {
    const unknown = await post({ ...valid, operation: "DeleteEverything" });
    t.equal(unknown.statusCode, 400);
    t.match(unknown.json().errors, [{ path: "/body/operation" }]);
    const missing = await post({ fhirServiceId: FHIR_SYS });
    t.equal(missing.statusCode, 400);
    t.match(missing.json().errors, [{ path: "/body/operation", message: "is required" }]);
    const broken = await app.inject({ method: "POST", url: "/v1/change-requests", payload: "{not json", headers: { "x-api-key": KEYS.operator, "content-type": "application/json" } });
    t.equal(broken.statusCode, 400);
    t.equal(broken.json().code, "ValidationFailed");
    const userAssignedWithoutId = await post({ ...valid, identity: { type: "UserAssigned" } });
    t.match(userAssignedWithoutId.json().errors, [{ path: "/body/identity/userAssignedIdentityId", message: "is required" }]);
  });

  t.test("what needs no Azure is refused at once with the failing check ids", async (t) => {
    const cases = [
      [`https://kvsandbox.vault.azure.net/keys/cmk-${"a".repeat(82)}/00000000000000000000000000000001`, "KeyNameLength"],
      ["https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048", "KeyUrlVersioned"],
      ["https://kv.example.com/keys/a/1", "KeyHostAllowed"],
    ] as const;
    for (const [keyEncryptionKeyUrl, check] of cases) {
      const response = await post({ ...valid, keyEncryptionKeyUrl });
      t.equal(response.statusCode, 400, check);
      const problem = response.json();
      t.ok(problem.failedChecks.includes(check), `${check} in ${problem.failedChecks}`);
      t.equal(problem.errors[0].path, "/body/keyEncryptionKeyUrl");
    }
  });

  t.test("a valid request is accepted with a status monitor and Operation-Location", async (t) => {
    const response = await post({ ...valid, ticket: { system: "servicenow", id: "CHG0012345" } });
    t.equal(response.statusCode, 202);
    const monitor = response.json();
    t.equal(response.headers["operation-location"], `/v1/jobs/${monitor.id}`);
    t.match(monitor, { operation: "SetKey", status: "NotStarted", percentComplete: 0, fhirServiceId: FHIR_SYS, createdBy: "test-operator", attempts: 0, ticket: { id: "CHG0012345" } });

    const status = await app.inject({ method: "GET", url: `/v1/jobs/${monitor.id}`, headers: { "x-api-key": KEYS.reader } });
    t.equal(status.statusCode, 200);
    t.equal(status.headers["retry-after"], "1", "Retry-After while not terminal");
    t.equal(status.json().id, monitor.id);

    const second = await post(valid);
    t.equal(second.statusCode, 409, "the service has an unfinished job");
    t.match(second.json(), { code: "ChangeInProgress", activeJobId: monitor.id });
    const otherCase = await post({ ...valid, fhirServiceId: FHIR_SYS.toLowerCase().replace("22222222-2222-2222-2222-222222222222", "22222222-2222-2222-2222-222222222222") });
    t.equal(otherCase.statusCode, 409, "ARM ids compare case-insensitively");
  });

  t.test("Idempotency-Key: a retry gets the first answer, another body gets 422", async (t) => {
    const body = { ...valid, fhirServiceId: FHIR_SYS.replace("fhir-sys", "fhir-norole") };
    const first = await post(body, KEYS.operator, { "idempotency-key": "ticket-CHG42-attempt" });
    t.equal(first.statusCode, 202);
    const retry = await post({ identity: body.identity, keyEncryptionKeyUrl: body.keyEncryptionKeyUrl, fhirServiceId: body.fhirServiceId, operation: "SetKey" }, KEYS.operator, {
      "idempotency-key": '"ticket-CHG42-attempt"',
    });
    t.equal(retry.statusCode, 202, "same key and body (other key order, quoted key): the first answer");
    t.equal(retry.json().id, first.json().id, "no second job");
    t.equal(retry.headers["operation-location"], first.headers["operation-location"]);
    t.equal(retry.headers["idempotent-replayed"], "true");
    const other = await post({ ...body, dryRun: true }, KEYS.operator, { "idempotency-key": "ticket-CHG42-attempt" });
    t.equal(other.statusCode, 422);
    t.equal(other.json().code, "IdempotencyKeyReused");
    const otherCaller = await post(body, KEYS.admin, { "idempotency-key": "ticket-CHG42-attempt" });
    t.equal(otherCaller.statusCode, 409, "keys are per caller: another caller's request is judged on its own (and the service is busy)");
    t.equal((await app.jobStore.changes.getJobCounts("waiting")).waiting, 2, "only the two accepted jobs exist");
  });

  t.test("unknown jobs are 404 NotFound; bad job ids 400", async (t) => {
    const missing = await app.inject({ method: "GET", url: "/v1/jobs/00000000-0000-0000-0000-000000000000", headers: { "x-api-key": KEYS.reader } });
    t.equal(missing.statusCode, 404);
    t.equal(missing.json().code, "NotFound");
    const bad = await app.inject({ method: "GET", url: "/v1/jobs/a:b", headers: { "x-api-key": KEYS.reader } });
    t.equal(bad.statusCode, 400);
    const anonymous = await app.inject({ method: "GET", url: "/v1/jobs/x" });
    t.equal(anonymous.statusCode, 401);
  });

  t.test("unknown routes are problem+json 404", async (t) => {
    const response = await app.inject({ method: "GET", url: "/nowhere" });
    t.equal(response.statusCode, 404);
    t.equal(response.json().code, "NotFound");
  });
});

t.test("validations when Azure does not answer: 503 AzureUnavailable, not a report that looks valid", async (t) => {
  // buildTestApp's Azure adapters point at an address where nothing listens.
  const app = await buildTestApp(t, testConfig(t));
  const response = await app.inject({ method: "POST", url: "/v1/validations", payload: valid, headers: { "x-api-key": KEYS.reader } });
  t.equal(response.statusCode, 503);
  t.match(response.json(), { code: "AzureUnavailable" });
  t.ok(response.headers["retry-after"]);
});
