import { AuthorizationManagementClient } from "@azure/arm-authorization";
import { KeyVaultManagementClient } from "@azure/arm-keyvault";
import { ManagedServiceIdentityClient } from "@azure/arm-msi";
import t from "tap";
import { seed } from "../../src/sandbox/index.js";
import type { RunningSandbox } from "../../src/sandbox/index.js";
import { armToken, sandboxCredential, sandboxHttpClient, sandboxRequest, startTestSandbox } from "../helpers/sandbox.js";

function options(sandbox: RunningSandbox) {
  return { httpClient: sandboxHttpClient(sandbox) };
}

t.test("Microsoft.KeyVault/vaults: get and list, with real traffic's omissions", async (t) => {
  const sandbox = await startTestSandbox(t);
  const client = new KeyVaultManagementClient(sandboxCredential(sandbox), seed.SUBSCRIPTION_ID, options(sandbox));
  const kvsandbox = await client.vaults.get(seed.RESOURCE_GROUP, seed.KV_SANDBOX);
  t.match(kvsandbox.properties, { enablePurgeProtection: true, enableSoftDelete: true, vaultUri: "https://kvsandbox.vault.azure.net/", sku: { family: "A", name: "standard" }, tenantId: seed.TENANT_ID });
  t.equal(kvsandbox.location, "westus3");
  const names: string[] = [];
  for await (const vault of client.vaults.listBySubscription()) names.push(vault.name ?? "");
  t.same(names.sort(), [seed.KV_EAST, seed.KV_FIREWALL, seed.KV_NOPURGE, seed.KV_SANDBOX]);
  const east = await client.vaults.get(seed.RESOURCE_GROUP, seed.KV_EAST);
  t.equal(east.location, "eastus");

  const authorization = `Bearer ${await armToken(sandbox)}`;
  const raw = async (vault: string) =>
    (await sandboxRequest(sandbox, { path: `${seed.vaultId(vault)}?api-version=2026-02-01`, host: "management.azure.com", headers: { authorization } })).json as {
      properties: Record<string, unknown>;
    };
  t.notOk("enablePurgeProtection" in (await raw(seed.KV_NOPURGE)).properties, "omitted when off");
  t.notOk("networkAcls" in (await raw(seed.KV_SANDBOX)).properties, "omitted when none");
  t.match((await raw(seed.KV_FIREWALL)).properties, { publicNetworkAccess: "Disabled", networkAcls: { bypass: "None", defaultAction: "Deny" } });
  await t.rejects(client.vaults.get(seed.RESOURCE_GROUP, "kvmissing"), { name: "RestError", statusCode: 404 });
});

t.test("Microsoft.ManagedIdentity: user-assigned identities, and a resource's system-assigned identity by scope", async (t) => {
  const sandbox = await startTestSandbox(t);
  const client = new ManagedServiceIdentityClient(sandboxCredential(sandbox), seed.SUBSCRIPTION_ID, options(sandbox));
  const identity = await client.userAssignedIdentities.get(seed.RESOURCE_GROUP, seed.UAMI_SANDBOX);
  t.equal(identity.id, seed.userAssignedIdentityId(seed.UAMI_SANDBOX), "lower-case resourcegroups in id");
  t.equal(identity.principalId, seed.UAMI_SANDBOX_PRINCIPAL_ID);
  t.equal(identity.clientId, seed.UAMI_SANDBOX_CLIENT_ID);
  t.equal(identity.tenantId, seed.TENANT_ID);
  await t.rejects(client.userAssignedIdentities.get(seed.RESOURCE_GROUP, "uami-missing"), { statusCode: 404, code: "ResourceNotFound" });

  const system = await client.systemAssignedIdentities.getByScope(seed.fhirServiceId(seed.FHIR_SYS));
  t.match(system, {
    id: `${seed.fhirServiceId(seed.FHIR_SYS)}/providers/Microsoft.ManagedIdentity/identities/default`,
    name: "default",
    type: "Microsoft.ManagedIdentity/identities",
    location: "westus3",
    principalId: seed.FHIR_SYS_PRINCIPAL_ID,
    tenantId: seed.TENANT_ID,
    clientId: /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-8[0-9a-f]{3}-[0-9a-f]{12}$/,
  });
  t.equal((await client.systemAssignedIdentities.getByScope(seed.fhirServiceId(seed.FHIR_SYS))).clientId, system.clientId, "the client id is stable");
  await t.rejects(client.systemAssignedIdentities.getByScope(seed.fhirServiceId(seed.FHIR_UAMI)), { name: "RestError", statusCode: 404 }, "fhir-uami has no system-assigned identity");
});

t.test("Microsoft.Authorization: list with filters and inheritance, role definitions", async (t) => {
  const sandbox = await startTestSandbox(t);
  const client = new AuthorizationManagementClient(sandboxCredential(sandbox), seed.SUBSCRIPTION_ID, options(sandbox));
  const list = async (scope: string, filter?: string) => {
    const found = [];
    for await (const assignment of client.roleAssignments.listForScope(scope, filter ? { filter } : {})) found.push(assignment);
    return found;
  };
  const keyScope = `${seed.vaultId(seed.KV_SANDBOX)}/keys/${seed.KEY_RSA_2048}`;
  const forSys = await list(keyScope, `principalId eq '${seed.FHIR_SYS_PRINCIPAL_ID}'`);
  t.equal(forSys.length, 1, "inherited from the vault scope");
  t.equal(forSys[0]?.scope, seed.vaultId(seed.KV_SANDBOX));
  t.match(forSys[0]?.roleDefinitionId, /e147488a-f6f5-4113-8e2d-b22465e65bf6$/);

  const definition = await client.roleDefinitions.getById(forSys[0]?.roleDefinitionId ?? "");
  t.equal(definition.roleName, "Key Vault Crypto Service Encryption User");
  t.same(definition.permissions?.[0]?.dataActions, [
    "Microsoft.KeyVault/vaults/keys/read",
    "Microsoft.KeyVault/vaults/keys/wrap/action",
    "Microsoft.KeyVault/vaults/keys/unwrap/action",
  ]);

  t.same(await list(keyScope, `principalId eq '${seed.FHIR_NOROLE_PRINCIPAL_ID}'`), [], "fhir-norole has no role anywhere");
  const atRg = await list(seed.resourceGroupId(), "atScope()");
  t.same(atRg.map((assignment) => assignment.scope), [`/subscriptions/${seed.SUBSCRIPTION_ID}`], "atScope: at or above only");
  const belowSubscription = await list(`/subscriptions/${seed.SUBSCRIPTION_ID}`, `assignedTo('${seed.UAMI_SANDBOX_PRINCIPAL_ID}')`);
  t.equal(belowSubscription.length, 4, "principal filter includes assignments below the scope");

  // Paged: 100 a page, the rest behind nextLink ($skipToken); test/azure/role-assignments.test.ts follows 3 pages.
  const path = `/subscriptions/${seed.SUBSCRIPTION_ID}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01`;
  const authorization = `Bearer ${await armToken(sandbox)}`;
  const first = await sandboxRequest(sandbox, { path, host: "management.azure.com", headers: { authorization } });
  t.notOk("nextLink" in (first.json as object), "one page: no nextLink key, as in real traffic");
  const bad = await sandboxRequest(sandbox, { path: `${path}&$skipToken=x`, host: "management.azure.com", headers: { authorization } });
  t.match(bad, { status: 400, json: { error: { code: "InvalidSkipToken" } } });
});

t.test("role assignment writes need Microsoft.Authorization/roleAssignments/write", async (t) => {
  const sandbox = await startTestSandbox(t);
  const client = new AuthorizationManagementClient(sandboxCredential(sandbox), seed.SUBSCRIPTION_ID, options(sandbox));
  const scope = seed.vaultId(seed.KV_SANDBOX);
  const parameters = {
    roleDefinitionId: seed.roleDefinitionId(seed.ROLE.keyVaultCryptoServiceEncryptionUser),
    principalId: seed.FHIR_NOROLE_PRINCIPAL_ID,
    principalType: "ServicePrincipal",
  };
  const name = "f0000000-0000-4000-8000-000000000001";
  await t.rejects(client.roleAssignments.create(scope, name, parameters), { statusCode: 403, code: "AuthorizationFailed" }, "Contributor cannot assign roles");

  await sandboxRequest(sandbox, {
    method: "POST",
    path: "/_sandbox/scenarios",
    body: { action: "addRoleAssignment", principalId: seed.SERVICE_APP.objectId, role: "User Access Administrator", scope: `/subscriptions/${seed.SUBSCRIPTION_ID}` },
  });
  const created = await client.roleAssignments.create(scope, name, parameters);
  t.equal(created.principalId, seed.FHIR_NOROLE_PRINCIPAL_ID);
  t.equal(created.scope, scope);
  await t.rejects(client.roleAssignments.create(scope, "f0000000-0000-4000-8000-000000000002", parameters), { statusCode: 409, code: "RoleAssignmentExists" });

  const metadata = await sandboxRequest(sandbox, { path: "/metadata", host: "wssandbox-fhir-norole.fhir.azurehealthcareapis.com" });
  t.equal(metadata.status, 200, "fhir-norole has no key, so its data plane answers");
  const fetched = await client.roleAssignments.get(scope, name);
  t.equal(fetched.createdBy, seed.SERVICE_APP.objectId);
  await client.roleAssignments.delete(scope, name);
  await t.rejects(client.roleAssignments.get(scope, name), { statusCode: 404, code: "RoleAssignmentNotFound" });
});

t.test("ARM throttling: token buckets per subscription and principal", async (t) => {
  const sandbox = await startTestSandbox(t, { throttle: { reads: { capacity: 3, refillPerSecond: 1 } } });
  const authorization = `Bearer ${await armToken(sandbox)}`;
  const get = () => sandboxRequest(sandbox, { path: `${seed.vaultId(seed.KV_SANDBOX)}?api-version=2026-02-01`, host: "management.azure.com", headers: { authorization } });
  const remaining = [];
  for (let i = 0; i < 3; i++) remaining.push((await get()).headers["x-ms-ratelimit-remaining-subscription-reads"]);
  t.same(remaining, ["2", "1", "0"]);
  const throttled = await get();
  t.equal(throttled.status, 429);
  t.match(throttled.json, { error: { code: "SubscriptionRequestsThrottled" } });
  t.match(throttled.headers["retry-after"], /^\d+$/);

  const other = `Bearer ${await armToken(sandbox, seed.READER_APP)}`;
  const otherPrincipal = await sandboxRequest(sandbox, { path: `${seed.vaultId(seed.KV_SANDBOX)}?api-version=2026-02-01`, host: "management.azure.com", headers: { authorization: other } });
  t.not(otherPrincipal.status, 429, "another principal has its own bucket");
});

t.test("writes templates make: a vault (PUT), a key in it (create if it does not exist) and a user-assigned identity", async (t) => {
  const sandbox = await startTestSandbox(t);
  const keyVaults = new KeyVaultManagementClient(sandboxCredential(sandbox), seed.SUBSCRIPTION_ID, options(sandbox));
  const properties = { tenantId: seed.TENANT_ID, sku: { family: "A" as const, name: "standard" as const }, enableSoftDelete: true, enablePurgeProtection: true, enableRbacAuthorization: true };
  const vault = await keyVaults.vaults.createOrUpdate(seed.RESOURCE_GROUP, "kvmade", { location: "westus3", properties }, { updateIntervalInMs: 1 });
  t.match(vault, { id: seed.vaultId("kvmade"), location: "westus3", properties: { enablePurgeProtection: true, vaultUri: "https://kvmade.vault.azure.net/" } });
  const putVault = async (resourceGroup: string, name: string, vaultProperties: typeof properties) => keyVaults.vaults.createOrUpdate(resourceGroup, name, { location: "westus3", properties: vaultProperties });
  await t.rejects(putVault(seed.RESOURCE_GROUP, "kvmade", { ...properties, enablePurgeProtection: false }), { statusCode: 400, code: "BadRequest" }, "purge protection cannot be turned off");
  await t.rejects(putVault(seed.OTHER_RESOURCE_GROUP, seed.KV_SANDBOX, properties), { statusCode: 404, code: "ResourceGroupNotFound" }, "rg-other is in the other subscription");

  const key = await keyVaults.keys.createIfNotExist(seed.RESOURCE_GROUP, "kvmade", "cmk-made", { properties: { kty: "RSA", keySize: 2048, keyOps: ["wrapKey", "unwrapKey"] } });
  t.match(key, { id: `${seed.vaultId("kvmade")}/keys/cmk-made`, name: "cmk-made", kty: "RSA", keySize: 2048, keyOps: ["wrapKey", "unwrapKey"], keyUri: "https://kvmade.vault.azure.net/keys/cmk-made" });
  t.match(key.keyUriWithVersion, /^https:\/\/kvmade\.vault\.azure\.net\/keys\/cmk-made\/[0-9a-f]{32}$/);
  const again = await keyVaults.keys.createIfNotExist(seed.RESOURCE_GROUP, "kvmade", "cmk-made", { properties: { kty: "EC" } });
  t.equal(again.keyUriWithVersion, key.keyUriWithVersion, "an existing key is answered unchanged");
  t.equal((await keyVaults.keys.get(seed.RESOURCE_GROUP, "kvmade", "cmk-made")).keyUriWithVersion, key.keyUriWithVersion);
  t.match(
    (await sandboxRequest(sandbox, { path: "/_sandbox/state" })).json,
    { vaults: [{}, {}, {}, {}, { name: "kvmade", enablePurgeProtection: true, keys: [{ name: "cmk-made", currentVersion: key.keyUriWithVersion?.split("/").pop() }] }] },
    "the Key Vault data plane holds the same key",
  );

  const identities = new ManagedServiceIdentityClient(sandboxCredential(sandbox), seed.SUBSCRIPTION_ID, options(sandbox));
  const made = await identities.userAssignedIdentities.createOrUpdate(seed.RESOURCE_GROUP, "uami-made", { location: "westus3", tags: { team: "health" } });
  t.match(made, { id: seed.userAssignedIdentityId("uami-made"), principalId: /^[0-9a-f-]{36}$/, clientId: /^[0-9a-f-]{36}$/, tenantId: seed.TENANT_ID, tags: { team: "health" } });
  const updated = await identities.userAssignedIdentities.createOrUpdate(seed.RESOURCE_GROUP, "uami-made", { location: "westus3", tags: {} });
  t.equal(updated.principalId, made.principalId, "the principal is made once");
});
