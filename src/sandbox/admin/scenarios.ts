import { addRoleAssignment } from "../arm/authorization.js";
import { encryptionPrincipal, keyStoreOf, parseKeyUrl } from "../key-access.js";
import { recoverDeletedKey, softDeleteKey } from "../key-vault/model.js";
import { isRecord } from "../http/responses.js";
import { newGuid } from "../ids.js";
import { findRoleByIdOrName, scopeCovers } from "../rbac.js";
import { roleDefinitionId } from "../seed.js";
import { idKey, lower, subscriptionOfScope, type VaultRecord, type World } from "../world.js";
import { defineRole } from "./custom-roles.js";
import { createFleet } from "./fleet.js";
import { ScenarioError } from "./scenario-error.js";

/**
 * `POST /_sandbox/scenarios`: out-of-band changes that make a FHIR service lose (or regain) its key,
 * the way an operator or an incident would.
 *
 * - `disableKey` / `enableKey`: `{ keyUrl }` or `{ vault, key, version? }`. With a version, that
 *   version; without one, every version of the key.
 * - `deleteKey` / `recoverKey`: `{ keyUrl }` or `{ vault, key }`: soft delete, and recover.
 * - `removeRoleAssignments`: `{ principalId | fhirServiceId | userAssignedIdentityId, scope? }`: removes
 *   that principal's assignments (only those at or below `scope` when given).
 * - `disableIdentity` / `enableIdentity`: `{ principalId | fhirServiceId | userAssignedIdentityId }`.
 * - `addRoleAssignment` (extension): `{ principalId | fhirServiceId | userAssignedIdentityId, role, scope }`
 *   where `role` is a built-in role name or id, e.g. to give a principal back its key access.
 * - `defineRole` (extension): `{ role: { Name, Actions, DataActions, AssignableScopes, ... } }`, a custom
 *   role in `az role definition create` form (see custom-roles.ts); `addRoleAssignment` then takes its name.
 * - `createFleet` (api-contract v1.1): `{ count, keyUrl, subscriptions?, workspaces? }`, see fleet.ts.
 */

interface KeyTarget {
  vault: VaultRecord;
  keyName: string;
  version?: string;
}

function keyTarget(world: World, input: Record<string, unknown>): KeyTarget {
  let vaultName: unknown = input.vault;
  let keyName: unknown = input.key;
  let version: unknown = input.version;
  let managedHsm = false;
  if (typeof input.keyUrl === "string") {
    const parsed = parseKeyUrl(input.keyUrl);
    if (!parsed) throw new ScenarioError(400, "InvalidKeyUrl", `'${input.keyUrl}' is not a Key Vault or Managed HSM key URL.`);
    ({ vaultName, keyName, version, managedHsm } = parsed);
  }
  if (typeof vaultName !== "string" || typeof keyName !== "string") {
    throw new ScenarioError(400, "InvalidScenario", "Name the key with 'keyUrl' or with 'vault' and 'key'.");
  }
  const vault = keyStoreOf(world, { vaultName, keyName, managedHsm });
  if (!vault) throw new ScenarioError(404, "VaultNotFound", `Vault '${vaultName}' does not exist.`);
  const target: KeyTarget = { vault, keyName };
  if (typeof version === "string" && version !== "") target.version = lower(version);
  return target;
}

function principalTarget(world: World, input: Record<string, unknown>): string {
  if (typeof input.principalId === "string") return lower(input.principalId);
  if (typeof input.fhirServiceId === "string") {
    const service = world.fhirServices.get(idKey(input.fhirServiceId));
    if (!service) throw new ScenarioError(404, "FhirServiceNotFound", `FHIR service '${input.fhirServiceId}' does not exist.`);
    const principal = encryptionPrincipal(world, service);
    if (!principal) throw new ScenarioError(409, "NoIdentity", `FHIR service '${input.fhirServiceId}' has no managed identity.`);
    return lower(principal.principalId);
  }
  if (typeof input.userAssignedIdentityId === "string") {
    const identity = world.identities.get(idKey(input.userAssignedIdentityId));
    if (!identity) throw new ScenarioError(404, "IdentityNotFound", `Identity '${input.userAssignedIdentityId}' does not exist.`);
    return lower(identity.principalId);
  }
  throw new ScenarioError(400, "InvalidScenario", "Name the principal with 'principalId', 'fhirServiceId' or 'userAssignedIdentityId'.");
}

function setKeyEnabled(world: World, input: Record<string, unknown>, enabled: boolean, nowMs: number): Record<string, unknown> {
  const target = keyTarget(world, input);
  const key = target.vault.keys.get(lower(target.keyName));
  if (!key) throw new ScenarioError(404, "KeyNotFound", `Key '${target.keyName}' does not exist in vault '${target.vault.name}'.`);
  const versions = target.version ? key.versions.filter((candidate) => candidate.version === target.version) : key.versions;
  if (versions.length === 0) throw new ScenarioError(404, "KeyNotFound", `Key '${target.keyName}' has no version '${target.version}'.`);
  const now = Math.floor(nowMs / 1000);
  for (const version of versions) {
    version.enabled = enabled;
    version.updated = now;
  }
  return { vault: target.vault.name, key: key.name, versions: versions.map((version) => version.version), enabled };
}

/** `nowMs`: the emulator clock. */
export function runScenario(world: World, body: unknown, nowMs: number): Record<string, unknown> {
  if (!isRecord(body) || typeof body.action !== "string") throw new ScenarioError(400, "InvalidScenario", "The body needs an 'action'.");
  const { action } = body;
  switch (action) {
    case "disableKey":
    case "enableKey":
      return { action, ...setKeyEnabled(world, body, action === "enableKey", nowMs) };
    case "deleteKey": {
      const target = keyTarget(world, body);
      const deleted = softDeleteKey(target.vault, target.keyName, Math.floor(nowMs / 1000));
      if (!deleted) throw new ScenarioError(404, "KeyNotFound", `Key '${target.keyName}' does not exist in vault '${target.vault.name}'.`);
      return { action, vault: target.vault.name, key: deleted.key.name, deletedDate: deleted.deletedDate, scheduledPurgeDate: deleted.scheduledPurgeDate };
    }
    case "recoverKey": {
      const target = keyTarget(world, body);
      const key = recoverDeletedKey(target.vault, target.keyName);
      if (!key) throw new ScenarioError(404, "KeyNotFound", `No deleted key '${target.keyName}' in vault '${target.vault.name}'.`);
      return { action, vault: target.vault.name, key: key.name };
    }
    case "removeRoleAssignments": {
      const principalId = principalTarget(world, body);
      const scope = typeof body.scope === "string" ? body.scope : "/";
      const removed: string[] = [];
      for (const [name, assignment] of world.roleAssignments) {
        if (lower(assignment.principalId) !== principalId || !scopeCovers(scope, assignment.scope)) continue;
        world.roleAssignments.delete(name);
        removed.push(assignment.name);
      }
      return { action, principalId, removed };
    }
    case "addRoleAssignment": {
      const principalId = principalTarget(world, body);
      const role = typeof body.role === "string" ? findRoleByIdOrName(body.role, world) : undefined;
      if (!role) throw new ScenarioError(400, "InvalidScenario", "'role' must name a built-in role or a role made by 'defineRole' (name or id).");
      if (typeof body.scope !== "string" || !body.scope.startsWith("/")) throw new ScenarioError(400, "InvalidScenario", "'scope' must be an ARM scope such as a vault id.");
      const scope = body.scope;
      if (role.assignableScopes && !role.assignableScopes.some((assignable) => scopeCovers(assignable, scope))) {
        throw new ScenarioError(400, "InvalidScenario", `Role '${role.roleName}' is not assignable at '${scope}': its AssignableScopes are ${role.assignableScopes.join(", ")}.`);
      }
      const { name } = addRoleAssignment(world, {
        name: newGuid(),
        scope: body.scope,
        // As Azure reports it: scoped to the subscription the assignment lives in.
        roleDefinitionId: roleDefinitionId(role.id, subscriptionOfScope(body.scope, world.subscriptionId)),
        principalId,
        createdBy: null,
      }, nowMs);
      return { action, principalId, role: role.roleName, scope: body.scope, name };
    }
    case "disableIdentity":
    case "enableIdentity": {
      const principalId = principalTarget(world, body);
      if (action === "disableIdentity") world.disabledPrincipals.add(principalId);
      else world.disabledPrincipals.delete(principalId);
      return { action, principalId, disabled: action === "disableIdentity" };
    }
    case "createFleet":
      return createFleet(world, body, nowMs);
    case "defineRole":
      return defineRole(world, body);
    default:
      throw new ScenarioError(
        400,
        "UnknownAction",
        `Unknown action '${action}'. Use disableKey, enableKey, deleteKey, recoverKey, removeRoleAssignments, addRoleAssignment, defineRole, disableIdentity, enableIdentity or createFleet.`,
      );
  }
}
