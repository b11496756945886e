import t, { type Test } from "tap";
import { seed } from "../../src/sandbox/index.js";
import { KEYS, waitForJob } from "../helpers/app.js";
import { startStack } from "../helpers/stack.js";
import { sandboxRequest } from "../helpers/sandbox.js";
import { onlyRole, roleFile, scenario } from "../helpers/roles.js";
import { openStream } from "../helpers/event-stream.js";
import { fhirId, KEY_V2, setKey } from "../helpers/requests.js";

/**
 * The service identity holding only deploy/cmk-service-role.json (at both seed subscriptions), as an operator
 * would assign it instead of Contributor: every operation still works; without one of its actions, the
 * operation that needs it fails with AzureAuthorizationFailed naming the action, as ARM and Key Vault word it,
 * or says in its result or pre-flight which read it could not do.
 */

type Stack = Awaited<ReturnType<typeof startStack>>;
type Monitor = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const UAMI = `/subscriptions/${seed.SUBSCRIPTION_ID}/resourceGroups/rg-sandbox/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uami-sandbox`;
const KEY = "https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048";
const HSM_KEY = `https://${seed.MANAGED_HSM}.managedhsm.azure.net/keys/${seed.KEY_HSM_3072}/${seed.VERSION_1}`;
const FAST = { CMK_ROLE_PROPAGATION_WINDOW_MS: "0" };

async function run(stack: Stack, url: string, body: object): Promise<Monitor> {
  const accepted = await stack.app.inject({ method: "POST", url, payload: body, headers: { "x-api-key": KEYS.operator } });
  if (accepted.statusCode !== 202) throw new Error(accepted.body);
  return (await waitForJob(stack.app, accepted.json().id, 60_000)).monitor;
}
const change = (stack: Stack, body: object) => run(stack, "/v1/change-requests", body);
const scan = (stack: Stack) => run(stack, "/v1/compliance-scans", {});

interface Check {
  principalId: string;
  kind: "action" | "dataAction";
  permission: string;
  granted: boolean;
}

t.test("with only the custom role every operation succeeds, and together they need every action in it", async (t) => {
  const stack = await startStack(t, { lroMs: 200, env: FAST });
  await onlyRole(stack.sandbox);
  const state = (await sandboxRequest(stack.sandbox, { path: "/_sandbox/state" })).json as { roleAssignments: Array<{ principalId: string; roleName: string | null; scope: string }> };
  const mine = state.roleAssignments.filter((assignment) => assignment.principalId === seed.SERVICE_APP.objectId);
  t.same(mine.map((assignment) => assignment.roleName), ["CMK Service Operator", "CMK Service Operator"], "the custom role is all the service holds");

  const onHsm = await change(stack, setKey("fhir-sys", HSM_KEY));
  t.equal(onHsm.status, "Succeeded", JSON.stringify(onHsm.error ?? {}));
  const system = await change(stack, setKey("fhir-sys"));
  t.equal(system.status, "Succeeded", JSON.stringify(system.error ?? {}));
  const user = await change(stack, setKey("fhir-uami", KEY_V2, { type: "UserAssigned", userAssignedIdentityId: UAMI }));
  t.equal(user.status, "Succeeded", JSON.stringify(user.error ?? {}));
  t.match(user.result, { identityType: "UserAssigned" });
  const rotated = await change(stack, { operation: "RotateKey", fhirServiceId: fhirId("fhir-uami") });
  t.equal(rotated.status, "Succeeded", JSON.stringify(rotated.error ?? {}));
  const fleet = await run(stack, "/v1/key-rotations", { keyUrl: KEY, createNewVersion: true, subscriptions: [seed.SUBSCRIPTION_ID, seed.OTHER_SUBSCRIPTION_ID] });
  t.equal(fleet.status, "Succeeded", JSON.stringify(fleet.error ?? {}));
  // fhir-sys and fhir-uami (moved to the key above) and fhir-other in the second subscription.
  t.match(fleet.result, { services: { total: 3, succeeded: 3, failed: 0, skipped: 0 }, armWrites: 3 }, "a new version made, and every service on the key moved to it");
  t.notOk(fleet.result.notListed, "every subscription listed");
  const children = (await stack.app.inject({ method: "GET", url: `/v1/jobs?parentJobId=${fleet.id}`, headers: { "x-api-key": KEYS.reader } })).json();
  t.same(children.value.map((child: { status: string }) => child.status), ["Succeeded", "Succeeded", "Succeeded"], "each child RotateKey succeeded");
  t.same(
    [...new Set(children.value.map((child: { fhirServiceId: string }) => child.fhirServiceId.split("/")[2]))].sort(),
    [seed.SUBSCRIPTION_ID, seed.OTHER_SUBSCRIPTION_ID].sort(),
    "children in both subscriptions",
  );
  const scanned = await scan(stack);
  t.equal(scanned.status, "Succeeded", JSON.stringify(scanned.error ?? {}));
  t.ok(scanned.result.scannedServices >= 4, `the scan read every service of both subscriptions (${scanned.result.scannedServices})`);
  t.notOk(scanned.result.notListed, "every subscription listed");
  const created = await change(stack, {
    operation: "CreateService",
    fhirServiceId: fhirId("fhir-new"),
    location: "westus3",
    keyEncryptionKeyUrl: KEY_V2,
    identity: { type: "UserAssigned", userAssignedIdentityId: UAMI },
  });
  t.equal(created.status, "Succeeded", JSON.stringify(created.error ?? {}));
  await scenario(stack.sandbox, { action: "deleteKey", keyUrl: `${KEY}/${seed.VERSION_1}` });
  const recovered = await change(stack, { operation: "RecoverKeyAccess", fhirServiceId: fhirId("fhir-uami"), recoverDeletedKey: true });
  t.equal(recovered.status, "Succeeded", JSON.stringify(recovered.error ?? {}));
  t.match(recovered.result.changes, [/Recovered soft-deleted key cmk-rsa-2048/]);

  const checks = (await sandboxRequest(stack.sandbox, { path: "/_sandbox/authorization-checks" })).json as Check[];
  const service = checks.filter((check) => check.principalId === seed.SERVICE_APP.objectId);
  t.same(service.filter((check) => !check.granted), [], "no refusal on the way");
  const used = (kind: Check["kind"]) => [...new Set(service.filter((check) => check.kind === kind).map((check) => check.permission.toLowerCase()))].sort();
  const role = await roleFile();
  t.same(used("action"), role.Actions.map((action) => action.toLowerCase()).sort(), "the control-plane actions used are exactly the role's");
  t.same(used("dataAction"), role.DataActions.map((action) => action.toLowerCase()).sort(), "the data actions used are exactly the role's");
});

t.test("without fhirservices/write, SetKey fails with AzureAuthorizationFailed naming the action", async (t) => {
  const stack = await startStack(t, { lroMs: 200, env: FAST });
  await onlyRole(stack.sandbox);
  await onlyRole(stack.sandbox, { without: ["Microsoft.HealthcareApis/workspaces/fhirservices/write"] });
  const monitor = await change(stack, setKey("fhir-sys"));
  t.equal(monitor.status, "Failed");
  t.match(monitor.error, { code: "AzureAuthorizationFailed", message: /does not have authorization to perform action 'Microsoft\.HealthcareApis\/workspaces\/fhirservices\/write'/ });
});

t.test("without userAssignedIdentities/assign/action, a user-assigned SetKey fails with ARM's linked check", async (t) => {
  const stack = await startStack(t, { lroMs: 200, env: FAST });
  await onlyRole(stack.sandbox);
  await onlyRole(stack.sandbox, { without: ["Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"] });
  const monitor = await change(stack, setKey("fhir-uami", KEY_V2, { type: "UserAssigned", userAssignedIdentityId: UAMI }));
  t.equal(monitor.status, "Failed");
  t.match(monitor.error, { code: "AzureAuthorizationFailed", message: /LinkedAuthorizationFailed.*'Microsoft\.ManagedIdentity\/userAssignedIdentities\/assign\/action'/ });
});

t.test("without keys/rotate/action, RotateKey fails naming the data action", async (t) => {
  const stack = await startStack(t, { lroMs: 200, env: FAST });
  await onlyRole(stack.sandbox);
  await onlyRole(stack.sandbox, { without: ["Microsoft.KeyVault/vaults/keys/rotate/action"] });
  const monitor = await change(stack, { operation: "RotateKey", fhirServiceId: fhirId("fhir-uami") });
  t.equal(monitor.status, "Failed");
  t.match(monitor.error, { code: "AzureAuthorizationFailed", message: /Microsoft\.KeyVault\/vaults\/keys\/rotate\/action/ });
});

t.test("with only the reader role: validations, health and a compliance scan work, a change fails at its first write", async (t) => {
  const stack = await startStack(t, { lroMs: 200, env: FAST });
  await onlyRole(stack.sandbox, { name: "cmk-service-reader-role" });

  const validation = await stack.app.inject({ method: "POST", url: "/v1/validations", payload: setKey("fhir-sys"), headers: { "x-api-key": KEYS.reader } });
  t.equal(validation.json().valid, true, JSON.stringify(validation.json().checks.filter((check: { status: string }) => check.status === "Failed")));
  const health = await stack.app.inject({ method: "GET", url: `/v1/subscriptions/${seed.SUBSCRIPTION_ID}/resourceGroups/rg-sandbox/workspaces/wssandbox/fhirservices/fhir-uami/encryption/health`, headers: { "x-api-key": KEYS.reader } });
  t.equal(health.statusCode, 200, health.body);
  t.equal(health.json().status, "Healthy");
  const scanned = await scan(stack);
  t.equal(scanned.status, "Succeeded", JSON.stringify(scanned.error ?? {}));
  t.ok(scanned.result.scannedServices >= 4, "a compliance scan only reads: the reader role is enough");
  t.notOk(scanned.result.notListed, "every subscription listed");
  const checks = (await sandboxRequest(stack.sandbox, { path: "/_sandbox/authorization-checks" })).json as Check[];
  t.same(checks.filter((check) => check.principalId === seed.SERVICE_APP.objectId && !check.granted), [], "reads need nothing the reader role lacks");

  const monitor = await change(stack, setKey("fhir-sys"));
  t.match(monitor.error, { code: "AzureAuthorizationFailed", message: /'Microsoft\.HealthcareApis\/workspaces\/fhirservices\/write'/ });
});

/**
 * Each further action of the role and a request that needs it: without it the job names it, in its error,
 * in its result (the subscriptions a fleet or scan could not list) or in the pre-flight check that could
 * not read; and, where the read only informs a check, the job still does its work.
 */
const NEEDS: Array<{
  missing: string;
  url?: string;
  body: (stack: Stack) => Promise<object> | object;
  before?: (stack: Stack) => Promise<unknown>;
  /** What else must hold of the job. */
  then?: (t: Test, monitor: Monitor) => void;
}> = [
  { missing: "Microsoft.HealthcareApis/workspaces/fhirservices/read", body: () => setKey("fhir-sys") },
  { missing: "Microsoft.HealthcareApis/locations/operationresults/read", body: () => setKey("fhir-sys") },
  { missing: "Microsoft.ManagedIdentity/userAssignedIdentities/read", body: () => setKey("fhir-uami", KEY_V2, { type: "UserAssigned", userAssignedIdentityId: UAMI }) },
  { missing: "Microsoft.Authorization/roleAssignments/read", body: () => setKey("fhir-sys") },
  { missing: "Microsoft.Authorization/roleDefinitions/read", body: () => setKey("fhir-sys") },
  { missing: "Microsoft.KeyVault/vaults/keys/read", body: () => setKey("fhir-sys") },
  {
    missing: "Microsoft.KeyVault/vaults/keys/recover/action",
    before: (stack) => scenario(stack.sandbox, { action: "deleteKey", keyUrl: `${KEY}/${seed.VERSION_1}` }),
    body: () => ({ operation: "RecoverKeyAccess", fhirServiceId: fhirId("fhir-uami"), recoverDeletedKey: true }),
  },
  { missing: "Microsoft.HealthcareApis/workspaces/read", url: "/v1/key-rotations", body: () => ({ keyUrl: KEY, dryRun: true }), then: (t, monitor) => notListedBoth(t, monitor) },
  { missing: "Microsoft.HealthcareApis/workspaces/read", url: "/v1/compliance-scans", body: () => ({}), then: (t, monitor) => notListedBoth(t, monitor) },
  {
    missing: "Microsoft.KeyVault/vaults/read",
    body: () => setKey("fhir-sys"),
    then: (t, monitor) => {
      t.equal(monitor.status, "Succeeded", "unverified, not failed: the identity does hold its role");
      const preflight = monitor.steps.find((step: { name: string }) => step.name === "Preflight").message as string;
      t.match(preflight, /IdentityKeyAccess: Not verified: the service could not read vault kvsandbox through ARM \(.*lacks 'Microsoft\.KeyVault\/vaults\/read'/, "key access names the service's missing read");
      t.match(preflight, /VaultRegion: Not checked: .*'Microsoft\.KeyVault\/vaults\/read'.*VaultFirewall: Not checked/);
    },
  },
  {
    missing: "Microsoft.KeyVault/managedHSMs/read",
    body: () => setKey("fhir-sys", HSM_KEY),
    then: (t, monitor) => {
      t.equal(monitor.status, "Succeeded");
      const preflight = monitor.steps.find((step: { name: string }) => step.name === "Preflight").message as string;
      t.match(preflight, /2 warning\(s\): VaultRegion: Not checked: the service could not read managed HSM hsmsandbox through ARM: .*lacks 'Microsoft\.KeyVault\/managedHSMs\/read'\. VaultFirewall: Not checked: .*managedHSMs\/read'\.$/);
      t.notMatch(preflight, /skipped/, "no check silently skipped");
    },
  },
];

/** Both seed subscriptions in the result's notListed, each naming the action, its scope and the fix. */
function notListedBoth(t: Test, monitor: Monitor): void {
  t.equal(monitor.status, "Succeeded", "a subscription not listed is named, not fatal");
  t.same(
    monitor.result.notListed.map((entry: { subscriptionId: string }) => entry.subscriptionId).sort(),
    [seed.SUBSCRIPTION_ID, seed.OTHER_SUBSCRIPTION_ID].sort(),
  );
  for (const entry of monitor.result.notListed) {
    t.equal(
      entry.reason,
      `no access: the service's identity lacks 'Microsoft.HealthcareApis/workspaces/read' at /subscriptions/${entry.subscriptionId}/providers/Microsoft.HealthcareApis/workspaces (AuthorizationFailed)`,
    );
    t.match(entry.remediation, `Give the service's identity 'Microsoft.HealthcareApis/workspaces/read' at /subscriptions/${entry.subscriptionId}: assign it the role in deploy/cmk-service-role.json`);
  }
  t.match(monitor.steps[0], { name: "Discover", message: /; not listed: 22222222-[^:]+: no access: the service's identity lacks 'Microsoft\.HealthcareApis\/workspaces\/read'/ });
}

for (const need of NEEDS) {
  t.test(`without ${need.missing}, the job that needs it names it`, async (t) => {
    const stack = await startStack(t, { lroMs: 200, env: { ...FAST, CMK_READ_CACHE_MS: "0" } });
    await onlyRole(stack.sandbox);
    await onlyRole(stack.sandbox, { without: [need.missing] });
    await need.before?.(stack);
    const monitor = await run(stack, need.url ?? "/v1/change-requests", await need.body(stack));
    const said = JSON.stringify({ error: monitor.error, steps: monitor.steps, result: monitor.result });
    t.ok(said.includes(`'${need.missing}'`), `the job names the missing action: ${monitor.status} ${said.slice(0, 1500)}`);
    need.then?.(t, monitor);
    // What a client following the job hears: the same, in its events.
    const stream = await openStream(await stack.app.listen({ port: 0, host: "127.0.0.1" }), `/v1/jobs/${monitor.id}/events`);
    await stream.ended;
    t.ok(JSON.stringify(stream.events).includes(`'${need.missing}'`), "the job's events name it too");
  });
}
