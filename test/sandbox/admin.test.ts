import { HealthcareApisManagementClient } from "@azure/arm-healthcareapis";
import t from "tap";
import { seed } from "../../src/sandbox/index.js";
import { sandboxCredential, sandboxHttpClient, sandboxRequest, startTestSandbox } from "../helpers/sandbox.js";

interface StateShape {
  tenantId: string;
  fhirServices: { id: string; tags: Record<string, string>; properties: Record<string, unknown> }[];
  vaults: { name: string; recoveryLevel: string; keys: { name: string; currentVersion: string; versions: { version: string; enabled: boolean; d?: unknown }[] }[]; deletedKeys: { name: string }[] }[];
  identities: { name: string; principalId: string; disabled: boolean }[];
  roleAssignments: { principalId: string; roleName: string; scope: string }[];
  operations: unknown[];
  disabledPrincipals: string[];
}

async function state(sandbox: Parameters<typeof sandboxRequest>[0]): Promise<StateShape> {
  return (await sandboxRequest(sandbox, { path: "/_sandbox/state" })).json as StateShape;
}

t.test("state describes the seed", async (t) => {
  const sandbox = await startTestSandbox(t);
  const world = await state(sandbox);
  t.equal(world.tenantId, seed.TENANT_ID);
  t.same(world.fhirServices.map((service) => service.id).sort(), [...[seed.FHIR_NOROLE, seed.FHIR_SYS, seed.FHIR_UAMI].map((name) => seed.fhirServiceId(name)), seed.FHIR_OTHER_ID].sort());
  const kvsandbox = world.vaults.find((vault) => vault.name === seed.KV_SANDBOX);
  t.equal(kvsandbox?.recoveryLevel, "Recoverable");
  t.equal(world.vaults.find((vault) => vault.name === seed.KV_NOPURGE)?.recoveryLevel, "Recoverable+Purgeable");
  const rsa = kvsandbox?.keys.find((key) => key.name === seed.KEY_RSA_2048);
  t.equal(rsa?.currentVersion, seed.VERSION_2);
  t.same(rsa?.versions.map((version) => version.version), [seed.VERSION_1, seed.VERSION_2]);
  t.notOk(JSON.stringify(world).includes("PRIVATE KEY"), "no key material");
  t.equal(kvsandbox?.keys.length, 8);
  const encryptionUsers = world.roleAssignments.filter((assignment) => assignment.roleName === "Key Vault Crypto Service Encryption User");
  t.equal(encryptionUsers.length, 10, "fhir-sys and uami-sandbox on four vaults, fhir-other and uami-other on kvsandbox");
  t.ok(world.roleAssignments.some((assignment) => assignment.principalId === seed.SERVICE_APP.objectId && assignment.roleName === "Contributor" && assignment.scope === `/subscriptions/${seed.SUBSCRIPTION_ID}`));
});

t.test("the request log lists served requests, admin excluded, with since", async (t) => {
  const sandbox = await startTestSandbox(t);
  const client = new HealthcareApisManagementClient(sandboxCredential(sandbox), seed.SUBSCRIPTION_ID, { httpClient: sandboxHttpClient(sandbox) });
  await client.fhirServices.get(seed.RESOURCE_GROUP, seed.WORKSPACE, seed.FHIR_SYS);
  const log = (await sandboxRequest(sandbox, { path: "/_sandbox/requests" })).json as { seq: number; method: string; host: string; path: string; status: number }[];
  t.same(log.map((entry) => entry.seq), log.map((_, index) => index + 1));
  t.ok(log.some((entry) => entry.host === "login.microsoftonline.com" && entry.method === "POST"));
  const last = log[log.length - 1];
  t.match(last, { method: "GET", host: "management.azure.com", path: seed.fhirServiceId(seed.FHIR_SYS), status: 200 });
  t.notOk(log.some((entry) => entry.path.startsWith("/_sandbox")));

  const since = (await sandboxRequest(sandbox, { path: `/_sandbox/requests?since=${(last?.seq ?? 1) - 1}` })).json as unknown[];
  t.equal(since.length, 1);
});

t.test("scenarios change keys, identities and role assignments; reset restores the seed", async (t) => {
  const sandbox = await startTestSandbox(t);
  const scenario = (body: unknown) => sandboxRequest(sandbox, { method: "POST", path: "/_sandbox/scenarios", body });
  const metadata = (service: string) => sandboxRequest(sandbox, { path: "/metadata", host: `${seed.WORKSPACE}-${service}.fhir.azurehealthcareapis.com` });

  t.equal((await metadata(seed.FHIR_UAMI)).status, 200);
  const keyUrl = seed.keyUrl(seed.KV_SANDBOX, seed.KEY_RSA_2048, seed.VERSION_1);
  t.equal((await scenario({ action: "disableKey", keyUrl })).status, 200);
  const down = await metadata(seed.FHIR_UAMI);
  t.equal(down.status, 500);
  t.match(down.json, { resourceType: "OperationOutcome" });
  await scenario({ action: "enableKey", keyUrl });
  t.equal((await metadata(seed.FHIR_UAMI)).status, 200);

  await scenario({ action: "deleteKey", vault: seed.KV_SANDBOX, key: seed.KEY_RSA_2048 });
  t.equal((await metadata(seed.FHIR_UAMI)).status, 500);
  t.ok((await state(sandbox)).vaults[0]?.deletedKeys.some((key) => key.name === seed.KEY_RSA_2048));
  await scenario({ action: "recoverKey", keyUrl: seed.keyUrl(seed.KV_SANDBOX, seed.KEY_RSA_2048) });
  t.equal((await metadata(seed.FHIR_UAMI)).status, 200);

  await scenario({ action: "disableIdentity", fhirServiceId: seed.fhirServiceId(seed.FHIR_UAMI) });
  t.equal((await metadata(seed.FHIR_UAMI)).status, 500);
  t.ok((await state(sandbox)).identities.find((identity) => identity.name === seed.UAMI_SANDBOX)?.disabled);
  await scenario({ action: "enableIdentity", principalId: seed.UAMI_SANDBOX_PRINCIPAL_ID });
  t.equal((await metadata(seed.FHIR_UAMI)).status, 200);

  const removed = await scenario({ action: "removeRoleAssignments", userAssignedIdentityId: seed.userAssignedIdentityId(seed.UAMI_SANDBOX) });
  t.equal((removed.json as { removed: string[] }).removed.length, 4);
  t.equal((await metadata(seed.FHIR_UAMI)).status, 500);

  t.equal((await scenario({ action: "explode" })).status, 400);

  t.equal((await sandboxRequest(sandbox, { method: "POST", path: "/_sandbox/reset" })).status, 204);
  t.same((await sandboxRequest(sandbox, { path: "/_sandbox/requests" })).json, []);
  const world = await state(sandbox);
  t.equal(world.roleAssignments.length, 16);
  t.same(world.operations, []);
  t.equal((await metadata(seed.FHIR_UAMI)).status, 200);
});

t.test("fault configuration is validated", async (t) => {
  const sandbox = await startTestSandbox(t);
  const bad = await sandboxRequest(sandbox, { method: "PUT", path: "/_sandbox/faults", body: { rules: [{ service: "dns", status: 500, probability: 1 }] } });
  t.equal(bad.status, 400);
  const good = await sandboxRequest(sandbox, { method: "PUT", path: "/_sandbox/faults", body: { rules: [], lroDurationMs: 10 } });
  t.match(good.json, { rules: [], lroDurationMs: 10 });
  t.equal(((await state(sandbox)) as unknown as { lroMs: number }).lroMs, 10);
});

t.test("minted tokens take claim overrides (null removes one); anything but an object is refused", async (t) => {
  const sandbox = await startTestSandbox(t);
  const mint = (claims: unknown) => sandboxRequest(sandbox, { method: "POST", path: "/_sandbox/tokens", body: { clientId: seed.READER_APP.clientId, claims } });
  const minted = await mint({ hasgroups: true, iat: null, exp: 42 });
  t.equal(minted.status, 200);
  const { access_token: token, claims } = minted.json as { access_token: string; claims: Record<string, unknown> };
  t.match(claims, { hasgroups: true, exp: 42, appid: seed.READER_APP.clientId });
  t.notOk("iat" in claims);
  t.same(JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString("utf8")), claims, "the signed token carries exactly these claims");
  const refused = await mint(["iat"]);
  t.equal(refused.status, 400);
  t.match(refused.json, { error: { code: "InvalidToken", message: /claims/ } });
});
