import { KeyClient } from "@azure/keyvault-keys";
import t from "tap";
import { seed } from "../../src/sandbox/index.js";
import { advanceClock } from "../helpers/sandbox-admin.js";
import { armToken, sandboxCredential, sandboxHttpClient, sandboxRequest, startTestSandbox } from "../helpers/sandbox.js";

/**
 * What differs by api-version, as the recordings show it (issue 14, item 7; test/fixtures/azure-rest/SUMMARY.md).
 */

const sandbox = await startTestSandbox(t, { lroMs: 600_000 });
t.beforeEach(async () => {
  await sandboxRequest(sandbox, { method: "POST", path: "/_sandbox/reset" });
});

t.test("Key Vault key attributes: exportable from 7.4, hsmPlatform from 7.5 on (dated versions too)", async (t) => {
  const authorization = `Bearer ${(await sandboxCredential(sandbox).getToken("https://vault.azure.net/.default")).token}`;
  const attributesAt = async (apiVersion: string, host = `${seed.KV_SANDBOX}.vault.azure.net`, key = seed.KEY_RSA_2048) =>
    ((await sandboxRequest(sandbox, { path: `/keys/${key}/?api-version=${apiVersion}`, host, headers: { authorization } })).json as { attributes: Record<string, unknown> }).attributes;
  const recorded = ["enabled", "created", "updated", "recoveryLevel", "recoverableDays"];
  // The recordings: 7.3 (azure-sdk-for-js, 2022), 7.4-preview.1 (2022-11), 7.5-preview.1 (azure-cli, 2023-11).
  t.same(Object.keys(await attributesAt("7.3")), recorded, "7.3");
  t.same(Object.keys(await attributesAt("7.4-preview.1")), [...recorded, "exportable"], "7.4-preview.1");
  const preview = await attributesAt("7.5-preview.1");
  t.same(Object.keys(preview), [...recorded, "exportable", "hsmPlatform"], "7.5-preview.1");
  t.equal(preview.hsmPlatform, "0", "a string, as recorded");
  for (const version of ["7.5", "7.6", "2025-07-01"]) t.equal((await attributesAt(version)).hsmPlatform, "0", version);
  const hsmAuthorization = `Bearer ${(await sandboxCredential(sandbox).getToken("https://managedhsm.azure.net/.default")).token}`;
  const hsm = await sandboxRequest(sandbox, { path: `/keys/${seed.KEY_HSM_3072}/?api-version=7.5`, host: `${seed.MANAGED_HSM}.managedhsm.azure.net`, headers: { authorization: hsmAuthorization } });
  t.equal((hsm.json as { attributes: Record<string, unknown> }).attributes.hsmPlatform, "0", "on a Managed HSM too");
  const key = await new KeyClient(seed.vaultUrl(seed.KV_SANDBOX), sandboxCredential(sandbox), { httpClient: sandboxHttpClient(sandbox) }).getKey(seed.KEY_RSA_2048);
  t.equal(key.properties.hsmPlatform, "0", "the SDK (api-version 2025-07-01 by default) reads it");
});

t.test("HealthcareApis 2021-11-01 callers get no systemData and no empty tags, as recorded; 2023-11-01 callers get both", async (t) => {
  const authorization = `Bearer ${await armToken(sandbox)}`;
  const get = async (path: string, apiVersion: string) =>
    (await sandboxRequest(sandbox, { path: `${path}?api-version=${apiVersion}`, host: "management.azure.com", headers: { authorization } })).json as Record<string, unknown>;
  // The recorded workspace: {"id","name","type","etag","location","properties":{...}}.
  t.same(Object.keys(await get(seed.workspaceId(), "2021-11-01")), ["id", "name", "type", "etag", "location", "properties"], "workspace, as recorded");
  t.same(Object.keys(await get(seed.fhirServiceId(seed.FHIR_SYS), "2021-11-01")), ["id", "name", "type", "etag", "location", "kind", "tags", "properties", "identity"], "tags that are set stay");
  const norole = await get(seed.fhirServiceId(seed.FHIR_NOROLE), "2021-11-01");
  t.notOk("tags" in norole || "systemData" in norole, "fhir-norole has no tags: none are sent");
  const listed = (await get(`${seed.workspaceId()}/fhirservices`, "2021-11-01")).value as Record<string, unknown>[];
  t.ok(listed.length > 0 && listed.every((service) => !("systemData" in service)), "lists too");

  const current = await get(seed.fhirServiceId(seed.FHIR_NOROLE), "2023-11-01");
  t.match(current, { tags: {}, systemData: { createdByType: "Application" } }, "2023-11-01 sends both");
  const put = await sandboxRequest(sandbox, { method: "PUT", path: `${seed.fhirServiceId(seed.FHIR_NOROLE)}?api-version=2021-11-01`, host: "management.azure.com", headers: { authorization }, body: { location: "westus3", kind: "fhir-R4", identity: { type: "SystemAssigned" } } });
  t.equal(put.status, 200);
  t.notOk("systemData" in (put.json as object), "a PUT's answer too");
  t.ok("systemData" in (await get(seed.fhirServiceId(seed.FHIR_NOROLE), "2023-11-01")), "the world still has it: only the answer is shaped");
});

t.test("a DELETE's Location URL: 202 while the operation runs, then 200 with no body, as recorded", async (t) => {
  const authorization = `Bearer ${await armToken(sandbox)}`;
  const deleted = await sandboxRequest(sandbox, { method: "DELETE", path: `${seed.fhirServiceId(seed.FHIR_NOROLE)}?api-version=2021-11-01`, host: "management.azure.com", headers: { authorization } });
  t.equal(deleted.status, 202);
  const location = new URL(String(deleted.headers.location));
  t.equal(location.searchParams.get("operationResultResponseType"), "Location");
  const poll = () => sandboxRequest(sandbox, { path: location.pathname + location.search, host: "management.azure.com", headers: { authorization } });
  const running = await poll();
  t.equal(running.status, 202, "still running");
  t.match(running.headers.location, location.pathname);
  await advanceClock(sandbox, 600);
  const done = await poll();
  // azure-powershell's DICOM recording (AzHealthcareDicomService.Recording.json, 2021-11-01, the same RP) shows the
  // Location GET of a finished delete answering 200 with Content-Length 0. OperationResults_Get defines a body
  // for 200, but the recording is what the RP does, and the CLI's 2021-11-01 recording polls only Azure-AsyncOperation.
  t.equal(done.status, 200);
  t.equal(done.text, "");
  t.equal(done.headers["content-length"], "0");
  const asyncOperation = new URL(String(deleted.headers["azure-asyncoperation"]));
  t.match((await sandboxRequest(sandbox, { path: asyncOperation.pathname + asyncOperation.search, host: "management.azure.com", headers: { authorization } })).json, { status: "Succeeded" }, "the Azure-AsyncOperation URL has the body");
});
