import { ResourceManagementClient } from "@azure/arm-resources";
import { SubscriptionClient } from "@azure/arm-resources-subscriptions";
import { AuthorizationManagementClient } from "@azure/arm-authorization";
import t from "tap";
import { seed } from "../../src/sandbox/index.js";
import { armToken, listAll, sandboxCredential, sandboxHttpClient, sandboxRequest, startTestSandbox } from "../helpers/sandbox.js";

/** ARM's own Microsoft.Resources (tenants, subscriptions, resource groups, resources, providers) through the SDK clients the Azure tools use. */

const FHIR_TYPE = "Microsoft.HealthcareApis/workspaces/fhirservices";

t.test("subscriptions and tenants: what `az login` and `az account show` read", async (t) => {
  const sandbox = await startTestSandbox(t);
  const options = { httpClient: sandboxHttpClient(sandbox) };
  const client = new SubscriptionClient(sandboxCredential(sandbox), options);
  const subscriptions = await listAll(client.subscriptions.list());
  t.same(subscriptions.map((subscription) => subscription.subscriptionId).sort(), [seed.SUBSCRIPTION_ID, seed.OTHER_SUBSCRIPTION_ID], "cmk-service is Contributor on both");
  t.match(subscriptions[0], { state: "Enabled", tenantId: seed.TENANT_ID, displayName: String, authorizationSource: "RoleBased" });
  t.match(await client.subscriptions.get(seed.OTHER_SUBSCRIPTION_ID), { id: `/subscriptions/${seed.OTHER_SUBSCRIPTION_ID}`, displayName: "cmk-sandbox-other" });
  await t.rejects(client.subscriptions.get("99999999-9999-9999-9999-999999999999"), { statusCode: 404, code: "SubscriptionNotFound" });
  t.same((await listAll(client.tenants.list())).map((tenant) => tenant.tenantId), [seed.TENANT_ID]);

  const reader = new SubscriptionClient(sandboxCredential(sandbox, seed.READER_APP), options);
  t.same(await listAll(reader.subscriptions.list()), [], "a principal without any role sees no subscription");
  await t.rejects(reader.subscriptions.get(seed.SUBSCRIPTION_ID), { statusCode: 403, code: "AuthorizationFailed" });
});

t.test("resource groups: get, list, check existence, create", async (t) => {
  const sandbox = await startTestSandbox(t);
  const client = new ResourceManagementClient(sandboxCredential(sandbox), seed.SUBSCRIPTION_ID, { httpClient: sandboxHttpClient(sandbox) });
  t.match(await client.resourceGroups.get(seed.RESOURCE_GROUP), { id: seed.resourceGroupId(), name: seed.RESOURCE_GROUP, location: "westus3", properties: { provisioningState: "Succeeded" } });
  t.same((await listAll(client.resourceGroups.list())).map((group) => group.name), [seed.RESOURCE_GROUP]);
  t.same(await client.resourceGroups.checkExistence(seed.RESOURCE_GROUP), { body: true });
  t.same(await client.resourceGroups.checkExistence("rg-missing"), { body: false });
  await t.rejects(client.resourceGroups.get("rg-missing"), { statusCode: 404, code: "ResourceGroupNotFound" });

  const created = await client.resourceGroups.createOrUpdate("rg-new", { location: "West US 3", tags: { team: "health" } });
  t.match(created, { name: "rg-new", location: "westus3", tags: { team: "health" } });
  t.same((await listAll(client.resourceGroups.list({ filter: "tagName eq 'team' and tagValue eq 'health'" }))).map((group) => group.name), ["rg-new"]);
  await t.rejects(client.resourceGroups.createOrUpdate("rg-new", { location: "eastus" }), { statusCode: 400, code: "InvalidResourceGroupLocation" });

  const other = new ResourceManagementClient(sandboxCredential(sandbox), seed.OTHER_SUBSCRIPTION_ID, { httpClient: sandboxHttpClient(sandbox) });
  t.same((await listAll(other.resourceGroups.list())).map((group) => group.name), [seed.OTHER_RESOURCE_GROUP], "each subscription lists its own groups");
});

t.test("resources: the subscription's and a group's, filtered by type, paged with $top, and one by id with the provider's api-version", async (t) => {
  const sandbox = await startTestSandbox(t);
  const client = new ResourceManagementClient(sandboxCredential(sandbox), seed.SUBSCRIPTION_ID, { httpClient: sandboxHttpClient(sandbox) });
  const vaults = await listAll(client.resources.list({ filter: "resourceType eq 'Microsoft.KeyVault/vaults'" }));
  t.same(vaults.map((vault) => vault.name).sort(), [seed.KV_EAST, seed.KV_FIREWALL, seed.KV_NOPURGE, seed.KV_SANDBOX], "what `az keyvault list` reads");

  const fhirServices = await listAll(client.resources.listByResourceGroup(seed.RESOURCE_GROUP, { filter: `resourceType eq '${FHIR_TYPE}'`, expand: "provisioningState" }));
  t.same(fhirServices.map((service) => service.id).sort(), [seed.FHIR_NOROLE, seed.FHIR_SYS, seed.FHIR_UAMI].map((name) => seed.fhirServiceId(name)).sort());
  t.match(fhirServices.find((service) => service.id === seed.fhirServiceId(seed.FHIR_SYS)), {
    name: `${seed.WORKSPACE}/${seed.FHIR_SYS}`,
    kind: "fhir-R4",
    location: "westus3",
    identity: { type: "SystemAssigned", principalId: seed.FHIR_SYS_PRINCIPAL_ID },
    provisioningState: "Succeeded",
  });
  t.same((await listAll(client.resources.list({ filter: `name eq '${seed.UAMI_SANDBOX}'` }))).map((resource) => resource.type), ["Microsoft.ManagedIdentity/userAssignedIdentities"]);
  t.same((await listAll(client.resources.list({ filter: "substringof('fhir-', name) and resourceType eq 'Microsoft.HealthcareApis/workspaces/fhirservices'" }))).length, 3);

  // Pages of two: the SDK follows nextLink until every resource is read, each once.
  const everything = await listAll(client.resources.list());
  const pages = [];
  for await (const page of client.resources.list({ top: 2 }).byPage()) pages.push(page.map((resource) => resource.id));
  t.ok(pages.length > 3, `${pages.length} pages`);
  t.ok(pages.slice(0, -1).every((page) => page.length === 2), "every page but the last holds two");
  t.same(pages.flat(), everything.map((resource) => resource.id));

  // `az resource show --ids` without --api-version: the provider's newest stable api-version, then a GET by id.
  const provider = await client.providers.get("Microsoft.HealthcareApis");
  const fhirType = provider.resourceTypes?.find((type) => type.resourceType === "workspaces/fhirservices");
  t.equal(fhirType?.apiVersions?.[0], "2023-11-01");
  const byId = await client.resources.getById(seed.fhirServiceId(seed.FHIR_SYS), fhirType?.apiVersions?.[0] ?? "");
  t.match(byId, { id: seed.fhirServiceId(seed.FHIR_SYS), type: FHIR_TYPE, properties: { provisioningState: "Succeeded" } });

  const unsupported = client.resources.list({ filter: "plan eq 'x'" });
  await t.rejects(listAll(unsupported), { statusCode: 400, code: "InvalidFilterInQueryString" });
});

t.test("resource providers: per subscription and at the tenant, with the types and api-versions served", async (t) => {
  const sandbox = await startTestSandbox(t);
  const client = new ResourceManagementClient(sandboxCredential(sandbox), seed.SUBSCRIPTION_ID, { httpClient: sandboxHttpClient(sandbox) });
  const namespaces = (await listAll(client.providers.list())).map((provider) => provider.namespace);
  t.same(namespaces, ["Microsoft.HealthcareApis", "Microsoft.KeyVault", "Microsoft.ManagedIdentity", "Microsoft.Authorization", "Microsoft.App", "Microsoft.Cache", "Microsoft.EventGrid", "Microsoft.Resources"]);
  t.match(await client.providers.get("microsoft.keyvault"), { namespace: "Microsoft.KeyVault", registrationState: "Registered", resourceTypes: [{ resourceType: "vaults", apiVersions: ["2026-02-01", "2023-07-01", "2023-02-01"] }] });
  t.match(await client.providers.getAtTenantScope("Microsoft.ManagedIdentity"), { id: "/providers/Microsoft.ManagedIdentity", resourceTypes: [{ resourceType: "userAssignedIdentities" }] });
  await t.rejects(client.providers.get("Microsoft.Compute"), { statusCode: 404, code: "InvalidResourceNamespace" });
  t.ok((await listAll(client.operations.list())).some((operation) => operation.name === "Microsoft.Resources/deployments/write"));
});

t.test("root-scope reads any signed-in principal may make: role definitions and provider operations", async (t) => {
  const sandbox = await startTestSandbox(t);
  // portal-reader holds no Azure role at all.
  const credential = sandboxCredential(sandbox, seed.READER_APP);
  const authorization = new AuthorizationManagementClient(credential, seed.SUBSCRIPTION_ID, { httpClient: sandboxHttpClient(sandbox) });
  const definition = await authorization.roleDefinitions.getById(`/providers/Microsoft.Authorization/roleDefinitions/${seed.ROLE.keyVaultCryptoServiceEncryptionUser}`);
  t.equal(definition.roleName, "Key Vault Crypto Service Encryption User");
  t.equal(definition.id, `/providers/Microsoft.Authorization/roleDefinitions/${seed.ROLE.keyVaultCryptoServiceEncryptionUser}`);
  t.ok((await listAll(authorization.roleDefinitions.list("/"))).length >= 9);
  const authorizationHeader = `Bearer ${await armToken(sandbox, seed.READER_APP)}`;
  for (const namespace of ["Microsoft.HealthcareApis", "Microsoft.ManagedIdentity", "Microsoft.KeyVault"]) {
    const response = await sandboxRequest(sandbox, { path: `/providers/${namespace}/operations?api-version=2023-11-01`, host: "management.azure.com", headers: { authorization: authorizationHeader } });
    t.equal(response.status, 200, namespace);
    t.ok((response.json as { value: { name: string }[] }).value.some((operation) => operation.name.startsWith(`${namespace}/`)));
  }
  // Anything else still needs a role.
  await t.rejects(authorization.roleDefinitions.list(`/subscriptions/${seed.SUBSCRIPTION_ID}`).next(), { statusCode: 403, code: "AuthorizationFailed" });
});
