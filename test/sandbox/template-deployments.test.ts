import { DeploymentsClient } from "@azure/arm-resourcesdeployments";
import type { FastifyInstance } from "fastify";
import t, { type Test } from "tap";
import { seed, type RunningSandbox } from "../../src/sandbox/index.js";
import { KEYS, waitForJob } from "../helpers/app.js";
import { KEY_V2, setKey, uamiId } from "../helpers/requests.js";
import { armToken, sandboxCredential, sandboxHttpClient, sandboxRequest } from "../helpers/sandbox.js";
import { advanceClock } from "../helpers/sandbox-admin.js";
import { startStack } from "../helpers/stack.js";

/**
 * Every template variant POST /v1/templates renders, deployed to the emulator through
 * @azure/arm-resourcesdeployments, leaves the same FHIR service the matching job leaves (issue 14,
 * "Deployments"): SetKey with a system- and a user-assigned identity, and CreateService alone and with
 * createWorkspace, createKeyVault, createIdentity and createRoleAssignment.
 */

type Json = Record<string, unknown>;

async function arm(sandbox: RunningSandbox, method: string, path: string): Promise<{ status: number; json: Json }> {
  const response = await sandboxRequest(sandbox, { method, path: `${path}?api-version=2023-11-01`, host: "management.azure.com", headers: { authorization: `Bearer ${await armToken(sandbox)}` } });
  return { status: response.status, json: response.json as Json };
}

/** The FHIR service as ARM holds it, without what every write renews (etag, systemData). */
async function settledService(sandbox: RunningSandbox, id: string): Promise<Json> {
  const { status, json } = await arm(sandbox, "GET", id);
  if (status !== 200) throw new Error(`GET ${id}: ${status} ${JSON.stringify(json)}`);
  const { etag: _etag, systemData: _systemData, ...settled } = json;
  return settled;
}

async function render(t: Test, app: FastifyInstance, body: object): Promise<{ template: Json; parameters: { parameters: Record<string, { value: unknown }> } }> {
  const response = await app.inject({ method: "POST", url: "/v1/templates", payload: body, headers: { "x-api-key": KEYS.reader } });
  t.equal(response.statusCode, 200, response.statusCode === 200 ? "template rendered" : response.body);
  return response.json();
}

async function runJob(t: Test, app: FastifyInstance, body: object): Promise<void> {
  const accepted = await app.inject({ method: "POST", url: "/v1/change-requests", payload: body, headers: { "x-api-key": KEYS.operator } });
  t.equal(accepted.statusCode, 202, accepted.statusCode === 202 ? "job accepted" : accepted.body);
  const { monitor } = await waitForJob(app, accepted.json().id);
  t.equal(monitor.status, "Succeeded", `job ${monitor.status} ${JSON.stringify(monitor.error ?? {})}`);
}

/** `az deployment group create -g rg-sandbox --template-file template.json --parameters @parameters.json`, through the SDK. */
async function deploy(sandbox: RunningSandbox, name: string, rendered: Awaited<ReturnType<typeof render>>): Promise<string | undefined> {
  const client = new DeploymentsClient(sandboxCredential(sandbox), seed.SUBSCRIPTION_ID, { httpClient: sandboxHttpClient(sandbox) });
  const result = await client.deployments.createOrUpdate(
    seed.RESOURCE_GROUP,
    name,
    { properties: { template: rendered.template, parameters: rendered.parameters.parameters, mode: "Incremental" } },
    { updateIntervalInMs: 50 },
  );
  return result.properties?.provisioningState;
}

/** DELETE, then the emulator's clock past the operation: gone, with no waiting. */
async function deleteService(t: Test, sandbox: RunningSandbox, id: string): Promise<void> {
  t.equal((await arm(sandbox, "DELETE", id)).status, 202);
  await advanceClock(sandbox, 1);
  t.equal((await arm(sandbox, "GET", id)).status, 404, "deleted");
}

t.test("the service's templates deploy to the emulator and leave what the matching job leaves", async (t) => {
  // New role assignments count as propagated at once, so jobs do not wait for them.
  const { app, sandbox } = await startStack(t, { lroMs: 150, env: { CMK_ROLE_PROPAGATION_WINDOW_MS: "0" } });
  const reset = () => sandboxRequest(sandbox, { method: "POST", path: "/_sandbox/reset" });

  for (const [label, change] of [
    ["SetKey fhir-sys, system-assigned", setKey("fhir-sys", KEY_V2)],
    ["SetKey fhir-uami, user-assigned", setKey("fhir-uami", KEY_V2, { type: "UserAssigned", userAssignedIdentityId: uamiId("uami-sandbox") })],
  ] as const) {
    t.test(label, async (t) => {
      await reset();
      const rendered = await render(t, app, change);
      await runJob(t, app, change);
      const byJob = await settledService(sandbox, change.fhirServiceId);
      await reset();
      t.equal(await deploy(sandbox, "setkey", rendered), "Succeeded");
      t.same(await settledService(sandbox, change.fhirServiceId), byJob);
      t.match(byJob, { properties: { encryption: { customerManagedKeyEncryption: { keyEncryptionKeyUrl: KEY_V2 } }, provisioningState: "Succeeded" } });
    });
  }

  /**
   * CreateService: deploy the template, note the service, delete it and let the job create it again
   * with what the deployment made (workspace, vault, key, identity, role): the two must be the same.
   */
  const createService = async (t: Test, options: Json, place: { workspace?: string; identity?: string; vault?: string; key?: string } = {}) => {
    await reset();
    // Assigning a role in a template needs Microsoft.Authorization/roleAssignments/write, which Contributor lacks.
    if (options.createRoleAssignment) {
      const grant = await sandboxRequest(sandbox, { method: "POST", path: "/_sandbox/scenarios", body: { action: "addRoleAssignment", principalId: seed.SERVICE_APP.objectId, role: "User Access Administrator", scope: `/subscriptions/${seed.SUBSCRIPTION_ID}` } });
      t.equal(grant.status, 200);
    }
    const workspace = place.workspace ?? seed.WORKSPACE;
    const id = seed.fhirServiceId("fhir-made", workspace);
    const identityId = uamiId(place.identity ?? seed.UAMI_SANDBOX);
    const keyUrl = seed.keyUrl(place.vault ?? seed.KV_SANDBOX, place.key ?? seed.KEY_RSA_2048, seed.VERSION_2);
    const request = { operation: "CreateService", fhirServiceId: id, location: "westus3", keyEncryptionKeyUrl: keyUrl, identity: { type: "UserAssigned", userAssignedIdentityId: identityId }, options };
    const rendered = await render(t, app, request);
    t.equal(await deploy(sandbox, "create", rendered), "Succeeded");
    const byDeployment = await settledService(sandbox, id);
    const deployedKey = (byDeployment.properties as { encryption: { customerManagedKeyEncryption: { keyEncryptionKeyUrl: string } } }).encryption.customerManagedKeyEncryption.keyEncryptionKeyUrl;
    if (!options.createKeyVault) t.equal(deployedKey, keyUrl, "the key version asked for");
    else t.match(deployedKey, new RegExp(`^https://${place.vault}\\.vault\\.azure\\.net/keys/${place.key}/[0-9a-f]{32}$`), "the new key's own version");
    await deleteService(t, sandbox, id);
    const { options: _options, ...job } = request;
    await runJob(t, app, { ...job, keyEncryptionKeyUrl: deployedKey });
    t.same(await settledService(sandbox, id), byDeployment);
    return byDeployment;
  };

  t.test("CreateService with an existing identity, vault and key", async (t) => {
    t.match(await createService(t, {}), { location: "westus3", kind: "fhir-R4", identity: { type: "UserAssigned" }, properties: { provisioningState: "Succeeded" } });
  });
  t.test("CreateService with createWorkspace", async (t) => {
    await createService(t, { createWorkspace: true }, { workspace: "wsmade" });
    t.equal((await arm(sandbox, "GET", seed.workspaceId("wsmade"))).status, 200);
  });
  t.test("CreateService with createRoleAssignment, for an identity without one", async (t) => {
    await createService(t, { createRoleAssignment: true }, { identity: seed.UAMI_NOROLE });
  });
  t.test("CreateService with createWorkspace, createKeyVault, createIdentity and createRoleAssignment", async (t) => {
    const service = await createService(t, { createWorkspace: true, createKeyVault: true, createIdentity: true, createRoleAssignment: true }, { workspace: "wsmade", identity: "uami-made", vault: "kvmade", key: "cmk-made" });
    const identity = Object.values((service.identity as { userAssignedIdentities: Record<string, { principalId: string }> }).userAssignedIdentities)[0];
    const vault = (await arm(sandbox, "GET", seed.vaultId("kvmade"))).json as { properties: Json };
    t.match(vault.properties, { enablePurgeProtection: true, enableSoftDelete: true, softDeleteRetentionInDays: 90 }, "the vault the FHIR service requires");
    const state = (await sandboxRequest(sandbox, { path: "/_sandbox/state" })).json as { roleAssignments: { principalId: string; scope: string; roleName: string }[] };
    t.match(
      state.roleAssignments.filter((assignment) => assignment.principalId === identity?.principalId),
      [{ scope: `${seed.vaultId("kvmade")}/keys/cmk-made`, roleName: "Key Vault Crypto Service Encryption User" }],
      "the identity's one role, on the key alone",
    );
    t.equal((await sandboxRequest(sandbox, { path: "/metadata", host: "wsmade-fhir-made.fhir.azurehealthcareapis.com" })).status, 200, "the FHIR service reaches its key");
  });
});
