import { DeploymentsClient, type Deployment } from "@azure/arm-resourcesdeployments";
import { ManagedServiceIdentityClient } from "@azure/arm-msi";
import { readFile } from "node:fs/promises";
import t from "tap";
import { loadConfig } from "../../src/config.js";
import { seed, type RunningSandbox } from "../../src/sandbox/index.js";
import { formatAjv, validateParameters, validateTemplate } from "../helpers/arm-template-format.js";
import { armToken, sandboxCredential, sandboxHttpClient, sandboxRequest, startTestSandbox } from "../helpers/sandbox.js";

/**
 * deploy/cmk-service.json, cmk-service's own infrastructure, validated and deployed to the sandbox
 * through @azure/arm-resourcesdeployments as `az deployment group create -g rg-sandbox --template-file
 * deploy/cmk-service.json --parameters @deploy/cmk-service.parameters.json` sends it, then every
 * resource read back through ARM: the identity, the role (the actions of deploy/cmk-service-role.json)
 * and its assignment, Redis with an access policy for the identity, the two container apps with the
 * configuration the service needs, and the Key Vault system topic with its webhook subscription.
 */

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const template = JSON.parse(await readFile(new URL("../../deploy/cmk-service.json", import.meta.url), "utf8")) as Json;
const parametersFile = JSON.parse(await readFile(new URL("../../deploy/cmk-service.parameters.json", import.meta.url), "utf8")) as Json;
const RG = seed.resourceGroupId();

/** deploy/cmk-service-role.json, the role `az role definition create` takes (test/deploy/role-definitions.test.ts checks its actions). */
async function loadRole(): Promise<{ Name: string; Description: string; Actions: string[]; NotActions: string[]; DataActions: string[]; NotDataActions: string[] }> {
  return JSON.parse(await readFile(new URL("../../deploy/cmk-service-role.json", import.meta.url), "utf8")) as Awaited<ReturnType<typeof loadRole>>;
}
const DEPLOYMENTS = `${RG}/providers/Microsoft.Resources/deployments`;

function body(templateBody: Json, overrides: Record<string, unknown> = {}): Deployment {
  const parameters = { ...parametersFile.parameters, ...Object.fromEntries(Object.entries(overrides).map(([name, value]) => [name, { value }])) };
  return { properties: { template: templateBody, parameters, mode: "Incremental" } };
}

async function arm(sandbox: RunningSandbox, app: seed.SeedApp, method: string, path: string, payload?: object, apiVersion = "2025-04-01") {
  return sandboxRequest(sandbox, {
    method,
    path: path.includes("?") ? path : `${path}?api-version=${apiVersion}`,
    host: "management.azure.com",
    headers: { authorization: `Bearer ${await armToken(sandbox, app)}` },
    ...(payload ? { body: payload } : {}),
  });
}

/** The deploying principal: Owner at the subscription (a custom role assignable there needs roleDefinitions/write there). */
async function makeOwner(sandbox: RunningSandbox, app: seed.SeedApp): Promise<void> {
  const answer = await sandboxRequest(sandbox, { method: "POST", path: "/_sandbox/scenarios", body: { action: "addRoleAssignment", principalId: app.objectId, role: "Owner", scope: `/subscriptions/${seed.SUBSCRIPTION_ID}` } });
  if (answer.status !== 200) throw new Error(`addRoleAssignment: ${answer.status} ${answer.text}`);
}

const roleResource = () => (template.resources as Json[]).find((resource) => resource.type === "Microsoft.Authorization/roleDefinitions") as Json;

t.test("the template and its parameters file have the deployment formats, and the template's role is deploy/cmk-service-role.json's", async (t) => {
  t.ok(validateTemplate(template), `template: ${formatAjv.errorsText(validateTemplate.errors)}`);
  t.ok(validateParameters(parametersFile), `parameters file: ${formatAjv.errorsText(validateParameters.errors)}`);
  const role = await loadRole();
  const [permissions] = roleResource().properties.permissions as Json[];
  t.same(permissions, { actions: role.Actions, notActions: role.NotActions, dataActions: role.DataActions, notDataActions: role.NotDataActions }, "the same actions, in the same order: no drift");
  t.equal(roleResource().properties.description, role.Description);
  t.equal(template.parameters.roleName.defaultValue, role.Name);
  const declared = Object.keys(template.parameters as object);
  t.ok(Object.keys(parametersFile.parameters as object).every((name) => declared.includes(name)), "the parameters file sets only declared parameters");
  t.notMatch(JSON.stringify(template), /"Owner"|"Contributor"|8e3af657-a8ff-443c-a75c-2fe8c4bcb635|b24988ac-6180-42a0-ab88-20f7382dd24c/, "no broad built-in role");
});

t.test("validated and deployed to the sandbox, it leaves the service's identity, role, Redis, container apps and Key Vault events wired together", async (t) => {
  const sandbox = await startTestSandbox(t);
  const owner = seed.ADMIN_APP;
  await makeOwner(sandbox, owner);
  const client = new DeploymentsClient(sandboxCredential(sandbox, owner), seed.SUBSCRIPTION_ID, { httpClient: sandboxHttpClient(sandbox) });
  const vaultId = seed.vaultId(seed.KV_SANDBOX);
  const request = body(template, { keyVaultResourceId: vaultId, keyVaultLocation: seed.LOCATION });

  const validated = await client.deployments.validate(seed.RESOURCE_GROUP, "cmk-service", request);
  t.equal(validated.properties?.provisioningState, "Succeeded", "validate: Succeeded");
  t.equal(validated.properties?.validatedResources?.length, 11, "every resource, the Event Grid pair included");

  const deployed = await client.deployments.createOrUpdate(seed.RESOURCE_GROUP, "cmk-service", request, { updateIntervalInMs: 20 });
  t.equal(deployed.properties?.provisioningState, "Succeeded", JSON.stringify(deployed.properties?.error ?? {}));
  const outputs = Object.fromEntries(Object.entries(deployed.properties?.outputs ?? {}).map(([name, output]) => [name, (output as { value: unknown }).value])) as Record<string, string>;

  // The identity.
  const identity = await new ManagedServiceIdentityClient(sandboxCredential(sandbox, owner), seed.SUBSCRIPTION_ID, { httpClient: sandboxHttpClient(sandbox) }).userAssignedIdentities.get(seed.RESOURCE_GROUP, "id-cmk-service");
  t.equal(outputs.identityPrincipalId, identity.principalId, "output: the identity's principal id");
  t.equal(outputs.identityClientId, identity.clientId, "output: the identity's client id");

  // The role, as ARM serves it at the subscription, and its assignment at the resource group.
  const role = await loadRole();
  const definition = (await arm(sandbox, owner, "GET", String(outputs.roleDefinitionId), undefined, "2022-04-01")).json as Json;
  t.match(definition.properties, { roleName: role.Name, type: "CustomRole", assignableScopes: [`/subscriptions/${seed.SUBSCRIPTION_ID}`] });
  t.same(definition.properties.permissions, [{ actions: role.Actions, notActions: role.NotActions, dataActions: role.DataActions, notDataActions: role.NotDataActions }], "the role file's actions");
  const filter = encodeURIComponent(`principalId eq '${identity.principalId}'`);
  const assignments = (await arm(sandbox, owner, "GET", `${RG}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=${filter}`)).json as { value: Json[] };
  t.equal(assignments.value.length, 1, "one assignment for the identity");
  t.match(assignments.value[0]?.properties, { roleDefinitionId: outputs.roleDefinitionId, principalType: "ServicePrincipal", scope: RG });

  // Redis: the host the apps use, Entra ID only, and the identity's access policy.
  const redis = (await arm(sandbox, owner, "GET", `${RG}/providers/Microsoft.Cache/redisEnterprise/redis-cmk`)).json as Json;
  t.match(redis, { sku: { name: "Balanced_B1" }, location: seed.LOCATION, properties: { provisioningState: "Succeeded", hostName: `redis-cmk.${seed.LOCATION}.redis.azure.net` } });
  t.equal(outputs.redisHostName, redis.properties.hostName, "output: the Redis host");
  const database = (await arm(sandbox, owner, "GET", `${RG}/providers/Microsoft.Cache/redisEnterprise/redis-cmk/databases/default`)).json as Json;
  t.match(database.properties, { port: 10000, clientProtocol: "Encrypted", clusteringPolicy: "OSSCluster", accessKeysAuthentication: "Disabled", evictionPolicy: "NoEviction" });
  const policy = (await arm(sandbox, owner, "GET", `${RG}/providers/Microsoft.Cache/redisEnterprise/redis-cmk/databases/default/accessPolicyAssignments/cmkservice`)).json as Json;
  t.same(policy.properties, { accessPolicyName: "default", user: { objectId: identity.principalId }, provisioningState: "Succeeded" }, "the identity's data access");

  // The container apps: the service's configuration, accepted by its own config loader.
  const environment = (await arm(sandbox, owner, "GET", `${RG}/providers/Microsoft.App/managedEnvironments/cae-cmk`)).json as Json;
  for (const [name, role] of [["cmk-api", "api"], ["cmk-worker", "worker"]] as const) {
    const app = (await arm(sandbox, owner, "GET", `${RG}/providers/Microsoft.App/containerApps/${name}`)).json as Json;
    t.match(app, { identity: { type: "UserAssigned" }, properties: { provisioningState: "Succeeded", environmentId: environment.id } }, `${name}: in the environment`);
    t.same(Object.keys(app.identity.userAssignedIdentities as object).map((id) => id.toLowerCase()), [seed.userAssignedIdentityId("id-cmk-service").toLowerCase()], `${name}: the identity, and only it`);
    t.same(Object.values(app.identity.userAssignedIdentities as object), [{ principalId: identity.principalId, clientId: identity.clientId }], `${name}: shown with its ids`);
    const [container] = app.properties.template.containers as Json[];
    const env = Object.fromEntries((container?.env as { name: string; value: string }[]).map((variable) => [variable.name, variable.value]));
    t.match(env, {
      NODE_ENV: "production",
      CMK_MODE: "azure",
      CMK_ROLE: role,
      AZURE_CLIENT_ID: identity.clientId,
      CMK_AZURE_CREDENTIAL: "managed-identity",
      CMK_MANAGED_IDENTITY: "user-assigned",
      REDIS_URL: `rediss://${redis.properties.hostName}:10000`,
      CMK_REDIS_AUTH: "entra",
      CMK_REDIS_CLUSTER: "true",
      CMK_AUTH_ISSUER: `https://login.microsoftonline.com/${seed.TENANT_ID}/v2.0`,
      CMK_AUTH_AUDIENCE: parametersFile.parameters.authAudience.value,
    }, `${name}: environment`);
    const config = loadConfig(env);
    t.match(config, { production: true, CMK_MODE: "azure", CMK_ROLE: role, CMK_REDIS_CLUSTER: true, CMK_REDIS_AUTH: "entra", azureCredential: { kind: "managed-identity", clientId: identity.clientId } }, `${name}: the service's config loader takes it, signing in as the identity`);
    t.same(
      (container?.probes as Json[]).map((probe) => `${probe.type} ${probe.httpGet.path}:${probe.httpGet.port}`),
      ["Liveness /healthz:3000", "Readiness /readyz:3000"],
      `${name}: probes`,
    );
    t.equal(container?.image, parametersFile.parameters.image.value);
    t.equal(app.properties.template.scale.minReplicas, 1, `${name}: at least one replica`);
  }
  const api = (await arm(sandbox, owner, "GET", `${RG}/providers/Microsoft.App/containerApps/cmk-api`)).json as Json;
  t.match(api.properties.configuration.ingress, { external: true, targetPort: 3000, fqdn: `cmk-api.${environment.properties.defaultDomain}` }, "the API's external ingress");
  t.equal(outputs.apiFqdn, api.properties.configuration.ingress.fqdn, "output: the API's FQDN");
  const worker = (await arm(sandbox, owner, "GET", `${RG}/providers/Microsoft.App/containerApps/cmk-worker`)).json as Json;
  t.notOk(worker.properties.configuration.ingress, "the worker takes no traffic");

  // Key Vault events to the API.
  const topic = (await arm(sandbox, owner, "GET", `${RG}/providers/Microsoft.EventGrid/systemTopics/cmk-kv-events`, undefined, "2025-02-15")).json as Json;
  t.match(topic, { location: seed.LOCATION, properties: { source: vaultId, topicType: "Microsoft.KeyVault.vaults" } });
  const subscription = (await arm(sandbox, owner, "GET", `${RG}/providers/Microsoft.EventGrid/systemTopics/cmk-kv-events/eventSubscriptions/cmk-service`, undefined, "2025-02-15")).json as Json;
  t.match(subscription.properties, {
    destination: { endpointType: "WebHook", properties: { endpointBaseUrl: `https://${outputs.apiFqdn}/v1/events/key-vault`, azureActiveDirectoryTenantId: seed.TENANT_ID, azureActiveDirectoryApplicationIdOrUri: "api://cmk-service" } },
    filter: { includedEventTypes: ["Microsoft.KeyVault.KeyNewVersionCreated", "Microsoft.KeyVault.KeyNearExpiry", "Microsoft.KeyVault.KeyExpired"] },
    eventDeliverySchema: "CloudEventSchemaV1_0",
  });

  // The resource group lists what was made; deploying again (Incremental) changes nothing and succeeds.
  const listed = ((await arm(sandbox, owner, "GET", `${RG}/resources`)).json as { value: Json[] }).value.map((resource) => resource.type as string);
  for (const type of ["Microsoft.App/managedEnvironments", "Microsoft.App/containerApps", "Microsoft.Cache/redisEnterprise", "Microsoft.EventGrid/systemTopics", "Microsoft.ManagedIdentity/userAssignedIdentities"]) {
    t.ok(listed.includes(type), `the resource list shows ${type}`);
  }
  const again = await client.deployments.createOrUpdate(seed.RESOURCE_GROUP, "cmk-service", request, { updateIntervalInMs: 20 });
  t.equal(again.properties?.provisioningState, "Succeeded", `a second deployment: ${JSON.stringify(again.properties?.error ?? {})}`);
  const identityAgain = (await arm(sandbox, owner, "GET", seed.userAssignedIdentityId("id-cmk-service"), undefined, "2023-01-31")).json as Json;
  t.equal(identityAgain.properties.principalId, identity.principalId, "the same identity");
});

t.test("without keyVaultResourceId the Event Grid pair is not deployed", async (t) => {
  const sandbox = await startTestSandbox(t);
  await makeOwner(sandbox, seed.ADMIN_APP);
  const client = new DeploymentsClient(sandboxCredential(sandbox, seed.ADMIN_APP), seed.SUBSCRIPTION_ID, { httpClient: sandboxHttpClient(sandbox) });
  const deployed = await client.deployments.createOrUpdate(seed.RESOURCE_GROUP, "cmk-service", body(template), { updateIntervalInMs: 20 });
  t.equal(deployed.properties?.provisioningState, "Succeeded", JSON.stringify(deployed.properties?.error ?? {}));
  t.equal(deployed.properties?.outputResources?.length, 9);
  t.notOk(deployed.properties?.outputResources?.some((resource) => /EventGrid/i.test(resource.id ?? "")));
  t.equal((await arm(sandbox, seed.ADMIN_APP, "GET", `${RG}/providers/Microsoft.EventGrid/systemTopics/cmk-kv-events`, undefined, "2025-02-15")).status, 404);
});

t.test("refused before anything is written: a deployer without roleAssignments/write, and a template with a broken reference", async (t) => {
  const sandbox = await startTestSandbox(t);
  // The service's own seed app is Contributor: it may write resources, not roles or role assignments.
  const contributor = seed.SERVICE_APP;
  for (const [method, path] of [["POST", `${DEPLOYMENTS}/cmk-service/validate`], ["PUT", `${DEPLOYMENTS}/cmk-service`]] as const) {
    const answer = await arm(sandbox, contributor, method, path, body(template));
    t.equal(answer.status, 400, `${method} as a Contributor`);
    const error = (answer.json as { error: { code: string; details: { code: string; message: string; target: string }[] } }).error;
    t.equal(error.code, "InvalidTemplateDeployment");
    t.ok(
      error.details.some((detail) => detail.code === "AuthorizationFailed" && detail.message.includes("'Microsoft.Authorization/roleAssignments/write'") && /roleAssignments\//.test(detail.target)),
      `${method}: a detail names roleAssignments/write at the assignment`,
    );
    t.ok(error.details.some((detail) => detail.message.includes("'Microsoft.Authorization/roleDefinitions/write'")), `${method}: and roleDefinitions/write`);
    t.ok(error.details.every((detail) => detail.code === "AuthorizationFailed"), `${method}: nothing else is wrong`);
  }

  await makeOwner(sandbox, seed.ADMIN_APP);
  // The worker reads the identity's client id but no longer depends on the identity: ARM refuses the template.
  const broken = structuredClone(template);
  const worker = (broken.resources as Json[]).find((resource) => resource.name === "[variables('workerName')]") as Json;
  worker.dependsOn = (worker.dependsOn as string[]).filter((dependency) => dependency !== "[variables('identityId')]");
  worker.dependsOn = (worker.dependsOn as string[]).filter((dependency) => !dependency.includes("accessPolicyAssignments"));
  for (const [method, path] of [["POST", `${DEPLOYMENTS}/cmk-broken/validate`], ["PUT", `${DEPLOYMENTS}/cmk-broken`]] as const) {
    const answer = await arm(sandbox, seed.ADMIN_APP, method, path, body(broken));
    t.match(answer, { status: 400, json: { error: { code: "InvalidTemplate", message: /reference\('[^']*userAssignedIdentities\/id-cmk-service'\) but the resource does not depend on it/ } } }, `${method}: InvalidTemplate`);
  }
  const unknown = structuredClone(template);
  const api = (unknown.resources as Json[]).find((resource) => resource.name === "[variables('apiName')]") as Json;
  const redisUrl = (api.properties.template.containers[0].env as { name: string; value: string }[]).find((variable) => variable.name === "REDIS_URL") as { value: string };
  redisUrl.value = "[format('rediss://{0}:10000', reference(variables('redisIdentifier'), '2025-04-01').hostName)]";
  t.match(await arm(sandbox, seed.ADMIN_APP, "PUT", `${DEPLOYMENTS}/cmk-unknown`, body(unknown)), { status: 400, json: { error: { code: "InvalidTemplate", message: /variables\('redisIdentifier'\) is not declared/ } } }, "an undeclared variable");
  t.equal((await arm(sandbox, seed.ADMIN_APP, "GET", seed.userAssignedIdentityId("id-cmk-service"), undefined, "2023-01-31")).status, 404, "nothing was written");
});
