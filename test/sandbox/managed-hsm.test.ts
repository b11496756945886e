import { HealthcareApisManagementClient } from "@azure/arm-healthcareapis";
import { KeyVaultManagementClient } from "@azure/arm-keyvault";
import { CryptographyClient, KeyClient } from "@azure/keyvault-keys";
import { randomBytes, randomUUID } from "node:crypto";
import t from "tap";
import { seed } from "../../src/sandbox/index.js";
import { sandboxCredential, sandboxHttpClient, sandboxRequest, startTestSandbox } from "../helpers/sandbox.js";

/**
 * The Managed HSM `hsmsandbox` (issue 14, item 6): its keys data plane on `{hsm}.managedhsm.azure.net`
 * with its own challenge resource, its local RBAC, the resource through ARM, and the FHIR RP taking a
 * key from it.
 */

const sandbox = await startTestSandbox(t, { lroMs: 50 });
t.beforeEach(async () => {
  await sandboxRequest(sandbox, { method: "POST", path: "/_sandbox/reset" });
});
const HOST = `${seed.MANAGED_HSM}.managedhsm.azure.net`;
const KID = seed.hsmKeyUrl(seed.MANAGED_HSM, seed.KEY_HSM_3072, seed.VERSION_1);
const hsmToken = async (app: seed.SeedApp = seed.SERVICE_APP) => (await sandboxCredential(sandbox, app).getToken("https://managedhsm.azure.net/.default")).token;
const hsm = async (method: string, path: string, body?: unknown, app?: seed.SeedApp) =>
  sandboxRequest(sandbox, {
    method,
    path: `${path}${path.includes("?") ? "&" : "?"}api-version=7.5`,
    host: HOST,
    headers: { authorization: `Bearer ${await hsmToken(app)}` },
    ...(body === undefined ? {} : { body }),
  });

t.test("the challenge names the HSM's resource; a vault token is refused there", async (t) => {
  const probe = await sandboxRequest(sandbox, { path: `/keys/${seed.KEY_HSM_3072}/?api-version=7.5`, host: HOST });
  t.equal(probe.status, 401);
  t.equal(probe.headers["www-authenticate"], `Bearer authorization="https://login.microsoftonline.com/${seed.TENANT_ID}", resource="https://managedhsm.azure.net"`);
  const vaultToken = (await sandboxCredential(sandbox).getToken("https://vault.azure.net/.default")).token;
  const wrong = await sandboxRequest(sandbox, { path: `/keys/${seed.KEY_HSM_3072}/?api-version=7.5`, host: HOST, headers: { authorization: `Bearer ${vaultToken}` } });
  t.equal(wrong.status, 401);
  t.match(wrong.json, { error: { message: /Invalid audience\. Expected https:\/\/managedhsm\.azure\.net/ } });
  const missing = await sandboxRequest(sandbox, { path: "/keys?api-version=7.5", host: "hsmnone.managedhsm.azure.net", headers: { authorization: `Bearer ${await hsmToken()}` } });
  t.match(missing.json, { error: { code: "ManagedHsmNotFound" } });
});

t.test("KeyClient and CryptographyClient use cmk-hsm-3072: RSA-HSM, 3072 bits, wrap and unwrap", async (t) => {
  const credential = sandboxCredential(sandbox);
  const client = new KeyClient(seed.managedHsmUrl(), credential, { httpClient: sandboxHttpClient(sandbox) });
  const key = await client.getKey(seed.KEY_HSM_3072);
  t.equal(key.id, KID);
  t.equal(key.keyType, "RSA-HSM");
  t.equal(Buffer.from(key.key?.n ?? []).length, 384, "3072-bit modulus");
  t.equal(key.properties.recoveryLevel, "Recoverable", "purge protection on, 90 days");
  const crypto = new CryptographyClient(KID, credential, { httpClient: sandboxHttpClient(sandbox) });
  const secret = randomBytes(32);
  const wrapped = await crypto.wrapKey("RSA-OAEP-256", secret);
  t.same(Buffer.from((await crypto.unwrapKey("RSA-OAEP-256", wrapped.result)).result), secret);
  const created = await client.createRsaKey("cmk-hsm-new", { hsm: true, keySize: 2048 });
  t.match(created.id, new RegExp(`^https://${HOST.replace(/\./g, "\\.")}/keys/cmk-hsm-new/[0-9a-f]{32}$`));
});

t.test("local RBAC decides: no local role, no key; a PUT through the HSM's role assignments grants it", async (t) => {
  const denied = await hsm("GET", `/keys/${seed.KEY_HSM_3072}/`, undefined, seed.READER_APP);
  t.equal(denied.status, 403);
  t.match(denied.json, { error: { innererror: { code: "ForbiddenByRbac" }, message: /Action: 'Microsoft\.KeyVault\/managedHsm\/keys\/read\/action'[\s\S]*Resource: '\/keys\/cmk-hsm-3072'/ } });

  const definitions = await hsm("GET", "/providers/Microsoft.Authorization/roleDefinitions");
  t.equal(definitions.status, 200);
  const encryptionUser = (definitions.json as { value: { id: string; properties: { roleName: string; permissions: { dataActions: string[] }[] } }[] }).value.find(
    (definition) => definition.properties.roleName === "Managed HSM Crypto Service Encryption User",
  );
  t.equal(encryptionUser?.id, `Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/${seed.HSM_ROLE.cryptoServiceEncryptionUser}`);
  t.same(encryptionUser?.properties.permissions[0]?.dataActions, [
    "Microsoft.KeyVault/managedHsm/keys/read/action",
    "Microsoft.KeyVault/managedHsm/keys/wrap/action",
    "Microsoft.KeyVault/managedHsm/keys/unwrap/action",
  ]);

  const listed = await hsm("GET", `/providers/Microsoft.Authorization/roleAssignments?$filter=${encodeURIComponent(`principalId eq '${seed.FHIR_SYS_PRINCIPAL_ID}'`)}`);
  t.match(listed.json, { value: [{ properties: { scope: `/keys/${seed.KEY_HSM_3072}`, principalId: seed.FHIR_SYS_PRINCIPAL_ID, roleDefinitionId: encryptionUser?.id } }], nextLink: null });

  const name = randomUUID();
  const created = await hsm("PUT", `/keys/providers/Microsoft.Authorization/roleAssignments/${name}`, { properties: { roleDefinitionId: encryptionUser?.id, principalId: seed.READER_APP.objectId } });
  t.equal(created.status, 201);
  t.match(created.json, { id: `/keys/providers/Microsoft.Authorization/roleAssignments/${name}`, name, type: "Microsoft.Authorization/roleAssignments", properties: { scope: "/keys" } });
  t.equal((await hsm("GET", `/keys/${seed.KEY_HSM_3072}/`, undefined, seed.READER_APP)).status, 200, "the /keys scope covers every key");
  t.equal((await hsm("GET", `/keys/providers/Microsoft.Authorization/roleAssignments/${name}`)).status, 200);
  t.equal((await hsm("DELETE", `/keys/providers/Microsoft.Authorization/roleAssignments/${name}`)).status, 200);
  t.equal((await hsm("GET", `/keys/${seed.KEY_HSM_3072}/`, undefined, seed.READER_APP)).status, 403, "gone again");
  t.equal((await hsm("PUT", `/providers/Microsoft.Authorization/roleAssignments/${randomUUID()}`, { properties: { roleDefinitionId: encryptionUser?.id, principalId: seed.READER_APP.objectId } }, seed.READER_APP)).status, 403, "assigning needs roleAssignments/write/action");
  t.equal((await hsm("GET", "/secrets/providers/Microsoft.Authorization/roleAssignments")).status, 400, "scopes are /, /keys and /keys/{name}");
  const vaultRbac = await sandboxRequest(sandbox, {
    path: "/providers/Microsoft.Authorization/roleAssignments?api-version=7.5",
    host: `${seed.KV_SANDBOX}.vault.azure.net`,
    headers: { authorization: `Bearer ${(await sandboxCredential(sandbox).getToken("https://vault.azure.net/.default")).token}` },
  });
  t.equal(vaultRbac.status, 404, "a vault has no local RBAC");
});

t.test("ARM reads hsmsandbox as Microsoft.KeyVault/managedHSMs", async (t) => {
  const client = new KeyVaultManagementClient(sandboxCredential(sandbox), seed.SUBSCRIPTION_ID, { httpClient: sandboxHttpClient(sandbox) });
  const got = await client.managedHsms.get(seed.RESOURCE_GROUP, seed.MANAGED_HSM);
  t.match(got, {
    id: seed.managedHsmId(),
    location: "westus3",
    properties: { hsmUri: `https://${HOST}/`, enableSoftDelete: true, enablePurgeProtection: true, publicNetworkAccess: "Enabled", networkAcls: { bypass: "AzureServices", defaultAction: "Allow" } },
  });
  const names: string[] = [];
  for await (const item of client.managedHsms.listBySubscription()) names.push(item.name ?? "");
  t.same(names, [seed.MANAGED_HSM]);
  const other: string[] = [];
  for await (const item of new KeyVaultManagementClient(sandboxCredential(sandbox), seed.OTHER_SUBSCRIPTION_ID, { httpClient: sandboxHttpClient(sandbox) }).managedHsms.listBySubscription()) other.push(item.name ?? "");
  t.same(other, [], "the second subscription has none");
});

t.test("the FHIR RP takes an HSM key for an identity with the local role, and refuses one without", async (t) => {
  const client = new HealthcareApisManagementClient(sandboxCredential(sandbox), seed.SUBSCRIPTION_ID, { httpClient: sandboxHttpClient(sandbox) });
  const poll = { updateIntervalInMs: 50 };
  for (const name of [seed.FHIR_SYS, seed.FHIR_NOROLE]) {
    const current = await client.fhirServices.get(seed.RESOURCE_GROUP, seed.WORKSPACE, name);
    const update = client.fhirServices.beginCreateOrUpdateAndWait(seed.RESOURCE_GROUP, seed.WORKSPACE, name, { ...current, encryption: { customerManagedKeyEncryption: { keyEncryptionKeyUrl: KID } } }, poll);
    if (name === seed.FHIR_SYS) {
      t.match(await update, { encryption: { customerManagedKeyEncryption: { keyEncryptionKeyUrl: KID } }, provisioningState: "Succeeded" });
      t.equal((await sandboxRequest(sandbox, { path: "/metadata", host: `${seed.WORKSPACE}-${name}.fhir.azurehealthcareapis.com` })).status, 200, "the data plane reaches the HSM key");
    } else {
      await t.rejects(update, { message: /KeyVaultAccessForbidden[\s\S]*managed HSM 'hsmsandbox'[\s\S]*Managed HSM Crypto Service Encryption User/ });
    }
  }
  await sandboxRequest(sandbox, { method: "POST", path: "/_sandbox/scenarios", body: { action: "disableKey", keyUrl: KID } });
  t.equal((await sandboxRequest(sandbox, { path: "/metadata", host: `${seed.WORKSPACE}-${seed.FHIR_SYS}.fhir.azurehealthcareapis.com` })).status, 500, "scenarios reach HSM keys too");
});
