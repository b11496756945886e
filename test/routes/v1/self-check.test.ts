import t from "tap";
import { seed } from "../../../src/sandbox/index.js";
import { PERMISSION_REQUIREMENTS } from "../../../src/domain/permissions.js";
import { KEYS, waitForJob } from "../../helpers/app.js";
import { startStack } from "../../helpers/stack.js";
import { onlyRole, roleFile, scenario } from "../../helpers/roles.js";
import { sandboxRequests, lastSeq } from "../../helpers/sandbox-admin.js";
import { setKey } from "../../helpers/requests.js";
import { sandboxCredential, sandboxRequest } from "../../helpers/sandbox.js";

/**
 * `GET /v1/self-check` against the sandbox, whose ARM answers `Microsoft.Authorization/permissions` from the
 * role assignments it enforces: with the seed's roles and with deploy/cmk-service-role.json alone every
 * operation can run; without any one of the role's permissions the report names it at the scope where it is
 * missing, with the operations it blocks and the command that grants it.
 */

type Stack = Awaited<ReturnType<typeof startStack>>;
type Report = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const HSM_KEY = `https://${seed.MANAGED_HSM}.managedhsm.azure.net/keys/${seed.KEY_HSM_3072}/${seed.VERSION_1}`;
// Facts are read afresh on every run: a role changed between two runs shows at once.
const ENV = { CMK_READ_CACHE_MS: "0", CMK_ROLE_PROPAGATION_WINDOW_MS: "0" };

async function selfCheck(stack: Stack, key: string = KEYS.admin): Promise<Report> {
  const answer = await stack.app.inject({ method: "GET", url: "/v1/self-check", headers: { "x-api-key": key } });
  if (answer.statusCode !== 200) throw new Error(`self-check: ${answer.statusCode} ${answer.body}`);
  return answer.json();
}

const missingIn = (report: Report) => report.scopes.flatMap((scope: Report) => scope.missing.map((entry: Report) => ({ kind: scope.kind, scope: scope.scope, permission: entry.permission, operations: entry.operations, fix: scope.fix })));

t.test("with the seed's roles every operation can run; only an admin may ask", async (t) => {
  const stack = await startStack(t, { worker: false, env: ENV });
  for (const key of [KEYS.reader, KEYS.operator]) {
    const refused = await stack.app.inject({ method: "GET", url: "/v1/self-check", headers: { "x-api-key": key } });
    t.equal(refused.statusCode, 403, "admin only");
  }
  t.equal((await stack.app.inject({ method: "GET", url: "/v1/self-check" })).statusCode, 401);

  const report = await selfCheck(stack);
  t.equal(report.status, "ok");
  t.match(report.principal, { credential: "ClientSecretCredential", objectId: seed.SERVICE_APP.objectId, appId: seed.SERVICE_APP.clientId, tenantId: seed.TENANT_ID });
  t.same(report.subscriptions.map((s: Report) => s.subscriptionId).sort(), [seed.SUBSCRIPTION_ID, seed.OTHER_SUBSCRIPTION_ID].sort(), "every subscription the identity can list");
  t.ok(report.subscriptions.every((s: Report) => s.status === "ok" && s.fhirServices >= 1));
  t.same(new Set(report.scopes.map((scope: Report) => scope.kind)), new Set(["subscription", "resourceGroup", "userAssignedIdentity", "vault"]));
  t.ok(report.operations.every((operation: Report) => operation.status === "ok" && operation.missing.length === 0), "every operation ok");
  t.same(report.fixes, []);
});

t.test("under the custom role alone: all granted; without each permission, the report names it where it is needed", async (t) => {
  const stack = await startStack(t, { lroMs: 200, env: ENV });
  await onlyRole(stack.sandbox);
  // Put a Managed HSM key in use, so its ARM resource and its local RBAC are checked too.
  const accepted = await stack.app.inject({ method: "POST", url: "/v1/change-requests", payload: setKey("fhir-sys", HSM_KEY), headers: { "x-api-key": KEYS.operator } });
  t.equal(accepted.statusCode, 202, accepted.body);
  t.equal((await waitForJob(stack.app, accepted.json().id, 60_000)).monitor.status, "Succeeded");

  const full = await selfCheck(stack);
  t.equal(full.status, "ok", JSON.stringify(missingIn(full)));
  t.same(new Set(full.scopes.map((scope: Report) => scope.kind)), new Set(["subscription", "resourceGroup", "userAssignedIdentity", "vault", "managedHsm", "managedHsmKey"]));
  const granted = new Set(full.scopes.flatMap((scope: Report) => scope.granted));
  t.same([...granted].sort(), [...new Set(PERMISSION_REQUIREMENTS.map((requirement) => requirement.permission))].sort(), "every requirement was judged, and granted");

  const role = await roleFile();
  for (const permission of [...role.Actions, ...role.DataActions]) {
    await onlyRole(stack.sandbox, { without: [permission] });
    const report = await selfCheck(stack);
    const named = missingIn(report).filter((entry: Report) => entry.permission === permission);
    t.equal(report.status, "missing", `without ${permission}: status missing`);
    t.ok(named.length >= 1, `without ${permission}: named at ${named.map((entry: Report) => entry.kind).join(", ")}`);
    const needing: string[] = PERMISSION_REQUIREMENTS.filter((requirement) => requirement.permission === permission).flatMap((requirement) => requirement.operations);
    for (const entry of named) {
      t.ok(entry.operations.every((operation: string) => needing.includes(operation)), `${permission}: blocks ${entry.operations.join(", ")}`);
      t.match(entry.fix, new RegExp(`^az role assignment create --assignee-object-id ${seed.SERVICE_APP.objectId} --assignee-principal-type ServicePrincipal --role "CMK Service Operator" --scope /subscriptions/[0-9a-f-]{36}$`));
    }
    const blocked = report.operations.filter((operation: Report) => operation.status === "missing").map((operation: Report) => operation.operation);
    t.ok(blocked.length > 0 && blocked.every((operation: string) => needing.includes(operation) || report.operations.find((o: Report) => o.operation === operation).missing.some((m: string) => m !== permission)), `${permission}: blocks ${blocked.join(", ")}`);
    t.ok(report.fixes.length >= 1, "with the command that grants it");
  }
  await onlyRole(stack.sandbox);
  t.equal((await selfCheck(stack)).status, "ok", "the full role back: ok again");

  // The HSM key answers to the HSM's local RBAC: without Managed HSM Crypto User the service can neither read nor rotate it.
  const hsmHost = `${seed.MANAGED_HSM}.managedhsm.azure.net`;
  const token = (await sandboxCredential(stack.sandbox).getToken("https://managedhsm.azure.net/.default")).token;
  const local = await sandboxRequest(stack.sandbox, { host: hsmHost, path: "/providers/Microsoft.Authorization/roleAssignments?api-version=7.5", headers: { authorization: `Bearer ${token}` } });
  const cryptoUser = (local.json as { value: Report[] }).value.find(
    (assignment) => assignment.properties.principalId === seed.SERVICE_APP.objectId && assignment.properties.roleDefinitionId.endsWith(seed.HSM_ROLE.cryptoUser),
  );
  t.ok(cryptoUser, "the seed gives the service Managed HSM Crypto User at /");
  const deleted = await sandboxRequest(stack.sandbox, { method: "DELETE", host: hsmHost, path: `${cryptoUser!.id}?api-version=7.5`, headers: { authorization: `Bearer ${token}` } });
  t.equal(deleted.status, 200, deleted.text);
  const withoutLocal = await selfCheck(stack);
  const hsmKey = withoutLocal.scopes.find((scope: Report) => scope.kind === "managedHsmKey");
  t.same(hsmKey.missing.map((entry: Report) => entry.permission), ["Microsoft.KeyVault/managedHsm/keys/read/action", "Microsoft.KeyVault/managedHsm/keys/rotate/action"]);
  t.equal(
    hsmKey.fix,
    `az keyvault role assignment create --hsm-name ${seed.MANAGED_HSM} --role "Managed HSM Crypto User" --assignee-object-id ${seed.SERVICE_APP.objectId} --assignee-principal-type ServicePrincipal --scope /keys/${seed.KEY_HSM_3072}`,
  );
});

t.test("the reader role: validations and scans can run, changes cannot", async (t) => {
  const stack = await startStack(t, { worker: false, env: ENV });
  await onlyRole(stack.sandbox, { name: "cmk-service-reader-role" });
  const report = await selfCheck(stack);
  t.equal(report.status, "missing");
  const byOperation = Object.fromEntries(report.operations.map((operation: Report) => [operation.operation, operation]));
  t.equal(byOperation.Validate.status, "ok");
  t.equal(byOperation.ComplianceScan.status, "ok");
  for (const operation of ["SetKey", "SetKeyUserAssigned", "CreateService", "RotateKey", "RecoverKeyAccess", "FleetRotation"]) {
    t.equal(byOperation[operation].status, "missing", `${operation} cannot run`);
    t.ok(byOperation[operation].missing.includes("Microsoft.HealthcareApis/workspaces/fhirservices/write"), `${operation} names fhirservices/write`);
  }
  t.ok(byOperation.RotateKey.missing.includes("Microsoft.KeyVault/vaults/keys/rotate/action"));
  t.ok(byOperation.SetKeyUserAssigned.missing.includes("Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"));
});

t.test("a role assigned at the resource groups only: what a subscription must grant is named there", async (t) => {
  const stack = await startStack(t, { worker: false, env: ENV });
  await onlyRole(stack.sandbox, { scopes: [`/subscriptions/${seed.SUBSCRIPTION_ID}/resourceGroups/rg-sandbox`, `/subscriptions/${seed.OTHER_SUBSCRIPTION_ID}/resourceGroups/rg-other`] });
  const report = await selfCheck(stack);
  t.equal(report.status, "missing");
  const subscriptions = report.scopes.filter((scope: Report) => scope.kind === "subscription");
  t.equal(subscriptions.length, 2);
  for (const scope of subscriptions) {
    t.same(scope.missing.map((entry: Report) => entry.permission).sort(), ["Microsoft.HealthcareApis/locations/operationresults/read", "Microsoft.HealthcareApis/workspaces/read"], `${scope.scope}: listing and operation results need the subscription`);
    t.match(scope.fix, new RegExp(`--scope ${scope.scope}$`));
  }
});

t.test("the work grows with the scopes in use, not with the services", async (t) => {
  const stack = await startStack(t, { worker: false, env: ENV });
  const before = await lastSeq(stack.sandbox);
  const small = await selfCheck(stack);
  const smallPermissionReads = (await sandboxRequests(stack.sandbox, before)).filter((request) => /\/providers\/Microsoft\.Authorization\/permissions$/i.test(request.path)).length;
  await scenario(stack.sandbox, { action: "createFleet", count: 300, keyUrl: `https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048/00000000000000000000000000000001`, subscriptions: [seed.SUBSCRIPTION_ID, seed.OTHER_SUBSCRIPTION_ID] });
  const middle = await lastSeq(stack.sandbox);
  const large = await selfCheck(stack);
  const requests = await sandboxRequests(stack.sandbox, middle);
  const permissionReads = requests.filter((request) => /\/providers\/Microsoft\.Authorization\/permissions$/i.test(request.path)).length;
  t.equal(large.subscriptions.reduce((sum: number, s: Report) => sum + s.fhirServices, 0), small.subscriptions.reduce((sum: number, s: Report) => sum + s.fhirServices, 0) + 300, "the 300 new services were found");
  t.equal(permissionReads, smallPermissionReads, `permission reads stay ${smallPermissionReads}: one per distinct resource group, identity and vault`);
  t.equal(permissionReads, large.scopes.filter((scope: Report) => ["resourceGroup", "userAssignedIdentity", "vault", "managedHsm"].includes(scope.kind)).length, "each scope read once");
  t.comment(`300 more services: ${requests.length} ARM requests in all (the listing pages), ${permissionReads} permission reads`);
});
