import { addRoleAssignment } from "../arm/authorization.js";
import { composeFhirService, composeWorkspace, systemData, workspaceResourceId } from "../arm/healthcare-apis-model.js";
import { vaultResourceId } from "../arm/key-vault.js";
import { derivedGuid } from "../ids.js";
import { keyStoreOf, parseKeyUrl } from "../key-access.js";
import { isManagedHsm } from "../managed-hsm-rbac.js";
import { HSM_ROLE, LOCATION, ROLE, roleDefinitionId, SERVICE_APP } from "../seed.js";
import { idKey, lower, type ManagedHsmRecord, type VaultRecord, type World } from "../world.js";
import { ScenarioError } from "./scenario-error.js";

/**
 * `POST /_sandbox/scenarios {"action":"createFleet", "count": N, "keyUrl", "subscriptions"?, "workspaces"?}`
 * (api-contract v1.1): N FHIR services `fleet-0` … `fleet-{N-1}`, split evenly over the subscriptions
 * (default the seed's first) and, in each, over `workspaces` new workspaces `wsfleet0`, `wsfleet1`, …
 * (default one per 100 services) in the subscription's resource group, westus3. Each service is
 * provisioned, has CMK on the key version given and a system-assigned identity holding the key role:
 * Key Vault Crypto Service Encryption User on the key's vault, or for a Managed HSM key the local role
 * Managed HSM Crypto Service Encryption User on the key. Built straight into the world, without async operations,
 * so thousands take milliseconds.
 */

/** More would only make the world slow to list, not the test more telling. */
export const MAX_FLEET = 50_000;
const SERVICES_PER_WORKSPACE = 100;

/** `count` items into `parts` contiguous runs whose sizes differ by at most one. */
function split(count: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, index) => Math.floor(((index + 1) * count) / parts) - Math.floor((index * count) / parts));
}

function readInput(world: World, input: Record<string, unknown>) {
  const { count, keyUrl, subscriptions, workspaces } = input;
  if (!Number.isInteger(count) || (count as number) < 1 || (count as number) > MAX_FLEET) {
    throw new ScenarioError(400, "InvalidScenario", `'count' must be an integer from 1 to ${MAX_FLEET}.`);
  }
  if (typeof keyUrl !== "string") throw new ScenarioError(400, "InvalidScenario", "'keyUrl' must be a versioned key id.");
  const parsed = parseKeyUrl(keyUrl);
  if (!parsed?.version) {
    throw new ScenarioError(400, "InvalidKeyUrl", `'${keyUrl}' is not a versioned key id (https://{vault}.vault.azure.net/keys/{name}/{version}, or {hsm}.managedhsm.azure.net).`);
  }
  const store = keyStoreOf(world, parsed);
  const key = store?.keys.get(lower(parsed.keyName));
  const version = key?.versions.find((candidate) => candidate.version === lower(parsed.version ?? ""));
  if (!store || !key || !version) throw new ScenarioError(404, "KeyNotFound", `Key '${keyUrl}' does not exist.`);
  const chosen = subscriptions === undefined ? [world.subscriptionId] : subscriptions;
  if (!Array.isArray(chosen) || chosen.length === 0 || !chosen.every((id) => typeof id === "string")) {
    throw new ScenarioError(400, "InvalidScenario", "'subscriptions' must be a non-empty array of subscription ids.");
  }
  const unknown = (chosen as string[]).find((id) => !world.subscriptions.has(lower(id)));
  if (unknown) throw new ScenarioError(404, "SubscriptionNotFound", `The subscription '${unknown}' could not be found.`);
  if (workspaces !== undefined && (!Number.isInteger(workspaces) || (workspaces as number) < 1)) {
    throw new ScenarioError(400, "InvalidScenario", "'workspaces' must be a positive integer (workspaces per subscription).");
  }
  return { count: count as number, keyUrl, store, keyName: key.name, subscriptions: chosen as string[], workspaces: workspaces as number | undefined };
}

/** `nowMs`: the emulator clock, for the new resources' timestamps and etags. */
/** Gives a fleet identity the key role: an ARM role assignment on the vault, or a local one on the HSM key. */
function keyRoleGrant(world: World, store: VaultRecord | ManagedHsmRecord, keyName: string, nowMs: number): (principalId: string, fhirServiceId: string) => void {
  if (isManagedHsm(store)) {
    return (principalId, fhirServiceId) => {
      const name = derivedGuid(`fleet-role:${fhirServiceId}`);
      store.localRoleAssignments.set(name, { name, scope: `/keys/${keyName}`, roleId: HSM_ROLE.cryptoServiceEncryptionUser, principalId });
    };
  }
  const scope = vaultResourceId(store);
  const keyRole = roleDefinitionId(ROLE.keyVaultCryptoServiceEncryptionUser, store.subscriptionId);
  return (principalId, fhirServiceId) => {
    addRoleAssignment(world, { name: derivedGuid(`fleet-role:${fhirServiceId}`), scope, roleDefinitionId: keyRole, principalId, createdBy: SERVICE_APP.objectId }, nowMs);
  };
}

export function createFleet(world: World, input: Record<string, unknown>, nowMs: number): { created: number; fhirServiceIds: string[] } {
  const request = readInput(world, input);
  const grantKeyRole = keyRoleGrant(world, request.store, request.keyName, nowMs);
  const created = systemData(SERVICE_APP.objectId, undefined, nowMs);
  const plans = split(request.count, request.subscriptions.length).map((services, index) => {
    const subscriptionId = request.subscriptions[index] as string;
    const group = [...world.resourceGroups.values()].find((candidate) => lower(candidate.subscriptionId) === lower(subscriptionId));
    if (!group) throw new ScenarioError(409, "NoResourceGroup", `Subscription '${subscriptionId}' has no resource group to put a fleet in.`);
    const perWorkspace = split(services, request.workspaces ?? Math.max(1, Math.ceil(services / SERVICES_PER_WORKSPACE)));
    return { subscriptionId: group.subscriptionId, resourceGroup: group.name, perWorkspace };
  });
  // Refuse before changing anything: a second fleet would reuse the names.
  for (const plan of plans) {
    for (let index = 0; index < plan.perWorkspace.length; index++) {
      const address = { subscriptionId: plan.subscriptionId, resourceGroup: plan.resourceGroup, workspace: `wsfleet${index}` };
      if (world.workspaces.has(idKey(workspaceResourceId(address)))) {
        throw new ScenarioError(409, "FleetExists", `Workspace '${address.workspace}' exists already in resource group '${plan.resourceGroup}': POST /_sandbox/reset before creating another fleet.`);
      }
    }
  }

  const fhirServiceIds: string[] = [];
  for (const plan of plans) {
    plan.perWorkspace.forEach((services, index) => {
      const place = { subscriptionId: plan.subscriptionId, resourceGroup: plan.resourceGroup, workspace: `wsfleet${index}` };
      const workspace = composeWorkspace({ address: place, location: LOCATION, tags: {}, systemData: created, nowMs });
      world.workspaces.set(idKey(workspace.id), workspace);
      for (let service = 0; service < services; service++) {
        const name = `fleet-${fhirServiceIds.length}`;
        const principalId = derivedGuid(`fleet-principal:${workspace.id}/${name}`);
        const resource = composeFhirService({
          address: { ...place, name },
          tenantId: world.tenantId,
          location: LOCATION,
          kind: "fhir-R4",
          tags: {},
          identity: { type: "SystemAssigned", principalId, tenantId: world.tenantId },
          properties: { encryption: { customerManagedKeyEncryption: { keyEncryptionKeyUrl: request.keyUrl } } },
          provisioningState: "Succeeded",
          systemData: created,
          nowMs,
        });
        world.fhirServices.set(idKey(resource.id), resource);
        grantKeyRole(principalId, resource.id);
        fhirServiceIds.push(resource.id);
      }
    });
  }
  return { created: fhirServiceIds.length, fhirServiceIds };
}
