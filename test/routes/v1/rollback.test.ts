import t from "tap";
import type { RunningSandbox } from "../../../src/sandbox/index.js";
import { waitForJob } from "../../helpers/app.js";
import { as, GOVERNANCE_API_KEYS, monitorOf, post } from "../../helpers/governance.js";
import { fhirId, KEY_V1, KEY_V2, setKey, uamiId } from "../../helpers/requests.js";
import { lastSeq, sandboxRequests, sandboxState } from "../../helpers/sandbox-admin.js";
import { sandboxRequest } from "../../helpers/sandbox.js";
import { startStack } from "../../helpers/stack.js";

/**
 * api-contract v1.1 "Change governance", rollback, through the HTTP API against the sandbox: a Succeeded
 * SetKey or RotateKey is undone by a new job (`rollbackOf`) that restores the key URL and identity the
 * worker recorded before its write, with its own pre-flight, approval and window.
 */

interface EmulatedService {
  id: string;
  identity?: { type?: string; userAssignedIdentities?: Record<string, unknown> };
  properties: { encryption?: { customerManagedKeyEncryption?: { keyEncryptionKeyUrl?: string } } };
}

async function emulated(sandbox: RunningSandbox, name: string) {
  const state = await sandboxState<{ fhirServices: EmulatedService[] }>(sandbox);
  const service = state.fhirServices.find((candidate) => candidate.id.toLowerCase().endsWith(`/fhirservices/${name}`))!;
  return {
    keyEncryptionKeyUrl: service.properties.encryption?.customerManagedKeyEncryption?.keyEncryptionKeyUrl,
    identityType: service.identity?.type,
    userAssignedIdentities: Object.keys(service.identity?.userAssignedIdentities ?? {}).map((id) => id.toLowerCase()),
  };
}

/** ARM writes (PUT, PATCH) about one FHIR service. */
const writesOn = async (sandbox: RunningSandbox, since: number, name: string) =>
  (await sandboxRequests(sandbox, since)).filter((request) => ["PUT", "PATCH"].includes(request.method) && request.path.toLowerCase().endsWith(`/fhirservices/${name}`));

t.test("a RotateKey rolled back, with its own approval: the key and identity it replaced are back, with one write", async (t) => {
  const { app, sandbox } = await startStack(t, { env: { CMK_APPROVALS: "required", CMK_API_KEYS: GOVERNANCE_API_KEYS } });
  const before = await emulated(sandbox, "fhir-uami");
  t.same(before, { keyEncryptionKeyUrl: KEY_V1, identityType: "UserAssigned", userAssignedIdentities: [uamiId("uami-sandbox").toLowerCase()] }, "the seed");

  const ticket = { system: "servicenow", id: "CHG-ROTATE-1" };
  const rotate = (await post(app, "/v1/change-requests", "operator", { operation: "RotateKey", fhirServiceId: fhirId("fhir-uami"), useLatestExistingVersion: true, ticket })).json().id as string;
  t.equal((await post(app, `/v1/jobs/${rotate}/approve`, "approver")).statusCode, 200);
  t.match((await waitForJob(app, rotate)).monitor, { status: "Succeeded", result: { keyEncryptionKeyUrl: KEY_V2, previousKeyEncryptionKeyUrl: KEY_V1 } });
  t.equal((await emulated(sandbox, "fhir-uami")).keyEncryptionKeyUrl, KEY_V2, "rotated");

  const since = await lastSeq(sandbox);
  const accepted = await post(app, `/v1/jobs/${rotate}/rollback`, "cab", { ticket: { system: "servicenow", id: "CHG-ROLLBACK-1" } });
  t.equal(accepted.statusCode, 202, accepted.body);
  const rollback = accepted.json().id as string;
  t.equal(accepted.headers["operation-location"], `/v1/jobs/${rollback}`);
  t.match(accepted.json(), { operation: "SetKey", rollbackOf: rotate, status: "NotStarted", currentStep: "AwaitingApproval", approval: { state: "Pending" }, createdBy: "test-cab" });
  t.match((await post(app, "/v1/change-requests", "operator", setKey("fhir-uami"))).json(), { code: "ChangeInProgress", activeJobId: rollback }, "the rollback holds the service");
  t.equal((await post(app, `/v1/jobs/${rollback}/approve`, "cab")).statusCode, 403, "its creator may not approve it either");
  t.equal((await post(app, `/v1/jobs/${rollback}/approve`, "approver", { comment: "back out CHG-ROTATE-1" })).statusCode, 200);

  const { monitor } = await waitForJob(app, rollback);
  t.match(monitor, { status: "Succeeded", rollbackOf: rotate, result: { keyEncryptionKeyUrl: KEY_V1, previousKeyEncryptionKeyUrl: KEY_V2, identityType: "UserAssigned", armWrites: 1 } });
  t.same(await emulated(sandbox, "fhir-uami"), before, "the emulator holds the key and identity from before the rotation");
  t.equal((await writesOn(sandbox, since, "fhir-uami")).length, 1, "exactly one ARM write");

  const entries = (await app.inject({ method: "GET", url: "/v1/audit?ticketId=CHG-ROLLBACK-1", headers: as("admin") })).json().value;
  t.match(entries.at(-1), { outcome: "Accepted", rollbackOf: rotate, jobId: rollback, operation: "SetKey", keyEncryptionKeyUrl: KEY_V1, principal: { name: "test-cab" } }, "the rollback in the audit trail");
  t.match(entries[0], { outcome: "Succeeded", rollbackOf: rotate, jobId: rollback });
});

t.test("a SetKey that changed the identity: the rollback restores both (identity, then key)", async (t) => {
  const { app, sandbox } = await startStack(t, { env: { CMK_API_KEYS: GOVERNANCE_API_KEYS } });
  const before = await emulated(sandbox, "fhir-uami");
  const other = "/subscriptions/33333333-3333-3333-3333-333333333333/resourceGroups/rg-other/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uami-other";
  const change = (await post(app, "/v1/change-requests", "operator", setKey("fhir-uami", KEY_V2, { type: "UserAssigned", userAssignedIdentityId: other }))).json().id as string;
  t.match((await waitForJob(app, change)).monitor, { status: "Succeeded", result: { keyEncryptionKeyUrl: KEY_V2, armWrites: 2 } });
  t.same((await emulated(sandbox, "fhir-uami")).userAssignedIdentities, [other.toLowerCase()]);

  const since = await lastSeq(sandbox);
  const rollback = (await post(app, `/v1/jobs/${change}/rollback`, "operator")).json().id as string;
  const { monitor } = await waitForJob(app, rollback);
  t.match(monitor, { status: "Succeeded", rollbackOf: change, result: { keyEncryptionKeyUrl: KEY_V1, armWrites: 2 } });
  t.same(await emulated(sandbox, "fhir-uami"), before, "key and identity as before the change");
  t.same((await writesOn(sandbox, since, "fhir-uami")).map((request) => request.method), ["PATCH", "PUT"], "the identity, then the key");
});

t.test("the rollback's own pre-flight: the old key version must still be enabled", async (t) => {
  const { app, sandbox } = await startStack(t, { env: { CMK_API_KEYS: GOVERNANCE_API_KEYS } });
  const change = (await post(app, "/v1/change-requests", "operator", setKey("fhir-uami", KEY_V2, { type: "UserAssigned", userAssignedIdentityId: uamiId("uami-sandbox") }))).json().id as string;
  t.equal((await waitForJob(app, change)).monitor.status, "Succeeded");
  await sandboxRequest(sandbox, { method: "POST", path: "/_sandbox/scenarios", body: { action: "disableKey", keyUrl: KEY_V1 } });
  const since = await lastSeq(sandbox);
  const rollback = (await post(app, `/v1/jobs/${change}/rollback`, "operator")).json().id as string;
  const { monitor } = await waitForJob(app, rollback);
  t.match(monitor, { status: "Failed", error: { code: "PreflightFailed", details: [{ code: "KeyEnabled" }] } });
  t.same(await writesOn(sandbox, since, "fhir-uami"), [], "nothing written");
  t.equal((await emulated(sandbox, "fhir-uami")).keyEncryptionKeyUrl, KEY_V2, "the service keeps the key it has");
});

t.test("409 NotRollbackable with the reason when there is nothing to restore", async (t) => {
  const { app } = await startStack(t, { env: { CMK_API_KEYS: GOVERNANCE_API_KEYS } });
  const finished = async (body: object) => {
    const jobId = (await post(app, "/v1/change-requests", "operator", body)).json().id as string;
    await waitForJob(app, jobId);
    return jobId;
  };
  const refused = async (jobId: string, reasonCode: string, reason: RegExp) => {
    const response = await post(app, `/v1/jobs/${jobId}/rollback`, "operator");
    t.equal(response.statusCode, 409, reasonCode);
    t.match(response.json(), { code: "NotRollbackable", jobId, reasonCode, reason, detail: reason });
  };

  // fhir-sys had a Microsoft-managed key: ARM defines no way back to one.
  await refused(await finished(setKey("fhir-sys")), "MicrosoftManagedKey", /Microsoft-managed key/);
  await refused(await finished(setKey("fhir-norole")), "NotSucceeded", /Failed/);
  await refused(await finished(setKey("fhir-uami", KEY_V2, { type: "UserAssigned", userAssignedIdentityId: uamiId("uami-sandbox") }, { dryRun: true })), "NoWrite", /dry run/);
  // fhir-uami already uses version 1 with uami-sandbox: the SetKey writes nothing.
  await refused(await finished(setKey("fhir-uami", KEY_V1, { type: "UserAssigned", userAssignedIdentityId: uamiId("uami-sandbox") })), "NoWrite", /made no write/);
  const running = (await post(app, "/v1/change-requests", "operator", setKey("fhir-uami", KEY_V2, { type: "UserAssigned", userAssignedIdentityId: uamiId("uami-sandbox") }))).json().id as string;
  const early = await post(app, `/v1/jobs/${running}/rollback`, "operator");
  t.equal(early.statusCode, 409);
  t.equal(early.json().reasonCode, "NotSucceeded", "not yet succeeded");
  await waitForJob(app, running);
  t.equal((await post(app, "/v1/jobs/00000000-0000-4000-8000-000000000000/rollback", "operator")).statusCode, 404);
  t.equal((await post(app, `/v1/jobs/${running}/rollback`, "reader")).statusCode, 403, "operator's");
  const badWindow = await post(app, `/v1/jobs/${running}/rollback`, "operator", { schedule: { notAfter: new Date(Date.now() - 60_000).toISOString() } });
  t.match(badWindow.json(), { code: "ValidationFailed", errors: [{ path: "/body/schedule/notAfter" }] }, "its own window is checked");
  t.equal((await monitorOf(app, running)).status, "Succeeded");
});
