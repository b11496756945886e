import t from "tap";
import { KEYS, waitForJob } from "../../helpers/app.js";
import { lastSeq, sandboxRequests } from "../../helpers/sandbox-admin.js";
import { startStack } from "../../helpers/stack.js";
import { KEY_V2 } from "../../helpers/requests.js";

const UNKNOWN = "44444444-4444-4444-4444-444444444444";
const unknownService = `/subscriptions/${UNKNOWN}/resourceGroups/rg-x/providers/Microsoft.HealthcareApis/workspaces/wsx/fhirservices/fhirx`;

t.test("a FHIR service in a subscription ARM does not know is 404, never 503", async (t) => {
  const { app, sandbox } = await startStack(t);
  for (const suffix of ["encryption", "encryption/health"]) {
    const response = await app.inject({ method: "GET", url: `/v1/subscriptions/${UNKNOWN}/resourceGroups/rg-x/workspaces/wsx/fhirservices/fhirx/${suffix}`, headers: { "x-api-key": KEYS.reader } });
    t.equal(response.statusCode, 404, suffix);
    t.match(response.json(), { code: "NotFound", detail: /FHIR service/ }, suffix);
  }

  const body = { operation: "SetKey", fhirServiceId: unknownService, keyEncryptionKeyUrl: KEY_V2, identity: { type: "SystemAssigned" } };
  const validation = await app.inject({ method: "POST", url: "/v1/validations", payload: body, headers: { "x-api-key": KEYS.reader } });
  t.equal(validation.statusCode, 200);
  t.match(validation.json(), { valid: false, checks: [{ id: "FhirServiceExists", status: "Failed" }] });
  for (const operation of ["RotateKey", "RecoverKeyAccess"]) {
    const refused = await app.inject({ method: "POST", url: "/v1/validations", payload: { operation, fhirServiceId: unknownService }, headers: { "x-api-key": KEYS.reader } });
    t.equal(refused.statusCode, 200, operation);
    t.match(refused.json(), { valid: false, checks: [{ id: "FhirServiceExists", status: "Failed" }] }, operation);
  }

  const since = await lastSeq(sandbox);
  const submitted = await app.inject({ method: "POST", url: "/v1/change-requests", payload: body, headers: { "x-api-key": KEYS.operator } });
  t.equal(submitted.statusCode, 202);
  const { monitor } = await waitForJob(app, submitted.json().id);
  t.match(monitor, { status: "Failed", error: { code: "FhirServiceNotFound", target: unknownService } }, "the job ends as for any missing service");
  const writes = (await sandboxRequests(sandbox, since)).filter((entry) => entry.method !== "GET" && entry.host === "management.azure.com");
  t.same(writes, [], "nothing was written");
});
