import t from "tap";
import { guardAzureWrites } from "../../src/worker/write-guard.js";
import { KEYS, waitForJob } from "../helpers/app.js";
import { fhirPuts, lastSeq, sandboxRequests, sandboxState } from "../helpers/sandbox-admin.js";
import { sandboxCredential, sandboxRequest } from "../helpers/sandbox.js";
import { skipArmOperation, startStack } from "../helpers/stack.js";
import { fhirId, setKey, uamiId } from "../helpers/requests.js";

/**
 * A key in a Managed HSM (issue 14, item 6): the vault checks read the HSM through ARM
 * (Microsoft.KeyVault/managedHSMs), and IdentityKeyAccess reads the HSM's local RBAC on its data plane
 * instead of ARM's role assignments.
 */

const HSM_KEY = "https://hsmsandbox.managedhsm.azure.net/keys/cmk-hsm-3072/00000000000000000000000000000001";
type Check = { id: string; status: string; message: string; remediation?: string };

t.test("SetKey with the HSM key: every check passes from the HSM's facts, the job succeeds", async (t) => {
  const { app, sandbox } = await startStack(t, { lroMs: 1000 });
  const since = await lastSeq(sandbox);
  const validation = await app.inject({ method: "POST", url: "/v1/validations", payload: setKey("fhir-sys", HSM_KEY), headers: { "x-api-key": KEYS.reader } });
  t.equal(validation.statusCode, 200);
  const report = validation.json() as { valid: boolean; checks: Check[] };
  const checks = Object.fromEntries(report.checks.map((check) => [check.id, check]));
  t.equal(report.valid, true, JSON.stringify(report.checks.filter((check) => check.status !== "Passed")));
  t.match(checks.KeyHostAllowed, { status: "Passed", message: /Managed HSM host/ });
  t.match(checks.KeyType, { status: "Passed", message: /RSA-HSM/ });
  t.match(checks.KeySize, { status: "Passed", message: /3072/ });
  t.match(checks.VaultSoftDelete, { status: "Passed", message: /always is on a managed HSM/ });
  t.match(checks.VaultPurgeProtection, { status: "Passed" });
  t.match(checks.VaultRegion, { status: "Passed", message: /westus3/ });
  t.match(checks.VaultFirewall, { status: "Passed" });
  t.match(checks.IdentityKeyAccess, { status: "Passed", message: /Managed HSM Crypto Service Encryption User at \/keys\/cmk-hsm-3072/ });
  const reads = (await sandboxRequests(sandbox, since)).filter((entry) => entry.status !== 401).map((entry) => `${entry.method} ${entry.host}${entry.path}`);
  t.ok(reads.includes("GET management.azure.com/subscriptions/22222222-2222-2222-2222-222222222222/providers/Microsoft.KeyVault/managedHSMs"), "the HSM through ARM");
  t.ok(reads.includes("GET hsmsandbox.managedhsm.azure.net/providers/Microsoft.Authorization/roleAssignments"), "its local role assignments on its data plane");
  t.notOk(reads.some((read) => read.includes("/providers/Microsoft.Authorization/roleAssignments") && read.includes("management.azure.com")), "not ARM's role assignments");

  const accepted = await app.inject({ method: "POST", url: "/v1/change-requests", payload: setKey("fhir-sys", HSM_KEY), headers: { "x-api-key": KEYS.operator } });
  t.equal(accepted.statusCode, 202, accepted.body);
  await skipArmOperation(app, sandbox, accepted.json().id, 1);
  const { monitor } = await waitForJob(app, accepted.json().id);
  t.match(monitor, { status: "Succeeded", result: { keyEncryptionKeyUrl: HSM_KEY, identityType: "SystemAssigned", provisioningState: "Succeeded" } }, JSON.stringify(monitor.error ?? {}));
  t.equal(fhirPuts(await sandboxRequests(sandbox, since), "fhir-sys").length, 1, "one PUT");
  const { fhirServices } = await sandboxState<{ fhirServices: { id: string; properties: { encryption?: { customerManagedKeyEncryption?: { keyEncryptionKeyUrl?: string } } } }[] }>(sandbox);
  t.equal(fhirServices.find((service) => service.id === fhirId("fhir-sys"))?.properties.encryption?.customerManagedKeyEncryption?.keyEncryptionKeyUrl, HSM_KEY, "the emulated FHIR service uses the HSM key");
  const health = await app.inject({ method: "GET", url: "/v1/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg-sandbox/workspaces/wssandbox/fhirservices/fhir-sys/encryption/health", headers: { "x-api-key": KEYS.reader } });
  t.match(health.json(), { status: "Healthy" }, "and the health diagnosis reads the HSM's facts too");
});

t.test("an identity without the HSM's local role: IdentityKeyAccess fails with the az command that assigns it", async (t) => {
  const { app, sandbox } = await startStack(t, { worker: false });
  const validate = async (body: object) => (await app.inject({ method: "POST", url: "/v1/validations", payload: body, headers: { "x-api-key": KEYS.reader } })).json() as { valid: boolean; checks: Check[] };
  const norole = await validate(setKey("fhir-norole", HSM_KEY));
  t.equal(norole.valid, false);
  const access = norole.checks.find((check) => check.id === "IdentityKeyAccess");
  t.match(access, {
    status: "Failed",
    message: /principal a0000000-0000-4000-8000-000000000002\) holds no local role on managed HSM hsmsandbox/,
    remediation:
      'Assign Managed HSM Crypto Service Encryption User in the HSM\'s local RBAC: az keyvault role assignment create --hsm-name hsmsandbox --role "Managed HSM Crypto Service Encryption User" --assignee-object-id a0000000-0000-4000-8000-000000000002 --assignee-principal-type ServicePrincipal --scope /keys/cmk-hsm-3072.',
  });
  t.same(norole.checks.filter((check) => check.status === "Failed").map((check) => check.id), ["IdentityKeyAccess"], "it fails for that reason only");
  t.equal((await validate(setKey("fhir-uami", HSM_KEY, { type: "UserAssigned", userAssignedIdentityId: uamiId("uami-sandbox") }))).valid, true, "uami-sandbox holds the role");
  const uamiNorole = await validate(setKey("fhir-uami", HSM_KEY, { type: "UserAssigned", userAssignedIdentityId: uamiId("uami-norole") }));
  t.match(uamiNorole.checks.find((check) => check.id === "IdentityKeyAccess"), { status: "Failed", remediation: /--hsm-name hsmsandbox/ });

  // Doing what the remediation says (through the HSM's role assignment API) makes the check pass.
  const token = (await sandboxCredential(sandbox).getToken("https://managedhsm.azure.net/.default")).token;
  const assigned = await sandboxRequest(sandbox, {
    method: "PUT",
    path: "/keys/cmk-hsm-3072/providers/Microsoft.Authorization/roleAssignments/f0000000-0000-4000-8000-000000000001?api-version=7.5",
    host: "hsmsandbox.managedhsm.azure.net",
    headers: { authorization: `Bearer ${token}` },
    body: { properties: { roleDefinitionId: "Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/33413926-3206-4cdd-b39a-83574fe37a17", principalId: "a0000000-0000-4000-8000-000000000002" } },
  });
  t.equal(assigned.status, 201, assigned.text);
  t.equal((await validate(setKey("fhir-norole", HSM_KEY))).valid, true, "after the assignment the check passes (local RBAC has no propagation window to wait out)");

});

t.test("the HSM's reads are reads to the cancel guard: a job canceled in pre-flight stays cancellable", async (t) => {
  const calls: string[] = [];
  const adapters = { managedHsms: { managedHsmFacts: async () => calls.push("facts"), localRoleAssignments: async () => calls.push("roles") } };
  const guarded = guardAzureWrites(adapters as never, async () => {
    calls.push("write claimed");
  }) as unknown as typeof adapters;
  await guarded.managedHsms.managedHsmFacts();
  await guarded.managedHsms.localRoleAssignments();
  t.same(calls, ["facts", "roles"], "no write was claimed");
});
