import t from "tap";
import { KeyClient } from "@azure/keyvault-keys";
import { KEYS, waitForJob } from "../helpers/app.js";
import { startStack } from "../helpers/stack.js";
import { sandboxCredential, sandboxHttpClient, sandboxRequest } from "../helpers/sandbox.js";
import { fhirPuts, lastSeq, sandboxRequests } from "../helpers/sandbox-admin.js";
import { fhirId, KEY_V1, KEY_V2, SUB, uamiId } from "../helpers/requests.js";

type Stack = Awaited<ReturnType<typeof startStack>>;
const encryptionPath = (name: string) => `/v1/subscriptions/${SUB}/resourceGroups/rg-sandbox/workspaces/wssandbox/fhirservices/${name}/encryption`;

async function runJob(stack: Stack, body: object) {
  const accepted = await stack.app.inject({ method: "POST", url: "/v1/change-requests", payload: body, headers: { "x-api-key": KEYS.operator } });
  if (accepted.statusCode !== 202) throw new Error(`not accepted: ${accepted.body}`);
  return (await waitForJob(stack.app, accepted.json().id, 30_000)).monitor;
}
const get = (stack: Stack, url: string) => stack.app.inject({ method: "GET", url, headers: { "x-api-key": KEYS.reader } });
const scenario = (stack: Stack, body: object) => sandboxRequest(stack.sandbox, { method: "POST", path: "/_sandbox/scenarios", body });

t.test("CreateService makes a new FHIR service encrypted with the key and uami-sandbox", async (t) => {
  const stack = await startStack(t, { lroMs: 300 });
  const monitor = await runJob(stack, {
    operation: "CreateService",
    fhirServiceId: fhirId("fhir-new"),
    location: "westus3",
    keyEncryptionKeyUrl: KEY_V2,
    identity: { type: "UserAssigned", userAssignedIdentityId: uamiId("uami-sandbox") },
    tags: { team: "health" },
  });
  t.equal(monitor.status, "Succeeded", JSON.stringify(monitor.error ?? {}));
  t.same(monitor.steps.map((step: { name: string }) => step.name), ["Preflight", "BuildResource", "StartArmUpdate", "FollowOperation", "Verify"]);
  const state = (await get(stack, encryptionPath("fhir-new"))).json();
  t.match(state, {
    encryptionType: "CustomerManagedKey",
    keyEncryptionKeyUrl: KEY_V2,
    keyVaultName: "kvsandbox",
    keyName: "cmk-rsa-2048",
    keyVersion: "00000000000000000000000000000002",
    identityType: "UserAssigned",
    provisioningState: "Succeeded",
    location: "westus3",
  });
  t.ok(state.userAssignedIdentityIds[0].toLowerCase().endsWith("/uami-sandbox"));

  const again = await runJob(stack, {
    operation: "CreateService",
    fhirServiceId: fhirId("fhir-new"),
    location: "westus3",
    keyEncryptionKeyUrl: KEY_V2,
    identity: { type: "UserAssigned", userAssignedIdentityId: uamiId("uami-sandbox") },
  });
  t.match(again.error, { code: "PreflightFailed", details: [{ code: "FhirServiceExists" }] }, "never overwrites an existing service");

  const noWorkspace = await runJob(stack, {
    operation: "CreateService",
    fhirServiceId: fhirId("fhir-x").replace("wssandbox", "wsmissing"),
    location: "westus3",
    keyEncryptionKeyUrl: KEY_V2,
    identity: { type: "UserAssigned", userAssignedIdentityId: uamiId("uami-sandbox") },
  });
  t.match(noWorkspace.error.details, [{ code: "WorkspaceExists", message: /az healthcareapis workspace create/ }], "the error says how to create the workspace");
});

t.test("RotateKey on fhir-uami: one more version of cmk-rsa-2048, the service on it, the old one still enabled", async (t) => {
  const stack = await startStack(t, { lroMs: 300 });
  const keys = new KeyClient("https://kvsandbox.vault.azure.net", sandboxCredential(stack.sandbox), { httpClient: sandboxHttpClient(stack.sandbox) });
  const versions = async () => {
    const found: string[] = [];
    for await (const version of keys.listPropertiesOfKeyVersions("cmk-rsa-2048")) found.push(version.version!);
    return found;
  };
  const before = await versions();
  const monitor = await runJob(stack, { operation: "RotateKey", fhirServiceId: fhirId("fhir-uami") });
  t.equal(monitor.status, "Succeeded", JSON.stringify(monitor.error ?? {}));
  const after = await versions();
  t.equal(after.length, before.length + 1, "one more version in Key Vault");
  const newVersion = after.find((version) => !before.includes(version))!;
  t.match(monitor.result, { previousKeyEncryptionKeyUrl: KEY_V1, previousVersionEnabled: true, keyEncryptionKeyUrl: `https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048/${newVersion}` });
  t.match(monitor.steps.find((step: { name: string }) => step.name === "CheckPreviousVersion").message, /stays enabled.*still needs it/);
  t.equal((await get(stack, encryptionPath("fhir-uami"))).json().keyVersion, newVersion, "the service is on the new version");

  const latest = await runJob(stack, { operation: "RotateKey", fhirServiceId: fhirId("fhir-uami"), useLatestExistingVersion: true });
  t.match(latest.error, { code: "NoNewerKeyVersion" }, "nothing newer than what it uses");
  const microsoftManaged = await runJob(stack, { operation: "RotateKey", fhirServiceId: fhirId("fhir-sys") });
  t.match(microsoftManaged.error, { code: "NotCustomerManaged" });
});

t.test("a disabled key: health says KeyAccessLost; enabled again, RecoverKeyAccess brings it back to Healthy", async (t) => {
  const stack = await startStack(t, { lroMs: 300 });
  const healthy = (await get(stack, `${encryptionPath("fhir-uami")}/health`)).json();
  t.equal(healthy.status, "Healthy", JSON.stringify(healthy.checks.filter((c: { status: string }) => c.status !== "Passed")));

  t.equal((await scenario(stack, { action: "disableKey", keyUrl: KEY_V1 })).status, 200);
  const lost = (await get(stack, `${encryptionPath("fhir-uami")}/health`)).json();
  t.equal(lost.status, "KeyAccessLost");
  const failedIds = lost.checks.filter((check: { status: string }) => check.status === "Failed").map((check: { id: string }) => check.id);
  t.same(failedIds.sort(), ["FhirDataPlane", "KeyEnabled"]);
  t.match(lost.checks.find((check: { id: string }) => check.id === "KeyEnabled").message, /cmk-rsa-2048 version 00000000000000000000000000000001 in kvsandbox is disabled/);
  t.match(lost.checks.find((check: { id: string }) => check.id === "FhirDataPlane").message, /answers 500/);
  t.match(lost.recommendedAction, { operation: "RecoverKeyAccess", request: { operation: "RecoverKeyAccess", fhirServiceId: fhirId("fhir-uami") }, description: /Enable key cmk-rsa-2048/ });

  const refused = await runJob(stack, { operation: "RecoverKeyAccess", fhirServiceId: fhirId("fhir-uami") });
  t.match(refused.error, { code: "PreflightFailed", details: [{ code: "KeyEnabled" }] }, "recovery refuses while the key is still disabled");

  await scenario(stack, { action: "enableKey", keyUrl: KEY_V1 });
  const since = await lastSeq(stack.sandbox);
  const recovered = await runJob(stack, lost.recommendedAction.request);
  t.equal(recovered.status, "Succeeded", JSON.stringify(recovered.error ?? {}));
  t.same(recovered.result.changes, [`Re-applied key ${KEY_V1} and identity UserAssigned with a full ARM PUT.`], "every change is listed; nothing in Key Vault or RBAC");
  t.equal(fhirPuts(await sandboxRequests(stack.sandbox, since), "fhir-uami").length, 1);
  t.equal((await get(stack, `${encryptionPath("fhir-uami")}/health`)).json().status, "Healthy");
});

t.test("a soft-deleted key is recovered only when the request says so", async (t) => {
  const stack = await startStack(t, { lroMs: 300 });
  await scenario(stack, { action: "deleteKey", keyUrl: KEY_V1 });
  const health = (await get(stack, `${encryptionPath("fhir-uami")}/health`)).json();
  t.equal(health.status, "KeyAccessLost");
  t.match(health.recommendedAction.request, { operation: "RecoverKeyAccess", recoverDeletedKey: true });

  const refused = await runJob(stack, { operation: "RecoverKeyAccess", fhirServiceId: fhirId("fhir-uami") });
  t.match(refused.error, { code: "KeyDeleted", message: /recoverDeletedKey: true/ });
  const recovered = await runJob(stack, health.recommendedAction.request);
  t.equal(recovered.status, "Succeeded", JSON.stringify(recovered.error ?? {}));
  t.match(recovered.result.changes, [/Recovered soft-deleted key cmk-rsa-2048 in vault kvsandbox/, /Re-applied key/]);
});

t.test("encryption state of a Microsoft-managed service, and 404 for an unknown one", async (t) => {
  const stack = await startStack(t, { lroMs: 300 });
  t.match((await get(stack, encryptionPath("fhir-sys"))).json(), { encryptionType: "MicrosoftManagedKey", identityType: "SystemAssigned" });
  const missing = await get(stack, encryptionPath("fhir-nope"));
  t.equal(missing.statusCode, 404);
  t.equal(missing.json().code, "NotFound");
  t.equal((await get(stack, `${encryptionPath("fhir-sys")}/health`)).json().status, "Healthy");
});
