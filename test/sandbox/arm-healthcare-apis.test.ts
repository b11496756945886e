import { HealthcareApisManagementClient, type FhirService } from "@azure/arm-healthcareapis";
import t from "tap";
import { seed } from "../../src/sandbox/index.js";
import type { RunningSandbox } from "../../src/sandbox/index.js";
import { armToken, recordingHttpClient, retryDelay, sandboxCredential, sandboxHttpClient, sandboxRequest, startTestSandbox, TIMER_SLACK_MS } from "../helpers/sandbox.js";
import { advanceClock } from "../helpers/sandbox-admin.js";

const { RESOURCE_GROUP: RG, WORKSPACE: WS } = seed;
const POLL = { updateIntervalInMs: 100 };
const API = "api-version=2023-11-01";

function armClient(sandbox: RunningSandbox): HealthcareApisManagementClient {
  return new HealthcareApisManagementClient(sandboxCredential(sandbox), seed.SUBSCRIPTION_ID, { httpClient: sandboxHttpClient(sandbox) });
}

function withKey(service: FhirService, keyEncryptionKeyUrl: string): FhirService {
  return { ...service, encryption: { customerManagedKeyEncryption: { keyEncryptionKeyUrl } } };
}

t.test("get and list return the seed FHIR services in the real wire shape", async (t) => {
  const sandbox = await startTestSandbox(t);
  const client = armClient(sandbox);
  const uami = await client.fhirServices.get(RG, WS, seed.FHIR_UAMI);
  t.equal(uami.id, seed.fhirServiceId(seed.FHIR_UAMI));
  t.equal(uami.name, `${WS}/${seed.FHIR_UAMI}`);
  t.equal(uami.kind, "fhir-R4");
  t.equal(uami.provisioningState, "Succeeded");
  t.equal(uami.encryption?.customerManagedKeyEncryption?.keyEncryptionKeyUrl, seed.keyUrl(seed.KV_SANDBOX, seed.KEY_RSA_2048, seed.VERSION_1));
  t.same(uami.identity?.userAssignedIdentities?.[seed.userAssignedIdentityId(seed.UAMI_SANDBOX)], {
    principalId: seed.UAMI_SANDBOX_PRINCIPAL_ID,
    clientId: seed.UAMI_SANDBOX_CLIENT_ID,
  });
  t.match(uami.etag, /^"[0-9a-f]{8}-0000-0400-0000-[0-9a-f]{8}0000"$/);

  const sys = await client.fhirServices.get(RG, WS, seed.FHIR_SYS);
  t.match(sys.identity, { type: "SystemAssigned", principalId: seed.FHIR_SYS_PRINCIPAL_ID, tenantId: seed.TENANT_ID });
  t.equal(sys.encryption, undefined, "Microsoft-managed key");

  const names: string[] = [];
  for await (const service of client.fhirServices.listByWorkspace(RG, WS)) names.push(service.name ?? "");
  t.same(names.sort(), [`${WS}/${seed.FHIR_NOROLE}`, `${WS}/${seed.FHIR_SYS}`, `${WS}/${seed.FHIR_UAMI}`]);

  const raw = await sandboxRequest(sandbox, {
    path: `${seed.workspaceId()}/fhirservices?${API}`,
    host: "management.azure.com",
    headers: { authorization: `Bearer ${await armToken(sandbox)}` },
  });
  t.notOk("nextLink" in (raw.json as object), "list has no nextLink key");
  t.equal(raw.headers["content-type"], "application/json; charset=utf-8");
  t.equal(raw.headers.server, "Microsoft-HTTPAPI/2.0");
  t.match(raw.headers["x-ms-ratelimit-remaining-subscription-reads"], /^\d+$/);
});

t.test("ARM refuses requests without a valid token, api-version or parent", async (t) => {
  const sandbox = await startTestSandbox(t);
  const path = seed.fhirServiceId(seed.FHIR_SYS);
  const noToken = await sandboxRequest(sandbox, { path: `${path}?${API}`, host: "management.azure.com" });
  t.equal(noToken.status, 401);
  t.match(noToken.json, { error: { code: "AuthenticationFailed" } });
  t.match(noToken.headers["www-authenticate"], `Bearer authorization_uri="https://login.microsoftonline.com/${seed.TENANT_ID}", error="invalid_token"`);

  const garbage = await sandboxRequest(sandbox, { path: `${path}?${API}`, host: "management.azure.com", headers: { authorization: "Bearer abc.def.ghi" } });
  t.match(garbage.json, { error: { code: "InvalidAuthenticationToken" } });

  const minted = await sandboxRequest(sandbox, { method: "POST", path: "/_sandbox/tokens", body: { clientId: seed.SERVICE_APP.clientId, expiresInSeconds: -60 } });
  const expired = await sandboxRequest(sandbox, {
    path: `${path}?${API}`,
    host: "management.azure.com",
    headers: { authorization: `Bearer ${(minted.json as { access_token: string }).access_token}` },
  });
  t.equal(expired.status, 401);
  t.match(expired.json, { error: { code: "ExpiredAuthenticationToken" } });

  const vaultToken = (await sandboxCredential(sandbox).getToken("https://vault.azure.net/.default")).token;
  const wrongAudience = await sandboxRequest(sandbox, { path: `${path}?${API}`, host: "management.azure.com", headers: { authorization: `Bearer ${vaultToken}` } });
  t.match(wrongAudience.json, { error: { code: "InvalidAuthenticationTokenAudience" } });

  const authorization = `Bearer ${await armToken(sandbox)}`;
  const noVersion = await sandboxRequest(sandbox, { path, host: "management.azure.com", headers: { authorization } });
  t.equal(noVersion.status, 400);
  t.match(noVersion.json, { error: { code: "MissingApiVersionParameter" } });

  const encodedKey = await sandboxRequest(sandbox, { path: `${path}?api%2Dversion=2023-11-01`, host: "management.azure.com", headers: { authorization } });
  t.equal(encodedKey.status, 200, "percent-encoded query keys are decoded");

  const missing = await sandboxRequest(sandbox, { path: `${seed.fhirServiceId("fhir-none")}?${API}`, host: "management.azure.com", headers: { authorization } });
  t.equal(missing.status, 404);
  t.match(missing.json, { error: { code: "ResourceNotFound", message: /^The Resource 'Microsoft.HealthcareApis\/workspaces\/wssandbox\/fhirservices\/fhir-none' under resource group 'rg-sandbox' was not found/ } });

  const noParent = await sandboxRequest(sandbox, { path: `${seed.fhirServiceId("fhir-sys", "wsnone")}?${API}`, host: "management.azure.com", headers: { authorization } });
  t.match(noParent.json, { error: { code: "ParentResourceNotFound" } });

  const reader = `Bearer ${await armToken(sandbox, seed.READER_APP)}`;
  const forbidden = await sandboxRequest(sandbox, { path: `${path}?${API}`, host: "management.azure.com", headers: { authorization: reader } });
  t.equal(forbidden.status, 403);
  t.match(forbidden.json, { error: { code: "AuthorizationFailed" } });
});

t.test("a full PUT runs as an async operation shaped like real traffic", async (t) => {
  // Ten minutes, ended by moving the emulator's clock: it cannot end while the test looks at it running.
  const sandbox = await startTestSandbox(t, { lroMs: 600_000 });
  const authorization = `Bearer ${await armToken(sandbox)}`;
  const path = seed.fhirServiceId(seed.FHIR_SYS);
  const current = await sandboxRequest(sandbox, { path: `${path}?${API}`, host: "management.azure.com", headers: { authorization } });
  const body = current.json as Record<string, unknown> & { properties: Record<string, unknown> };
  const newKey = seed.keyUrl(seed.KV_SANDBOX, seed.KEY_RSA_2048, seed.VERSION_2);
  body.properties.encryption = { customerManagedKeyEncryption: { keyEncryptionKeyUrl: newKey } };

  const put = await sandboxRequest(sandbox, { method: "PUT", path: `${path}?${API}`, host: "management.azure.com", headers: { authorization }, body });
  t.equal(put.status, 200);
  t.match(put.json, { properties: { provisioningState: "Updating" } });
  t.notOk(put.headers.location, "no Location on PUT");
  t.match(put.headers["x-ms-ratelimit-remaining-subscription-writes"], /^\d+$/);
  t.match(put.headers.etag, /^"[0-9a-f-]+"$/);
  const asyncUrl = String(put.headers["azure-asyncoperation"]);
  const pattern = new RegExp(`^https://management\\.azure\\.com/subscriptions/${seed.SUBSCRIPTION_ID}/providers/Microsoft\\.HealthcareApis/locations/westus3/operationresults/([a-z0-9]{25})\\?api-version=2023-11-01$`);
  t.match(asyncUrl, pattern);
  const operationPath = new URL(asyncUrl).pathname + new URL(asyncUrl).search;

  const running = await sandboxRequest(sandbox, { path: operationPath, host: "management.azure.com", headers: { authorization } });
  t.equal(running.status, 200);
  t.same(Object.keys(running.json as object), ["id", "name", "status", "startTime"]);
  t.match(running.json, { status: "Running", startTime: /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$/ });
  const during = await sandboxRequest(sandbox, { path: `${path}?${API}`, host: "management.azure.com", headers: { authorization } });
  t.match(during.json, { properties: { provisioningState: "Updating" } });

  const conflict = await sandboxRequest(sandbox, { method: "PUT", path: `${path}?${API}`, host: "management.azure.com", headers: { authorization }, body });
  t.equal(conflict.status, 409);
  t.match(conflict.json, { error: { code: "Conflict" } });

  await advanceClock(sandbox, 600);
  const done = await sandboxRequest(sandbox, { path: operationPath, host: "management.azure.com", headers: { authorization } });
  t.match(done.json, { status: "Succeeded" });
  const after = await sandboxRequest(sandbox, { path: `${path}?${API}`, host: "management.azure.com", headers: { authorization } });
  t.match(after.json, { tags: { environment: "sandbox" }, properties: { provisioningState: "Succeeded", encryption: { customerManagedKeyEncryption: { keyEncryptionKeyUrl: newKey } } } });
  t.not((after.json as { etag: string }).etag, (put.json as { etag: string }).etag, "new etag after the operation");

  const local = await sandboxRequest(sandbox, { method: "PUT", path: `${path}?${API}`, headers: { authorization }, body });
  t.ok(String(local.headers["azure-asyncoperation"]).startsWith(`${sandbox.url}/subscriptions/`), "own-address requests get own-address URLs");
});

t.test("the SDK's create, update and delete pollers run to completion", async (t) => {
  const sandbox = await startTestSandbox(t, { lroMs: 200 });
  const client = armClient(sandbox);
  const created = await client.fhirServices.beginCreateOrUpdateAndWait(
    RG,
    WS,
    "fhir-new",
    {
      location: "westus3",
      kind: "fhir-R4",
      identity: { type: "UserAssigned", userAssignedIdentities: { [seed.userAssignedIdentityId(seed.UAMI_SANDBOX)]: {} } },
      encryption: { customerManagedKeyEncryption: { keyEncryptionKeyUrl: seed.keyUrl(seed.KV_SANDBOX, seed.KEY_RSA_3072, seed.VERSION_1) } },
      tags: { owner: "test" },
    },
    POLL,
  );
  t.equal(created.provisioningState, "Succeeded");
  t.equal(created.identity?.userAssignedIdentities?.[seed.userAssignedIdentityId(seed.UAMI_SANDBOX)]?.principalId, seed.UAMI_SANDBOX_PRINCIPAL_ID);
  t.equal(created.publicNetworkAccess, "Enabled");

  const patched = await client.fhirServices.beginUpdateAndWait(RG, "fhir-new", WS, { tags: { replaced: "yes" } }, POLL);
  t.same(patched.tags, { replaced: "yes" }, "tags are replaced, not merged");

  const norole = await client.fhirServices.beginUpdateAndWait(RG, seed.FHIR_UAMI, WS, { identity: { type: "SystemAssigned" } }, POLL);
  t.match(norole.identity, { type: "SystemAssigned", principalId: /^[0-9a-f-]{36}$/, tenantId: seed.TENANT_ID });

  await client.fhirServices.beginDeleteAndWait(RG, "fhir-new", WS, POLL);
  await t.rejects(client.fhirServices.get(RG, WS, "fhir-new"), { statusCode: 404, code: "ResourceNotFound" });
});

t.test("workspaces: synchronous create and update; delete as an async operation like a FHIR service's", async (t) => {
  // Ten minutes, ended by moving the emulator's clock; the SDK's poller is shown with a short one below.
  const sandbox = await startTestSandbox(t, { lroMs: 600_000 });
  const client = armClient(sandbox);
  const created = await client.workspaces.beginCreateOrUpdateAndWait(RG, "wsnew", { location: "westus3", tags: { owner: "test" } }, POLL);
  t.match(created, { name: "wsnew", properties: { provisioningState: "Succeeded" }, tags: { owner: "test" } }, "201 with Succeeded: no polling");
  const names: string[] = [];
  for await (const workspace of client.workspaces.listByResourceGroup(RG)) names.push(workspace.name ?? "");
  t.same(names.sort(), ["wsnew", WS]);
  const patched = await client.workspaces.beginUpdateAndWait(RG, "wsnew", { tags: { replaced: "yes" } }, POLL);
  t.same(patched.tags, { replaced: "yes" }, "PATCH replaces tags, synchronously");

  const authorization = `Bearer ${await armToken(sandbox)}`;
  const deleted = await sandboxRequest(sandbox, { method: "DELETE", path: `${seed.workspaceId("wsnew")}?${API}`, host: "management.azure.com", headers: { authorization } });
  t.equal(deleted.status, 202);
  t.equal(deleted.text, "");
  t.match(deleted.headers.location, /\/operationresults\/[a-z0-9]{25}\?api-version=2023-11-01&operationResultResponseType=Location$/);
  t.match(deleted.headers["azure-asyncoperation"], /\/operationresults\/[a-z0-9]{25}\?api-version=2023-11-01$/);
  t.equal((await client.workspaces.get(RG, "wsnew")).properties?.provisioningState, "Deleting");
  const location = new URL(String(deleted.headers.location));
  const pending = await sandboxRequest(sandbox, { path: location.pathname + location.search, host: "management.azure.com", headers: { authorization } });
  t.equal(pending.status, 202, "the Location URL answers 202 while running");
  await t.rejects(client.workspaces.beginCreateOrUpdateAndWait(RG, "wsnew", { location: "westus3" }, POLL), { statusCode: 409, code: "Conflict" }, "no PUT while deleting");
  await advanceClock(sandbox, 600);
  const done = await sandboxRequest(sandbox, { path: location.pathname + location.search, host: "management.azure.com", headers: { authorization } });
  t.equal(done.status, 200, "then 200");
  await t.rejects(client.workspaces.get(RG, "wsnew"), { statusCode: 404, code: "ResourceNotFound" });

  await sandboxRequest(sandbox, { method: "PUT", path: "/_sandbox/faults", body: { rules: [], lroDurationMs: 50 } });
  await client.workspaces.beginCreateOrUpdateAndWait(RG, "wsnew", { location: "westus3" }, POLL);
  await client.workspaces.beginDeleteAndWait(RG, "wsnew", POLL);
  await t.rejects(client.workspaces.get(RG, "wsnew"), { name: "RestError", statusCode: 404 }, "the SDK's delete poller runs to completion");
  await t.rejects(client.workspaces.beginDeleteAndWait(RG, WS, POLL), { statusCode: 409, code: "Conflict" }, "a workspace with FHIR services is not deleted");
});

t.test("the RP checks the key when it is set, and a failed operation reaches the caller", async (t) => {
  const sandbox = await startTestSandbox(t, { lroMs: 50 });
  const client = armClient(sandbox);
  const sys = await client.fhirServices.get(RG, WS, seed.FHIR_SYS);
  const cases: [string, string][] = [
    [seed.keyUrl(seed.KV_SANDBOX, seed.KEY_RSA_2048), "InvalidKeyEncryptionKeyUrl"],
    [seed.keyUrl(seed.KV_SANDBOX, seed.KEY_RSA_4096, seed.VERSION_1), "InvalidKeySize"],
    [seed.keyUrl(seed.KV_SANDBOX, seed.KEY_EC, seed.VERSION_1), "InvalidKeyType"],
    [seed.keyUrl(seed.KV_SANDBOX, seed.KEY_DISABLED, seed.VERSION_1), "KeyVaultKeyDisabled"],
    [seed.keyUrl(seed.KV_SANDBOX, seed.KEY_EXPIRED, seed.VERSION_1), "KeyVaultKeyExpired"],
    [seed.keyUrl(seed.KV_SANDBOX, seed.KEY_NOWRAP, seed.VERSION_1), "InvalidKeyOperations"],
    [seed.keyUrl(seed.KV_SANDBOX, seed.KEY_LONG_NAME, seed.VERSION_1), "KeyVaultKeyNameTooLong"],
    [seed.keyUrl(seed.KV_SANDBOX, "cmk-missing", seed.VERSION_1), "KeyVaultKeyNotFound"],
    [seed.keyUrl(seed.KV_NOPURGE, seed.KEY_RSA_2048, seed.VERSION_1), "KeyVaultPurgeProtectionRequired"],
    [seed.keyUrl(seed.KV_EAST, seed.KEY_RSA_2048, seed.VERSION_1), "KeyVaultRegionMismatch"],
    [seed.keyUrl(seed.KV_FIREWALL, seed.KEY_RSA_2048, seed.VERSION_1), "KeyVaultAccessForbidden"],
  ];
  for (const [url, code] of cases) {
    await t.rejects(client.fhirServices.beginCreateOrUpdateAndWait(RG, WS, seed.FHIR_SYS, withKey(sys, url), POLL), new RegExp(`long-running operation has failed. ${code}\\.`), code);
    const after = await client.fhirServices.get(RG, WS, seed.FHIR_SYS);
    t.equal(after.encryption, undefined, `${code}: the service keeps its previous (Microsoft-managed) key`);
    t.equal(after.provisioningState, "Failed");
  }

  const norole = await client.fhirServices.get(RG, WS, seed.FHIR_NOROLE);
  await t.rejects(
    client.fhirServices.beginCreateOrUpdateAndWait(RG, WS, seed.FHIR_NOROLE, withKey(norole, seed.keyUrl(seed.KV_SANDBOX, seed.KEY_RSA_2048, seed.VERSION_2)), POLL),
    /KeyVaultAccessForbidden/,
  );
  const ok = await client.fhirServices.beginCreateOrUpdateAndWait(RG, WS, seed.FHIR_SYS, withKey(sys, seed.keyUrl(seed.KV_SANDBOX, seed.KEY_RSA_3072, seed.VERSION_1)), POLL);
  t.equal(ok.provisioningState, "Succeeded");
});

t.test("identity rules: one type, one user-assigned identity that exists", async (t) => {
  const sandbox = await startTestSandbox(t);
  const client = armClient(sandbox);
  const base: FhirService = { location: "westus3", kind: "fhir-R4" };
  await t.rejects(
    client.fhirServices.beginCreateOrUpdateAndWait(RG, WS, "fhir-both", { ...base, identity: { type: "SystemAssigned,UserAssigned", userAssignedIdentities: { [seed.userAssignedIdentityId(seed.UAMI_SANDBOX)]: {} } } }, POLL),
    { statusCode: 400, code: "InvalidIdentityType" },
  );
  await t.rejects(
    client.fhirServices.beginCreateOrUpdateAndWait(
      RG,
      WS,
      "fhir-two",
      { ...base, identity: { type: "UserAssigned", userAssignedIdentities: { [seed.userAssignedIdentityId(seed.UAMI_SANDBOX)]: {}, [seed.userAssignedIdentityId(seed.UAMI_NOROLE)]: {} } } },
      POLL,
    ),
    { statusCode: 400, code: "InvalidUserAssignedIdentities" },
  );
  await t.rejects(client.fhirServices.beginCreateOrUpdateAndWait(RG, WS, "fhir-noloc", { kind: "fhir-R4" }, POLL), { statusCode: 400, code: "LocationRequired" });
});

t.test("fault rules: a 429 is retried by the SDK; an outcome rule fails the operation", async (t) => {
  const sandbox = await startTestSandbox(t, { lroMs: 50 });
  const { httpClient, exchanges } = recordingHttpClient(sandbox);
  const client = new HealthcareApisManagementClient(sandboxCredential(sandbox), seed.SUBSCRIPTION_ID, { httpClient });
  await sandboxRequest(sandbox, {
    method: "PUT",
    path: "/_sandbox/faults",
    body: { rules: [{ service: "arm", method: "GET", pathContains: "fhirservices/fhir-sys", status: 429, probability: 1, times: 1, retryAfterSeconds: 1 }] },
  });
  const sys = await client.fhirServices.get(RG, WS, seed.FHIR_SYS);
  const delay = retryDelay(exchanges, 429);
  t.ok(delay !== undefined && delay >= 1000 - TIMER_SLACK_MS, `retried ${delay?.toFixed(0)} ms after the 429 (Retry-After: 1)`);
  const log = (await sandboxRequest(sandbox, { path: "/_sandbox/requests" })).json as { path: string; status: number }[];
  t.same(log.filter((entry) => entry.path.endsWith("/fhir-sys")).map((entry) => entry.status), [429, 200]);

  // The operation lasts until the emulator's clock moves on, so the rule surely meets it running (with a
  // short one, a late first poll on a busy machine found it Succeeded already).
  await sandboxRequest(sandbox, {
    method: "PUT",
    path: "/_sandbox/faults",
    body: { rules: [{ service: "arm", pathContains: "operationresults", status: 200, probability: 1, times: 1, errorCode: "InternalServerError" }], lroDurationMs: 600_000 },
  });
  const update = client.fhirServices.beginCreateOrUpdateAndWait(RG, WS, seed.FHIR_SYS, withKey(sys, seed.keyUrl(seed.KV_SANDBOX, seed.KEY_RSA_2048, seed.VERSION_2)), POLL);
  update.catch(() => undefined);
  const fired = async () => ((await sandboxRequest(sandbox, { path: "/_sandbox/faults" })).json as { rules: { fired: number }[] }).rules[0]?.fired ?? 0;
  for (let i = 0; i < 500 && (await fired()) === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  await advanceClock(sandbox, 600);
  await t.rejects(update, /^The long-running operation has failed\. InternalServerError\. /, "the operation's error code reaches the caller");
});
