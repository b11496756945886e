import t from "tap";
import { seed, type RunningSandbox } from "../../src/sandbox/index.js";
import { armToken, sandboxRequest, startTestSandbox } from "../helpers/sandbox.js";

/**
 * The generic provider (src/sandbox/arm/generic-resources.ts) that serves Container Apps, Azure Managed
 * Redis and Event Grid system topics for deploy/cmk-service.json: what it requires of a body, what it
 * computes, its lists and deletes, RBAC at ARM's front door, and the provider and operations lists.
 */

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const RG = seed.resourceGroupId();
const APP = `${RG}/providers/Microsoft.App`;
const CACHE = `${RG}/providers/Microsoft.Cache/redisEnterprise`;
const TOPICS = `${RG}/providers/Microsoft.EventGrid/systemTopics`;

async function arm(sandbox: RunningSandbox, method: string, path: string, payload?: object, app: seed.SeedApp = seed.SERVICE_APP) {
  return sandboxRequest(sandbox, {
    method,
    path: path.includes("?") ? path : `${path}?api-version=2025-01-01`,
    host: "management.azure.com",
    headers: { authorization: `Bearer ${await armToken(sandbox, app)}` },
    ...(payload ? { body: payload } : {}),
  });
}

const containerApp = (environmentId: string, extra: Json = {}) => ({
  location: "westus3",
  properties: {
    environmentId,
    configuration: { ingress: { external: true, targetPort: 3000 } },
    template: { containers: [{ name: "app", image: "registry.example/app:1", env: [{ name: "A", value: "1" }] }] },
    ...extra,
  },
});

t.test("Container Apps: environment first, names and required properties checked, the ingress FQDN computed", async (t) => {
  const sandbox = await startTestSandbox(t);
  const environmentId = `${APP}/managedEnvironments/cae-test`;
  t.match(await arm(sandbox, "PUT", `${APP}/containerApps/app-one`, containerApp(environmentId)), { status: 400, json: { error: { code: "ManagedEnvironmentNotFound" } } }, "no environment yet");
  t.match(await arm(sandbox, "PUT", environmentId, { properties: {} }), { status: 400, json: { error: { code: "LocationRequired" } } }, "a tracked resource needs a location");
  const environment = await arm(sandbox, "PUT", environmentId, { location: "West US 3", tags: { purpose: "test" }, properties: { zoneRedundant: false } });
  t.match(environment, { status: 201, json: { id: environmentId, name: "cae-test", type: "Microsoft.App/managedEnvironments", location: "westus3", tags: { purpose: "test" }, properties: { provisioningState: "Succeeded", defaultDomain: /^cmk-[0-9a-f]{8}\.westus3\.azurecontainerapps\.io$/ } } });
  const domain = (environment.json as Json).properties.defaultDomain as string;

  t.match(await arm(sandbox, "PUT", `${APP}/containerApps/App_One`, containerApp(environmentId)), { status: 400, json: { error: { code: "InvalidResourceName", message: /2-32 lower-case/ } } });
  t.match(await arm(sandbox, "PUT", `${APP}/containerApps/app--one`, containerApp(environmentId)), { status: 400, json: { error: { code: "InvalidResourceName" } } }, "no '--'");
  t.match(await arm(sandbox, "PUT", `${APP}/containerApps/app-one`, { location: "westus3", properties: { template: { containers: [{ name: "a", image: "i" }] } } }), { status: 400, json: { error: { code: "InvalidRequestContent", message: /environmentId/ } } });
  t.match(await arm(sandbox, "PUT", `${APP}/containerApps/app-one`, containerApp(environmentId, { template: { containers: [] } })), { status: 400, json: { error: { message: /at least one container/ } } });
  t.match(await arm(sandbox, "PUT", `${APP}/containerApps/app-one`, { ...containerApp(environmentId), location: "eastus" }), { status: 400, json: { error: { code: "InvalidLocation" } } }, "the environment's region");
  const missingIdentity = `${RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uami-none`;
  t.match(
    await arm(sandbox, "PUT", `${APP}/containerApps/app-one`, { ...containerApp(environmentId), identity: { type: "UserAssigned", userAssignedIdentities: { [missingIdentity]: {} } } }),
    { status: 400, json: { error: { code: "InvalidUserAssignedIdentity" } } },
  );

  const created = await arm(sandbox, "PUT", `${APP}/containerApps/app-one`, containerApp(environmentId));
  t.match(created, { status: 201, json: { properties: { provisioningState: "Succeeded", environmentId, managedEnvironmentId: environmentId, configuration: { ingress: { fqdn: `app-one.${domain}`, targetPort: 3000 } }, latestRevisionFqdn: new RegExp(`^app-one--[0-9a-f]{7}\\.${domain.replace(/\./g, "\\.")}$`), runningStatus: "Running" } } });
  t.equal((await arm(sandbox, "PUT", `${APP}/containerApps/app-one`, containerApp(environmentId))).status, 200, "an update");
  t.match((await arm(sandbox, "GET", `${APP}/containerApps/app-one`)).json, { properties: { template: { containers: [{ env: [{ name: "A", value: "1" }] }] } } }, "the body as sent");
  t.match(await arm(sandbox, "GET", `${APP}/containerApps/app-none`), { status: 404, json: { error: { code: "ResourceNotFound" } } });

  const listed = (await arm(sandbox, "GET", `${APP}/containerApps`)).json as { value: Json[] };
  t.same(listed.value.map((app) => app.name), ["app-one"]);
  t.equal((await arm(sandbox, "DELETE", `${APP}/containerApps/app-one`)).status, 200);
  t.equal((await arm(sandbox, "DELETE", `${APP}/containerApps/app-one`)).status, 204, "already gone");
  t.same(((await arm(sandbox, "GET", `${APP}/containerApps`)).json as { value: Json[] }).value, []);
});

t.test("Azure Managed Redis: SKU required, one database named default, access policies for object ids, the host name computed", async (t) => {
  const sandbox = await startTestSandbox(t);
  const put = (path: string, payload: object) => arm(sandbox, "PUT", `${path}?api-version=2025-04-01`, payload);
  t.match(await put(`${CACHE}/redis-test`, { location: "westus3" }), { status: 400, json: { error: { code: "InvalidRequestContent", message: /sku\.name/ } } });
  t.match(await put(`${CACHE}/redis-test`, { location: "westus3", sku: { name: "Premium_P1" } }), { status: 400, json: { error: { code: "InvalidSku" } } }, "not a Redis Enterprise SKU");
  t.match(await put(`${CACHE}/redis-test/databases/default`, { properties: {} }), { status: 404, json: { error: { code: "ParentResourceNotFound" } } }, "no cluster yet");
  t.match(await put(`${CACHE}/redis-test`, { location: "westus3", sku: { name: "Balanced_B1" } }), { status: 201, json: { sku: { name: "Balanced_B1" }, properties: { hostName: "redis-test.westus3.redis.azure.net", provisioningState: "Succeeded" } } });
  t.match(await put(`${CACHE}/redis-ent`, { location: "westus3", sku: { name: "Enterprise_E10", capacity: 2 } }), { status: 201, json: { properties: { hostName: "redis-ent.westus3.redisenterprise.cache.azure.net" } } }, "Redis Enterprise's host domain");
  t.match(await put(`${CACHE}/redis-test/databases/db1`, { properties: {} }), { status: 400, json: { error: { code: "InvalidResourceName", message: /'default'/ } } });
  t.match(await put(`${CACHE}/redis-test/databases/default`, { properties: { port: 6380 } }), { status: 400, json: { error: { code: "InvalidPort" } } });
  t.match(await put(`${CACHE}/redis-test/databases/default`, { properties: { clusteringPolicy: "Sharded" } }), { status: 400, json: { error: { code: "InvalidRequestContent" } } });
  t.match(await put(`${CACHE}/redis-test/databases/default`, { properties: { clusteringPolicy: "OSSCluster", accessKeysAuthentication: "Disabled" } }), { status: 201, json: { name: "redis-test/default", properties: { port: 10000, clientProtocol: "Encrypted", clusteringPolicy: "OSSCluster" } } });
  const assignment = `${CACHE}/redis-test/databases/default/accessPolicyAssignments/app1`;
  t.match(await put(assignment, { properties: { accessPolicyName: "default", user: { objectId: "not-a-guid" } } }), { status: 400, json: { error: { message: /objectId/ } } });
  t.match(await put(assignment, { properties: { accessPolicyName: "Data Reader", user: { objectId: seed.READER_APP.objectId } } }), { status: 400, json: { error: { code: "InvalidAccessPolicy" } } });
  t.match(await put(assignment, { properties: { accessPolicyName: "default", user: { objectId: seed.READER_APP.objectId } } }), { status: 201, json: { name: "app1", properties: { user: { objectId: seed.READER_APP.objectId } } } });

  // Deleting the cluster takes its database and access policy assignments with it.
  t.equal((await arm(sandbox, "DELETE", `${CACHE}/redis-test?api-version=2025-04-01`)).status, 200);
  t.equal((await arm(sandbox, "GET", `${assignment}?api-version=2025-04-01`)).status, 404);
  t.match(await arm(sandbox, "GET", `${CACHE}/redis-test/databases?api-version=2025-04-01`), { status: 404, json: { error: { code: "ParentResourceNotFound" } } });
});

t.test("Event Grid: a system topic of a vault, in the vault's region, one per vault; a webhook subscription whose URL is not echoed", async (t) => {
  const sandbox = await startTestSandbox(t);
  const put = (path: string, payload: object) => arm(sandbox, "PUT", `${path}?api-version=2025-02-15`, payload);
  const vault = seed.vaultId(seed.KV_SANDBOX);
  const topic = (source: string, location = "westus3") => ({ location, properties: { source, topicType: "Microsoft.KeyVault.vaults" } });
  t.match(await put(`${TOPICS}/kv-events`, topic(seed.vaultId("kvnone"))), { status: 400, json: { error: { code: "InvalidSourceResource" } } });
  t.match(await put(`${TOPICS}/kv-events`, topic(vault, "eastus")), { status: 400, json: { error: { code: "InvalidLocation" } } }, "the vault's region");
  t.match(await put(`${TOPICS}/kv-events`, { location: "westus3", properties: { source: vault, topicType: "Microsoft.Storage.StorageAccounts" } }), { status: 400, json: { error: { code: "InvalidTopicType" } } });
  t.equal((await put(`${TOPICS}/kv-events`, topic(vault))).status, 201);
  t.equal((await put(`${TOPICS}/kv-events`, topic(vault))).status, 200, "the same topic again");
  t.match(await put(`${TOPICS}/kv-events-2`, topic(vault)), { status: 400, json: { error: { code: "OnlyOneSystemTopicPerSource" } } });

  const subscription = `${TOPICS}/kv-events/eventSubscriptions/cmk-service`;
  const webhook = (endpointUrl: string) => ({ properties: { destination: { endpointType: "WebHook", properties: { endpointUrl } }, eventDeliverySchema: "CloudEventSchemaV1_0" } });
  t.match(await put(subscription, webhook("http://insecure.example/hook")), { status: 400, json: { error: { code: "InvalidEndpointUrl" } } });
  t.match(await put(`${TOPICS}/kv-none/eventSubscriptions/cmk-service`, webhook("https://cmk.example/v1/events/key-vault")), { status: 404, json: { error: { code: "ParentResourceNotFound" } } });
  const created = await put(subscription, webhook("https://cmk.example/v1/events/key-vault?code=secret"));
  t.match(created, { status: 201, json: { properties: { topic: `${TOPICS}/kv-events`, destination: { properties: { endpointBaseUrl: "https://cmk.example/v1/events/key-vault" } } } } });
  t.notMatch(created.text, /secret/, "the endpoint URL (it may hold a secret) is write-only");
});

t.test("RBAC at ARM's front door, and the providers' lists", async (t) => {
  const sandbox = await startTestSandbox(t);
  const reader = await arm(sandbox, "PUT", `${APP}/managedEnvironments/cae-reader`, { location: "westus3", properties: {} }, seed.READER_APP);
  t.match(reader, { status: 403, json: { error: { code: "AuthorizationFailed", message: /Microsoft\.App\/managedEnvironments\/write/ } } });
  t.equal((await arm(sandbox, "PUT", `${APP}/managedEnvironments/cae-reader`, { location: "westus3", properties: {} })).status, 201, "a Contributor may");
  const resources = ((await arm(sandbox, "GET", `${RG}/resources?api-version=2025-04-01&$filter=${encodeURIComponent("resourceType eq 'Microsoft.App/managedEnvironments'")}`)).json as { value: Json[] }).value;
  t.same(resources.map((resource) => resource.name), ["cae-reader"], "in the resource group's resource list");

  for (const [namespace, operation] of [["Microsoft.App", "Microsoft.App/containerApps/write"], ["Microsoft.Cache", "Microsoft.Cache/redisEnterprise/databases/accessPolicyAssignments/write"], ["Microsoft.EventGrid", "Microsoft.EventGrid/systemTopics/eventSubscriptions/write"], ["Microsoft.Authorization", "Microsoft.Authorization/roleDefinitions/write"]]) {
    const operations = (await arm(sandbox, "GET", `/providers/${namespace}/operations`, undefined, seed.READER_APP)).json as { value: { name: string }[] };
    t.ok(operations.value.some((entry) => entry.name === operation), `${namespace} lists ${operation}`);
  }
  const provider = (await arm(sandbox, "GET", `/subscriptions/${seed.SUBSCRIPTION_ID}/providers/Microsoft.Cache?api-version=2025-04-01`)).json as { resourceTypes: { resourceType: string; apiVersions: string[] }[] };
  t.match(provider.resourceTypes.find((type) => type.resourceType === "redisEnterprise"), { apiVersions: ["2025-04-01"] });
});
