import { HealthcareApisManagementClient } from "@azure/arm-healthcareapis";
import { ResourceManagementClient } from "@azure/arm-resources";
import t from "tap";
import { seed } from "../../src/sandbox/index.js";
import { listAll, sandboxCredential, sandboxHttpClient, sandboxRequest, startTestSandbox } from "../helpers/sandbox.js";
import { sandboxRequests } from "../helpers/sandbox-admin.js";

/** `createFleet` (api-contract v1.1, "Sandbox admin additions") and the paged lists fleet discovery reads. */

const KEY = seed.keyUrl(seed.KV_SANDBOX, seed.KEY_RSA_2048, seed.VERSION_1);
const FHIR_TYPE = "Microsoft.HealthcareApis/workspaces/fhirservices";

t.test("createFleet makes N services over the subscriptions and workspaces, each with CMK and its identity's key role", async (t) => {
  const sandbox = await startTestSandbox(t);
  const scenario = (body: object) => sandboxRequest(sandbox, { method: "POST", path: "/_sandbox/scenarios", body });
  const answer = await scenario({ action: "createFleet", count: 1000, keyUrl: KEY, subscriptions: [seed.SUBSCRIPTION_ID, seed.OTHER_SUBSCRIPTION_ID] });
  t.equal(answer.status, 200);
  const { created, fhirServiceIds } = answer.json as { created: number; fhirServiceIds: string[] };
  t.equal(created, 1000);
  t.equal(new Set(fhirServiceIds).size, 1000);
  t.same(fhirServiceIds.map((id) => id.split("/").pop()), Array.from({ length: 1000 }, (_, index) => `fleet-${index}`), "fleet-0 … fleet-999");
  const inSubscription = (subscriptionId: string) => fhirServiceIds.filter((id) => id.startsWith(`/subscriptions/${subscriptionId}/`));
  t.equal(inSubscription(seed.SUBSCRIPTION_ID).length, 500, "split evenly over the subscriptions");
  t.equal(inSubscription(seed.OTHER_SUBSCRIPTION_ID).length, 500);
  t.same(new Set(inSubscription(seed.OTHER_SUBSCRIPTION_ID).map((id) => id.split("/")[4])), new Set([seed.OTHER_RESOURCE_GROUP]), "in the subscription's resource group");
  const workspaceOf = (id: string) => id.split("/")[8];
  t.same([...new Set(inSubscription(seed.SUBSCRIPTION_ID).map(workspaceOf))], ["wsfleet0", "wsfleet1", "wsfleet2", "wsfleet3", "wsfleet4"], "one workspace per 100 services");

  const options = { httpClient: sandboxHttpClient(sandbox) };
  const healthcare = new HealthcareApisManagementClient(sandboxCredential(sandbox), seed.OTHER_SUBSCRIPTION_ID, options);
  const service = await healthcare.fhirServices.get(seed.OTHER_RESOURCE_GROUP, "wsfleet4", "fleet-999");
  t.match(service, { location: "westus3", kind: "fhir-R4", provisioningState: "Succeeded", identity: { type: "SystemAssigned", principalId: String } });
  t.equal(service.encryption?.customerManagedKeyEncryption?.keyEncryptionKeyUrl, KEY);

  // Each identity holds the key role: the FHIR data plane (which checks key access on every request) answers.
  for (const name of ["fleet-0", "fleet-999"]) {
    const workspace = workspaceOf(fhirServiceIds.find((id) => id.endsWith(`/${name}`)) ?? "");
    const metadata = await sandboxRequest(sandbox, { path: "/metadata", host: `${workspace}-${name}.fhir.azurehealthcareapis.com` });
    t.equal(metadata.status, 200, `${name} reaches its key`);
  }
  await scenario({ action: "removeRoleAssignments", fhirServiceId: fhirServiceIds[0] });
  t.equal((await sandboxRequest(sandbox, { path: "/metadata", host: "wsfleet0-fleet-0.fhir.azurehealthcareapis.com" })).status, 500, "without its role it loses the key");

  t.match(await scenario({ action: "createFleet", count: 10, keyUrl: KEY }), { status: 409, json: { error: { code: "FleetExists" } } }, "the names are taken");
  t.match(await scenario({ action: "createFleet", count: 0, keyUrl: KEY }), { status: 400, json: { error: { code: "InvalidScenario" } } });
  t.match(await scenario({ action: "createFleet", count: 1, keyUrl: seed.keyUrl(seed.KV_SANDBOX, seed.KEY_RSA_2048) }), { status: 400, json: { error: { code: "InvalidKeyUrl" } } });
  t.match(await scenario({ action: "createFleet", count: 1, keyUrl: seed.keyUrl(seed.KV_SANDBOX, "cmk-none", seed.VERSION_1) }), { status: 404, json: { error: { code: "KeyNotFound" } } });
  t.match(await scenario({ action: "createFleet", count: 1, keyUrl: KEY, subscriptions: ["99999999-9999-9999-9999-999999999999"] }), { status: 404, json: { error: { code: "SubscriptionNotFound" } } });
  await sandboxRequest(sandbox, { method: "POST", path: "/_sandbox/reset" });
  t.match(await scenario({ action: "createFleet", count: 7, keyUrl: KEY, workspaces: 3 }), { status: 200, json: { created: 7 } }, "after a reset the names are free again");
});

t.test("a fleet on a Managed HSM key: each identity holds the HSM's local key role", async (t) => {
  const sandbox = await startTestSandbox(t);
  const hsmKey = seed.hsmKeyUrl(seed.MANAGED_HSM, seed.KEY_HSM_3072, seed.VERSION_1);
  const answer = await sandboxRequest(sandbox, { method: "POST", path: "/_sandbox/scenarios", body: { action: "createFleet", count: 3, keyUrl: hsmKey } });
  t.match(answer, { status: 200, json: { created: 3 } });
  for (const name of ["fleet-0", "fleet-2"]) {
    t.equal((await sandboxRequest(sandbox, { path: "/metadata", host: `wsfleet0-${name}.fhir.azurehealthcareapis.com` })).status, 200, `${name} reaches the HSM key`);
  }
  // The grants are the HSM's own: its local RBAC lists one per fleet identity, on the key.
  const token = (await sandboxCredential(sandbox).getToken("https://managedhsm.azure.net/.default")).token;
  const local = await sandboxRequest(sandbox, {
    path: `/keys/${seed.KEY_HSM_3072}/providers/Microsoft.Authorization/roleAssignments?api-version=7.5`,
    host: `${seed.MANAGED_HSM}.managedhsm.azure.net`,
    headers: { authorization: `Bearer ${token}` },
  });
  t.equal(local.status, 200);
  const principals = new Set(((local.json as { value: { properties: { principalId: string } }[] }).value).map((assignment) => assignment.properties.principalId));
  const healthcare = new HealthcareApisManagementClient(sandboxCredential(sandbox), seed.SUBSCRIPTION_ID, { httpClient: sandboxHttpClient(sandbox) });
  for (const service of await listAll(healthcare.fhirServices.listByWorkspace(seed.RESOURCE_GROUP, "wsfleet0"))) {
    t.ok(principals.has(service.identity?.principalId ?? ""), `${service.name}'s identity has a local assignment`);
  }
  t.match(
    await sandboxRequest(sandbox, { method: "POST", path: "/_sandbox/scenarios", body: { action: "createFleet", count: 1, keyUrl: seed.hsmKeyUrl(seed.MANAGED_HSM, "cmk-none", seed.VERSION_1) } }),
    { status: 404, json: { error: { code: "KeyNotFound" } } },
  );
});

t.test("fleet discovery with thousands: paged workspace, FHIR service and resource lists", async (t) => {
  const sandbox = await startTestSandbox(t);
  const count = 2500;
  t.equal((await sandboxRequest(sandbox, { method: "POST", path: "/_sandbox/scenarios", body: { action: "createFleet", count, keyUrl: KEY, workspaces: 5 } })).status, 200);
  const options = { httpClient: sandboxHttpClient(sandbox) };
  const credential = sandboxCredential(sandbox);
  const healthcare = new HealthcareApisManagementClient(credential, seed.SUBSCRIPTION_ID, options);
  const since = (await sandboxRequests(sandbox)).at(-1)?.seq ?? 0;

  const workspaces = await listAll(healthcare.workspaces.listBySubscription());
  t.same(workspaces.map((workspace) => workspace.name).sort(), [seed.WORKSPACE, "wsfleet0", "wsfleet1", "wsfleet2", "wsfleet3", "wsfleet4"].sort());
  const inWorkspace = await listAll(healthcare.fhirServices.listByWorkspace(seed.RESOURCE_GROUP, "wsfleet2"));
  t.equal(inWorkspace.length, 500, "500 in each of the five workspaces");
  const pages = (await sandboxRequests(sandbox, since)).filter((entry) => entry.path.endsWith("/workspaces/wsfleet2/fhirservices"));
  t.equal(pages.length, 5, "in pages of 100");

  // Every FHIR service of the subscription in one paged list: the seed's three and the fleet.
  const resources = new ResourceManagementClient(credential, seed.SUBSCRIPTION_ID, options);
  const services = await listAll(resources.resources.list({ filter: `resourceType eq '${FHIR_TYPE}'` }));
  t.equal(services.length, count + 3);
  t.equal(new Set(services.map((service) => service.id)).size, count + 3, "each once");
  const byGroup = await listAll(resources.resources.listByResourceGroup(seed.RESOURCE_GROUP, { filter: `resourceType eq '${FHIR_TYPE}'`, top: 1000 }));
  t.equal(byGroup.length, count + 3);
  const resourcePages = (await sandboxRequests(sandbox, since)).filter((entry) => entry.path.endsWith("/resources"));
  t.equal(resourcePages.length, 6, "three pages of 1,000 for each list");
});
