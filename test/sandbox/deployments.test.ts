import { DeploymentsClient, type Deployment } from "@azure/arm-resourcesdeployments";
import { ManagedServiceIdentityClient } from "@azure/arm-msi";
import t from "tap";
import { seed, type RunningSandbox } from "../../src/sandbox/index.js";
import { armToken, sandboxCredential, sandboxHttpClient, sandboxRequest, startTestSandbox } from "../helpers/sandbox.js";
import { advanceClock, sandboxRequests, sandboxState, setFaults } from "../helpers/sandbox-admin.js";

/** Template deployments (arm/deployments.ts) through @azure/arm-resourcesdeployments, as `az deployment group create` makes them. */

const IDENTITY_TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities";
const FHIR_TYPE = "Microsoft.HealthcareApis/workspaces/fhirservices";
const DEPLOYMENTS = `${seed.resourceGroupId()}/providers/Microsoft.Resources/deployments`;

/** A workspace, a FHIR service in it (dependsOn) and an identity, with an output that reads the identity back. */
const template = {
  $schema: "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
  contentVersion: "1.0.0.0",
  parameters: { identityName: { type: "string" }, workspaceName: { type: "string", defaultValue: "wsdeployed" } },
  variables: { serviceName: "[concat(parameters('workspaceName'), '/fhir-deployed')]" },
  resources: [
    {
      type: FHIR_TYPE,
      apiVersion: "2023-11-01",
      name: "[variables('serviceName')]",
      location: "[resourceGroup().location]",
      kind: "fhir-R4",
      dependsOn: ["[resourceId('Microsoft.HealthcareApis/workspaces', parameters('workspaceName'))]"],
      identity: { type: "SystemAssigned" },
      tags: { deployedBy: "[format('{0}-{1}', 'template', parameters('identityName'))]" },
      properties: {},
    },
    { type: "Microsoft.HealthcareApis/workspaces", apiVersion: "2023-11-01", name: "[parameters('workspaceName')]", location: "westus3", properties: {} },
    { type: IDENTITY_TYPE, apiVersion: "2023-01-31", name: "[parameters('identityName')]", location: "westus3" },
  ],
  outputs: {
    principalId: { type: "string", value: `[reference(resourceId('${IDENTITY_TYPE}', parameters('identityName')), '2023-01-31').principalId]` },
  },
};

function deploymentsClient(sandbox: RunningSandbox, app = seed.SERVICE_APP) {
  return new DeploymentsClient(sandboxCredential(sandbox, app), seed.SUBSCRIPTION_ID, { httpClient: sandboxHttpClient(sandbox) });
}

function body(templateBody: object, parameters: Record<string, unknown> = {}): Deployment {
  return { properties: { template: templateBody, parameters: Object.fromEntries(Object.entries(parameters).map(([name, value]) => [name, { value }])), mode: "Incremental" } };
}

async function arm(sandbox: RunningSandbox, method: string, path: string, payload?: object, apiVersion = "2023-11-01") {
  return sandboxRequest(sandbox, {
    method,
    path: path.includes("?") ? path : `${path}?api-version=${apiVersion}`,
    host: "management.azure.com",
    headers: { authorization: `Bearer ${await armToken(sandbox)}` },
    ...(payload ? { body: payload } : {}),
  });
}

t.test("a deployment writes its resources in dependsOn order through the providers, with reference(), outputs and ARM's async operation", async (t) => {
  const sandbox = await startTestSandbox(t, { lroMs: 200 });
  const client = deploymentsClient(sandbox);
  const since = (await sandboxRequests(sandbox)).at(-1)?.seq ?? 0;
  const result = await client.deployments.createOrUpdate(seed.RESOURCE_GROUP, "deploy-1", body(template, { identityName: "uami-deployed" }), { updateIntervalInMs: 20 });
  const deployments = new RegExp(`^${DEPLOYMENTS}`, "i");
  const log = (await sandboxRequests(sandbox, since)).filter((entry) => entry.host === "management.azure.com").map((entry) => `${entry.method} ${entry.path.replace(deployments, "…")} ${entry.status}`);
  t.equal(log[0], "PUT …/deploy-1 201", "the deployment's PUT is accepted");
  t.ok(log.length > 2 && log.slice(1, -1).every((entry) => /^GET …\/deploy-1\/operationStatuses\/\d{20} 200$/.test(entry)), "the SDK polls the deployment's operation status");
  t.equal(log.at(-1), "GET …/deploy-1 200", "then reads the deployment");
  t.notOk(log.some((entry) => entry.includes("fhirservices")), "the writes to the resources are ARM's own, not the client's");

  t.match(result, {
    id: `${DEPLOYMENTS}/deploy-1`,
    name: "deploy-1",
    type: "Microsoft.Resources/deployments",
    properties: { provisioningState: "Succeeded", mode: "Incremental", parameters: { identityName: { type: "String", value: "uami-deployed" }, workspaceName: { type: "String", value: "wsdeployed" } } },
  });
  const identity = await new ManagedServiceIdentityClient(sandboxCredential(sandbox), seed.SUBSCRIPTION_ID, { httpClient: sandboxHttpClient(sandbox) }).userAssignedIdentities.get(seed.RESOURCE_GROUP, "uami-deployed");
  t.same(result.properties?.outputs, { principalId: { type: "String", value: identity.principalId } }, "reference() read the identity the deployment made");
  t.same(result.properties?.outputResources?.map((resource) => resource.id), [
    seed.workspaceId("wsdeployed"),
    seed.fhirServiceId("fhir-deployed", "wsdeployed"),
    seed.userAssignedIdentityId("uami-deployed").replace("/resourcegroups/", "/resourceGroups/"),
  ], "dependsOn first, template order among the rest");

  const service = (await arm(sandbox, "GET", seed.fhirServiceId("fhir-deployed", "wsdeployed"))).json as Record<string, unknown>;
  t.match(service, { location: "westus3", kind: "fhir-R4", tags: { deployedBy: "template-uami-deployed" }, identity: { type: "SystemAssigned" }, properties: { provisioningState: "Succeeded" } });


  const listed = [];
  for await (const deployment of client.deployments.listByResourceGroup(seed.RESOURCE_GROUP)) listed.push(deployment.name);
  t.same(listed, ["deploy-1"]);
  await t.rejects(client.deployments.get(seed.RESOURCE_GROUP, "deploy-none"), { statusCode: 404, code: "DeploymentNotFound" });
});

t.test("the operation status answers only its status, as real traffic shows; a second PUT of a running deployment is refused", async (t) => {
  const sandbox = await startTestSandbox(t);
  await setFaults(sandbox, { rules: [], lroDurationMs: 60_000 });
  const put = await arm(sandbox, "PUT", `${DEPLOYMENTS}/deploy-slow`, body(template, { identityName: "uami-slow" }), "2022-09-01");
  t.equal(put.status, 201);
  t.match(put.json, { properties: { provisioningState: "Accepted", correlationId: /^[0-9a-f-]{36}$/, dependencies: [{ id: seed.fhirServiceId("fhir-deployed", "wsdeployed"), dependsOn: [{ id: seed.workspaceId("wsdeployed") }] }] } });
  const statusUrl = new URL(String(put.headers["azure-asyncoperation"]));
  t.match(statusUrl.pathname, new RegExp(`/resourcegroups/${seed.RESOURCE_GROUP}/providers/Microsoft.Resources/deployments/deploy-slow/operationStatuses/\\d{20}$`));
  t.equal(statusUrl.searchParams.get("api-version"), "2022-09-01");
  const running = await arm(sandbox, "GET", statusUrl.pathname + statusUrl.search);
  t.same(running.json, { status: "Running" }, "the FHIR service's 60 s operation is still running");
  t.match(await arm(sandbox, "PUT", `${DEPLOYMENTS}/deploy-slow`, body(template, { identityName: "uami-slow" })), { status: 409, json: { error: { code: "DeploymentActive" } } });
  t.match((await arm(sandbox, "GET", seed.fhirServiceId("fhir-deployed", "wsdeployed"))).json, { properties: { provisioningState: "Creating" } });

  // The emulator's clock ends the FHIR service's operation, and the deployment moves on with it: even
  // the admin API's view, which no ARM request has refreshed, shows it done.
  await advanceClock(sandbox, 60);
  const { deployments } = await sandboxState<{ deployments: { id: string; provisioningState: string }[] }>(sandbox);
  t.match(deployments, [{ id: `${DEPLOYMENTS}/deploy-slow`, provisioningState: "Succeeded" }]);
  t.same((await arm(sandbox, "GET", statusUrl.pathname + statusUrl.search)).json, { status: "Succeeded" });
  const done = (await arm(sandbox, "GET", `${DEPLOYMENTS}/deploy-slow`, undefined, "2022-09-01")).json as { properties: { duration: string } };
  t.ok(Number(/^PT([\d.]+)S$/.exec(done.properties.duration)?.[1]) >= 60, `it took the minute the clock moved (${done.properties.duration})`);
});

t.test("the body az deployment group create sends: the template file's text spliced in after an unquoted template key", async (t) => {
  const sandbox = await startTestSandbox(t);
  // As azure-cli's JsonCTemplatePolicy builds it: the rest of the body as JSON, the file's text (JSONC) after `template:`.
  const templateText = `{\r\n  // made by hand\r\n${JSON.stringify(template, null, 2).slice(1, -1)},\r\n}`;
  const rest = JSON.stringify({ properties: { parameters: { identityName: { value: "uami-az" } }, mode: "Incremental" } });
  const azBody = `${rest.slice(0, -2)}, template:${templateText}}}`;
  t.throws(() => JSON.parse(azBody), SyntaxError, "not JSON");
  const authorization = `Bearer ${await armToken(sandbox)}`;
  const raw = (method: string, path: string, body: string) => sandboxRequest(sandbox, { method, path: `${path}?api-version=2022-09-01`, host: "management.azure.com", headers: { authorization }, body });
  t.match(await raw("POST", `${DEPLOYMENTS}/deploy-az/validate`, azBody), { status: 200, json: { properties: { provisioningState: "Succeeded", parameters: { identityName: { value: "uami-az" } } } } });
  t.match(await raw("PUT", `${DEPLOYMENTS}/deploy-az`, azBody), { status: 201, json: { properties: { provisioningState: "Accepted" } } });
  // Only the deployment service reads JSONC; a resource provider refuses it.
  t.match(await raw("PUT", seed.workspaceId("wsjsonc"), '{location: "westus3"}'), { status: 400, json: { error: { code: "InvalidRequestContent" } } });
});

t.test("validate and PUT refuse a template they cannot deploy, before anything is written", async (t) => {
  const sandbox = await startTestSandbox(t);
  const client = deploymentsClient(sandbox);
  const validated = await client.deployments.validate(seed.RESOURCE_GROUP, "deploy-check", body(template, { identityName: "uami-checked" }));
  t.match(validated, { properties: { provisioningState: "Succeeded", validatedResources: [{ id: seed.workspaceId("wsdeployed") }, {}, {}] } });

  const refuse = async (templateBody: object, parameters: Record<string, unknown>, code: string, detail?: RegExp) => {
    const put = await arm(sandbox, "PUT", `${DEPLOYMENTS}/deploy-bad`, body(templateBody, parameters));
    t.match(put, { status: 400, json: { error: { code, ...(detail ? { details: [{ message: detail }] } : {}) } } }, `PUT: ${code}`);
    const validate = await arm(sandbox, "POST", `${DEPLOYMENTS}/deploy-bad/validate`, body(templateBody, parameters));
    t.match(validate, { status: 400, json: { error: { code } } }, `validate: ${code}`);
  };
  await refuse(template, {}, "InvalidTemplate");
  await refuse({ ...template, resources: [{ ...template.resources[1], location: "[uniqueString('x')]" }] }, { identityName: "x" }, "InvalidTemplate");
  await refuse({ ...template, resources: [{ type: "Microsoft.Storage/storageAccounts", apiVersion: "2023-01-01", name: "store", location: "westus3" }] }, { identityName: "x" }, "InvalidTemplateDeployment", /does not emulate/);
  const assignment = {
    type: "Microsoft.Authorization/roleAssignments",
    apiVersion: "2022-04-01",
    name: "[guid('x')]",
    scope: `Microsoft.KeyVault/vaults/${seed.KV_SANDBOX}`,
    properties: { roleDefinitionId: seed.roleDefinitionId(seed.ROLE.keyVaultCryptoServiceEncryptionUser), principalId: seed.FHIR_NOROLE_PRINCIPAL_ID, principalType: "ServicePrincipal" },
  };
  await refuse({ ...template, resources: [assignment] }, { identityName: "x" }, "InvalidTemplateDeployment", /Authorization failed for template resource .* 'Microsoft.Authorization\/roleAssignments\/write'/);
  t.equal((await arm(sandbox, "GET", `${DEPLOYMENTS}/deploy-bad`, undefined, "2026-06-01")).status, 404, "no deployment was kept");
  t.equal((await arm(sandbox, "GET", seed.workspaceId("wsdeployed"))).status, 404, "nothing was written");
});

t.test("a resource that fails fails the deployment: DeploymentFailed with the provider's error", async (t) => {
  const sandbox = await startTestSandbox(t, { lroMs: 100 });
  const client = deploymentsClient(sandbox);
  // A new system-assigned identity holds no key role, so the FHIR RP's key check fails the operation.
  const cmk = {
    ...template,
    resources: template.resources.map((resource) =>
      resource.type === FHIR_TYPE ? { ...resource, properties: { encryption: { customerManagedKeyEncryption: { keyEncryptionKeyUrl: seed.keyUrl(seed.KV_SANDBOX, seed.KEY_RSA_2048, seed.VERSION_2) } } } } : resource,
    ),
  };
  await t.rejects(client.deployments.createOrUpdate(seed.RESOURCE_GROUP, "deploy-cmk", body(cmk, { identityName: "uami-cmk" }), { updateIntervalInMs: 20 }), { message: /long-running operation has failed. DeploymentFailed/ });
  const failed = await client.deployments.get(seed.RESOURCE_GROUP, "deploy-cmk");
  t.match(failed.properties, {
    provisioningState: "Failed",
    error: { code: "DeploymentFailed", message: /At least one resource deployment operation failed/, details: [{ code: "KeyVaultAccessForbidden", target: seed.fhirServiceId("fhir-deployed", "wsdeployed") }] },
  });
  t.notOk(failed.properties?.outputResources, "no output resources");
  t.equal((await arm(sandbox, "GET", seed.userAssignedIdentityId("uami-cmk"), undefined, "2023-01-31")).status, 404, "resources after the failed one are not written");

  // A write the provider refuses at once fails the deployment the same way.
  const badName = { ...template, parameters: { ...template.parameters, workspaceName: { type: "string", defaultValue: "WS_BAD" } } };
  await t.rejects(client.deployments.createOrUpdate(seed.RESOURCE_GROUP, "deploy-name", body(badName, { identityName: "uami-name" }), { updateIntervalInMs: 20 }), { message: /long-running operation has failed. DeploymentFailed/ });
  t.match((await client.deployments.get(seed.RESOURCE_GROUP, "deploy-name")).properties?.error, { details: [{ code: "InvalidResourceName" }] });

  // Fault rules meet the deployment's own writes, as a failing RP would.
  await setFaults(sandbox, { rules: [{ service: "arm", method: "PUT", pathContains: "/workspaces/wsfaulty", status: 503, times: 1, errorCode: "ServiceUnavailable" }] });
  const faulty = { ...template, parameters: { ...template.parameters, workspaceName: { type: "string", defaultValue: "wsfaulty" } } };
  await t.rejects(client.deployments.createOrUpdate(seed.RESOURCE_GROUP, "deploy-fault", body(faulty, { identityName: "uami-fault" }), { updateIntervalInMs: 20 }), { message: /DeploymentFailed/ });
  t.match((await client.deployments.get(seed.RESOURCE_GROUP, "deploy-fault")).properties?.error, { details: [{ code: "ServiceUnavailable", target: seed.workspaceId("wsfaulty") }] });
});
