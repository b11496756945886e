import { AuthorizationManagementClient } from "@azure/arm-authorization";
import { HealthcareApisManagementClient } from "@azure/arm-healthcareapis";
import { KeyVaultManagementClient } from "@azure/arm-keyvault";
import { ManagedServiceIdentityClient } from "@azure/arm-msi";
import t from "tap";
import { seed } from "../../src/sandbox/index.js";
import { armToken, sandboxCredential, sandboxHttpClient, sandboxRequest, startTestSandbox } from "../helpers/sandbox.js";

/** api-contract v1.1, "Seed additions": subscription 3333… and the approver app. */

t.test("the second subscription holds rg-other, wsother, fhir-other (CMK on kvsandbox) and uami-other", async (t) => {
  const sandbox = await startTestSandbox(t);
  const options = { httpClient: sandboxHttpClient(sandbox) };
  const credential = sandboxCredential(sandbox);

  const healthcare = new HealthcareApisManagementClient(credential, seed.OTHER_SUBSCRIPTION_ID, options);
  const service = await healthcare.fhirServices.get(seed.OTHER_RESOURCE_GROUP, seed.OTHER_WORKSPACE, seed.FHIR_OTHER);
  t.equal(service.id, seed.FHIR_OTHER_ID);
  t.equal(service.location, seed.LOCATION);
  t.match(service.identity, { type: "SystemAssigned", principalId: seed.FHIR_OTHER_PRINCIPAL_ID });
  t.equal(service.encryption?.customerManagedKeyEncryption?.keyEncryptionKeyUrl, seed.keyUrl(seed.KV_SANDBOX, seed.KEY_RSA_2048, seed.VERSION_1));
  const workspace = await healthcare.workspaces.get(seed.OTHER_RESOURCE_GROUP, seed.OTHER_WORKSPACE);
  t.equal(workspace.location, seed.LOCATION);
  await t.rejects(healthcare.workspaces.get(seed.RESOURCE_GROUP, seed.WORKSPACE), { statusCode: 404, code: "ResourceGroupNotFound" }, "rg-sandbox is in the first subscription only");

  const identities = new ManagedServiceIdentityClient(credential, seed.OTHER_SUBSCRIPTION_ID, options);
  const uami = await identities.userAssignedIdentities.get(seed.OTHER_RESOURCE_GROUP, seed.UAMI_OTHER);
  t.equal(uami.id, seed.UAMI_OTHER_ID);
  t.equal(uami.principalId, seed.UAMI_OTHER_PRINCIPAL_ID);
  const listed: string[] = [];
  for await (const identity of identities.userAssignedIdentities.listBySubscription()) listed.push(identity.name ?? "");
  t.same(listed, [seed.UAMI_OTHER], "a subscription lists its own identities only");

  const vaults = new KeyVaultManagementClient(credential, seed.OTHER_SUBSCRIPTION_ID, options);
  const vaultNames: string[] = [];
  for await (const vault of vaults.vaults.listBySubscription()) vaultNames.push(vault.name ?? "");
  t.same(vaultNames, [], "every seed vault is in the first subscription");

  // Both identities hold Key Vault Crypto Service Encryption User on kvsandbox; the service is Contributor on both subscriptions.
  const authorization = new AuthorizationManagementClient(credential, seed.SUBSCRIPTION_ID, options);
  for (const principalId of [seed.FHIR_OTHER_PRINCIPAL_ID, seed.UAMI_OTHER_PRINCIPAL_ID]) {
    const roles: string[] = [];
    for await (const assignment of authorization.roleAssignments.listForScope(seed.vaultId(seed.KV_SANDBOX).slice(1), { filter: `principalId eq '${principalId}'` })) {
      roles.push(assignment.roleDefinitionId?.split("/").pop() ?? "");
    }
    t.same(roles, [seed.ROLE.keyVaultCryptoServiceEncryptionUser], principalId);
  }
  const otherAuthorization = new AuthorizationManagementClient(credential, seed.OTHER_SUBSCRIPTION_ID, options);
  const serviceRoles: string[] = [];
  for await (const assignment of otherAuthorization.roleAssignments.listForScope(`subscriptions/${seed.OTHER_SUBSCRIPTION_ID}`, { filter: `principalId eq '${seed.SERVICE_APP.objectId}'` })) {
    serviceRoles.push(`${assignment.scope} ${assignment.roleDefinitionId}`);
  }
  t.same(serviceRoles, [`/subscriptions/${seed.OTHER_SUBSCRIPTION_ID} ${seed.roleDefinitionId(seed.ROLE.contributor, seed.OTHER_SUBSCRIPTION_ID)}`]);

  // fhir-other's identity reaches its key: its data plane answers.
  const metadata = await sandboxRequest(sandbox, { path: "/metadata", host: `${seed.OTHER_WORKSPACE}-${seed.FHIR_OTHER}.fhir.azurehealthcareapis.com` });
  t.equal(metadata.status, 200);
});

t.test("ARM answers 404 SubscriptionNotFound for a subscription it does not know, before RBAC", async (t) => {
  const sandbox = await startTestSandbox(t);
  const authorization = `Bearer ${await armToken(sandbox)}`;
  const unknown = "44444444-4444-4444-4444-444444444444";
  const path = `/subscriptions/${unknown}/resourceGroups/rg/providers/Microsoft.HealthcareApis/workspaces/ws/fhirservices/x?api-version=2023-11-01`;
  const response = await sandboxRequest(sandbox, { path, host: "management.azure.com", headers: { authorization } });
  t.equal(response.status, 404);
  t.match(response.json, { error: { code: "SubscriptionNotFound", message: `The subscription '${unknown}' could not be found.` } });
  const healthcare = new HealthcareApisManagementClient(sandboxCredential(sandbox), unknown, { httpClient: sandboxHttpClient(sandbox) });
  await t.rejects(healthcare.fhirServices.get("rg", "ws", "x"), { statusCode: 404, code: "SubscriptionNotFound" });
});

t.test("portal-approver gets tokens for api://cmk-service carrying CMK.Approver", async (t) => {
  const sandbox = await startTestSandbox(t);
  const token = await sandboxCredential(sandbox, seed.APPROVER_APP).getToken(`${seed.SERVICE_API_AUDIENCE}/.default`);
  const claims = JSON.parse(Buffer.from(token.token.split(".")[1] ?? "", "base64url").toString()) as Record<string, unknown>;
  t.equal(seed.APPROVER_APP.clientId, "88888888-8888-8888-8888-888888888888");
  t.match(claims, { appid: seed.APPROVER_APP.clientId, roles: ["CMK.Approver"], oid: seed.APPROVER_APP.objectId });
});
