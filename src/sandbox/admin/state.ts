import { keyId, recoveryLevel, versionSummary } from "../key-vault/model.js";
import { findRoleDefinition } from "../rbac.js";
import type { SandboxRuntime } from "../runtime.js";
import { findLocalRoleDefinition } from "../managed-hsm-rbac.js";
import type { KeyRecord, ManagedHsmRecord, VaultRecord } from "../world.js";

/** `GET /_sandbox/state`: the whole emulated world as JSON, without private key material. */

function keySummary(vault: VaultRecord, key: KeyRecord): Record<string, unknown> {
  const host = "localRoleAssignments" in vault ? `${vault.name}.managedhsm.azure.net` : `${vault.name}.vault.azure.net`;
  return {
    name: key.name,
    kid: keyId(host, key.name),
    currentVersion: key.versions[key.versions.length - 1]?.version,
    versions: key.versions.map(versionSummary),
    ...(key.rotationPolicy ? { rotationPolicy: key.rotationPolicy } : {}),
  };
}

function vaultSummary(vault: VaultRecord): Record<string, unknown> {
  return {
    name: vault.name,
    id: `/subscriptions/${vault.subscriptionId}/resourceGroups/${vault.resourceGroup}/providers/Microsoft.KeyVault/vaults/${vault.name}`,
    vaultUri: `https://${vault.name}.vault.azure.net/`,
    location: vault.location,
    enableSoftDelete: true,
    softDeleteRetentionInDays: vault.softDeleteRetentionInDays,
    enablePurgeProtection: vault.purgeProtection,
    publicNetworkAccess: vault.publicNetworkAccess,
    networkAcls: vault.networkAcls ?? null,
    recoveryLevel: recoveryLevel(vault),
    keys: [...vault.keys.values()].map((key) => keySummary(vault, key)),
    deletedKeys: [...vault.deletedKeys.values()].map((deleted) => ({
      ...keySummary(vault, deleted.key),
      deletedDate: deleted.deletedDate,
      scheduledPurgeDate: deleted.scheduledPurgeDate,
    })),
  };
}

function managedHsmSummary(hsm: ManagedHsmRecord): Record<string, unknown> {
  const { vaultUri: _vaultUri, id: _id, ...vault } = vaultSummary(hsm);
  return {
    ...vault,
    id: `/subscriptions/${hsm.subscriptionId}/resourceGroups/${hsm.resourceGroup}/providers/Microsoft.KeyVault/managedHSMs/${hsm.name}`,
    hsmUri: `https://${hsm.name}.managedhsm.azure.net/`,
    localRoleAssignments: [...hsm.localRoleAssignments.values()].map((assignment) => ({ ...assignment, roleName: findLocalRoleDefinition(assignment.roleId)?.roleName ?? null })),
  };
}

export function worldSnapshot(runtime: SandboxRuntime): Record<string, unknown> {
  const { world } = runtime;
  return {
    tenantId: world.tenantId,
    subscriptionId: world.subscriptionId,
    subscriptions: [...world.subscriptions],
    resourceGroups: [...world.resourceGroups.values()],
    workspaces: [...world.workspaces.values()],
    fhirServices: [...world.fhirServices.values()],
    vaults: [...world.vaults.values()].map(vaultSummary),
    managedHsms: [...world.managedHsms.values()].map(managedHsmSummary),
    identities: [...world.identities.values()].map((identity) => ({
      id: `/subscriptions/${identity.subscriptionId}/resourcegroups/${identity.resourceGroup}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${identity.name}`,
      ...identity,
      disabled: world.disabledPrincipals.has(identity.principalId.toLowerCase()),
    })),
    disabledPrincipals: [...world.disabledPrincipals],
    roleAssignments: [...world.roleAssignments.values()].map((assignment) => ({
      id: `${assignment.scope === "/" ? "" : assignment.scope}/providers/Microsoft.Authorization/roleAssignments/${assignment.name}`,
      ...assignment,
      roleName: findRoleDefinition(assignment.roleDefinitionId, world)?.roleName ?? null,
    })),
    operations: [...world.operations.values()].map((operation) => ({
      id: operation.id,
      resourceId: operation.resourceId,
      method: operation.method,
      status: operation.status,
      startTime: operation.startTime,
      durationMs: operation.durationMs,
      ...(operation.error ? { error: operation.error } : {}),
    })),
    deployments: [...world.deployments.values()].map((deployment) => ({
      id: deployment.id,
      provisioningState: deployment.provisioningState,
      resources: deployment.steps.map((step) => ({ id: step.resource.id, status: step.status })),
      ...(deployment.error ? { error: deployment.error } : {}),
    })),
    faults: runtime.faults.snapshot(),
    throttling: runtime.throttling.snapshot(),
    eventGrid: runtime.events.snapshot(),
    lroMs: runtime.lroMs(),
  };
}
