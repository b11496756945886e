import { HealthcareApisManagementClient } from "@azure/arm-healthcareapis";
import t from "tap";
import { seed } from "../../src/sandbox/index.js";
import { sandboxCredential, sandboxHttpClient, sandboxRequest, startTestSandbox } from "../helpers/sandbox.js";

const host = (service: string) => `${seed.WORKSPACE}-${service}.fhir.azurehealthcareapis.com`;

t.test("GET /metadata answers while the service can use its key, 500 otherwise", async (t) => {
  const sandbox = await startTestSandbox(t, { lroMs: 50 });
  const metadata = (service: string) => sandboxRequest(sandbox, { path: "/metadata", host: host(service) });

  const ok = await metadata(seed.FHIR_SYS);
  t.equal(ok.status, 200);
  t.match(ok.json, { resourceType: "CapabilityStatement", fhirVersion: "4.0.1", url: `https://${host(seed.FHIR_SYS)}/metadata` });
  t.match(ok.headers["content-type"], /^application\/fhir\+json/);

  t.equal((await sandboxRequest(sandbox, { path: "/metadata", host: "wssandbox-nope.fhir.azurehealthcareapis.com" })).status, 404);
  t.equal((await sandboxRequest(sandbox, { path: "/Patient", host: host(seed.FHIR_SYS) })).status, 404);

  // Put fhir-sys on a key, then break the key in each way the docs list.
  const client = new HealthcareApisManagementClient(sandboxCredential(sandbox), seed.SUBSCRIPTION_ID, { httpClient: sandboxHttpClient(sandbox) });
  const sys = await client.fhirServices.get(seed.RESOURCE_GROUP, seed.WORKSPACE, seed.FHIR_SYS);
  const keyUrl = seed.keyUrl(seed.KV_SANDBOX, seed.KEY_RSA_3072, seed.VERSION_1);
  await client.fhirServices.beginCreateOrUpdateAndWait(
    seed.RESOURCE_GROUP,
    seed.WORKSPACE,
    seed.FHIR_SYS,
    { ...sys, encryption: { customerManagedKeyEncryption: { keyEncryptionKeyUrl: keyUrl } } },
    { updateIntervalInMs: 50 },
  );
  t.equal((await metadata(seed.FHIR_SYS)).status, 200);

  const scenario = (body: unknown) => sandboxRequest(sandbox, { method: "POST", path: "/_sandbox/scenarios", body });
  const breakages: [unknown, unknown][] = [
    [{ action: "disableKey", keyUrl }, { action: "enableKey", keyUrl }],
    [{ action: "deleteKey", keyUrl }, { action: "recoverKey", keyUrl }],
    [{ action: "disableIdentity", fhirServiceId: seed.fhirServiceId(seed.FHIR_SYS) }, { action: "enableIdentity", principalId: seed.FHIR_SYS_PRINCIPAL_ID }],
    [
      { action: "removeRoleAssignments", principalId: seed.FHIR_SYS_PRINCIPAL_ID },
      { action: "addRoleAssignment", principalId: seed.FHIR_SYS_PRINCIPAL_ID, role: "Key Vault Crypto Service Encryption User", scope: seed.vaultId(seed.KV_SANDBOX) },
    ],
  ];
  for (const [breakIt, fixIt] of breakages) {
    const action = (breakIt as { action: string }).action;
    t.equal((await scenario(breakIt)).status, 200, action);
    const down = await metadata(seed.FHIR_SYS);
    t.equal(down.status, 500, `${action}: 500`);
    t.match(down.json, { resourceType: "OperationOutcome", issue: [{ severity: "error", code: "exception" }] });
    t.equal((await scenario(fixIt)).status, 200);
    t.equal((await metadata(seed.FHIR_SYS)).status, 200, `${action}: back after the fix`);
  }
});
