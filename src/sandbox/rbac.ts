import * as seed from "./seed.js";
import type { RoleAssignmentRecord, RoleDefinition, World } from "./world.js";

export type { RoleDefinition } from "./world.js";

/**
 * Built-in role definitions the sandbox knows (azure-contracts.md 6.1; action lists from the Azure
 * built-in roles reference) and the permission check shared by ARM, Key Vault and the FHIR RP.
 */

const KEY_VAULT_READ_ACTIONS = [
  "Microsoft.Authorization/*/read",
  "Microsoft.Insights/alertRules/*",
  "Microsoft.Resources/deployments/*",
  "Microsoft.Resources/subscriptions/resourceGroups/read",
  "Microsoft.Support/*",
  "Microsoft.KeyVault/checkNameAvailability/read",
  "Microsoft.KeyVault/deletedVaults/read",
  "Microsoft.KeyVault/locations/*/read",
  "Microsoft.KeyVault/vaults/*/read",
  "Microsoft.KeyVault/operations/read",
];

function role(id: string, roleName: string, description: string, permissions: Partial<RoleDefinition>): RoleDefinition {
  return { id, roleName, description, actions: [], notActions: [], dataActions: [], notDataActions: [], ...permissions };
}

export const ROLE_DEFINITIONS: readonly RoleDefinition[] = [
  role(seed.ROLE.owner, "Owner", "Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.", {
    actions: ["*"],
  }),
  role(seed.ROLE.contributor, "Contributor", "Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC, manage assignments in Azure Blueprints, or share image galleries.", {
    actions: ["*"],
    notActions: [
      "Microsoft.Authorization/*/Delete",
      "Microsoft.Authorization/*/Write",
      "Microsoft.Authorization/elevateAccess/Action",
      "Microsoft.Blueprint/blueprintAssignments/write",
      "Microsoft.Blueprint/blueprintAssignments/delete",
      "Microsoft.Compute/galleries/share/action",
    ],
  }),
  role(seed.ROLE.reader, "Reader", "View all resources, but does not allow you to make any changes.", { actions: ["*/read"] }),
  role(seed.ROLE.userAccessAdministrator, "User Access Administrator", "Lets you manage user access to Azure resources.", {
    actions: ["*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"],
  }),
  role(seed.ROLE.keyVaultAdministrator, "Key Vault Administrator", "Perform all data plane operations on a key vault and all objects in it, including certificates, keys, and secrets. Cannot manage key vault resources or manage role assignments. Only works for key vaults that use the 'Azure role-based access control' permission model.", {
    actions: KEY_VAULT_READ_ACTIONS,
    dataActions: ["Microsoft.KeyVault/vaults/*"],
  }),
  role(seed.ROLE.keyVaultReader, "Key Vault Reader", "Read metadata of key vaults and its certificates, keys, and secrets. Cannot read sensitive values such as secret contents or key material. Only works for key vaults that use the 'Azure role-based access control' permission model.", {
    actions: KEY_VAULT_READ_ACTIONS,
    dataActions: ["Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/vaults/secrets/readMetadata/action"],
  }),
  role(seed.ROLE.keyVaultCryptoOfficer, "Key Vault Crypto Officer", "Perform any action on the keys of a key vault, except manage permissions. Only works for key vaults that use the 'Azure role-based access control' permission model.", {
    actions: KEY_VAULT_READ_ACTIONS,
    dataActions: ["Microsoft.KeyVault/vaults/keys/*", "Microsoft.KeyVault/vaults/keyrotationpolicies/*"],
  }),
  role(seed.ROLE.keyVaultCryptoUser, "Key Vault Crypto User", "Perform cryptographic operations using keys. Only works for key vaults that use the 'Azure role-based access control' permission model.", {
    dataActions: [
      "Microsoft.KeyVault/vaults/keys/read",
      "Microsoft.KeyVault/vaults/keys/update/action",
      "Microsoft.KeyVault/vaults/keys/backup/action",
      "Microsoft.KeyVault/vaults/keys/encrypt/action",
      "Microsoft.KeyVault/vaults/keys/decrypt/action",
      "Microsoft.KeyVault/vaults/keys/wrap/action",
      "Microsoft.KeyVault/vaults/keys/unwrap/action",
      "Microsoft.KeyVault/vaults/keys/sign/action",
      "Microsoft.KeyVault/vaults/keys/verify/action",
    ],
  }),
  role(seed.ROLE.keyVaultCryptoServiceEncryptionUser, "Key Vault Crypto Service Encryption User", "Read metadata of keys and perform wrap/unwrap operations. Only works for key vaults that use the 'Azure role-based access control' permission model.", {
    actions: [
      "Microsoft.EventGrid/eventSubscriptions/write",
      "Microsoft.EventGrid/eventSubscriptions/read",
      "Microsoft.EventGrid/eventSubscriptions/delete",
    ],
    dataActions: [
      "Microsoft.KeyVault/vaults/keys/read",
      "Microsoft.KeyVault/vaults/keys/wrap/action",
      "Microsoft.KeyVault/vaults/keys/unwrap/action",
    ],
  }),
];

/** Built-in roles, then the world's custom roles (when given). */
export function roleDefinitions(world?: Pick<World, "customRoles">): RoleDefinition[] {
  return [...ROLE_DEFINITIONS, ...(world?.customRoles.values() ?? [])];
}

/** Finds a role definition from any form of its id (bare GUID, tenant- or subscription-scoped); custom roles need the world. */
export function findRoleDefinition(roleDefinitionId: string, world?: Pick<World, "customRoles">): RoleDefinition | undefined {
  const guid = roleDefinitionId.split("/").pop()?.toLowerCase();
  return roleDefinitions(world).find((definition) => definition.id === guid);
}

/** A role by id or by name (case-insensitive), built-in or custom. */
export function findRoleByIdOrName(idOrName: string, world: Pick<World, "customRoles">): RoleDefinition | undefined {
  return findRoleDefinition(idOrName, world) ?? roleDefinitions(world).find((definition) => definition.roleName.toLowerCase() === idOrName.toLowerCase());
}

function wildcardMatches(pattern: string, action: string): boolean {
  const regex = new RegExp(`^${pattern.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\/]/g, "\\$&")).join(".*")}$`, "i");
  return regex.test(action);
}

function grants(allowed: string[], denied: string[], action: string): boolean {
  return allowed.some((pattern) => wildcardMatches(pattern, action)) && !denied.some((pattern) => wildcardMatches(pattern, action));
}

/** Canonical scope for comparisons: lower case, no trailing slash, root is "". */
export function normalizeScope(scope: string): string {
  return scope.toLowerCase().replace(/\/+$/, "");
}

/** True when an assignment at `assignmentScope` applies at `targetScope` (same scope or an ancestor). */
export function scopeCovers(assignmentScope: string, targetScope: string): boolean {
  const outer = normalizeScope(assignmentScope);
  const inner = normalizeScope(targetScope);
  return outer === "" || inner === outer || inner.startsWith(`${outer}/`);
}

export interface Permission {
  /** A control-plane action, e.g. `Microsoft.HealthcareApis/workspaces/fhirservices/write`. */
  action?: string;
  /** A data-plane action, e.g. `Microsoft.KeyVault/vaults/keys/wrap/action`. */
  dataAction?: string;
}

/** The role assignment that grants `principalId` the permission at `scope`, if any. */
export function findGrant(world: World, principalId: string, scope: string, permission: Permission): RoleAssignmentRecord | undefined {
  const principal = principalId.toLowerCase();
  for (const assignment of world.roleAssignments.values()) {
    if (assignment.principalId.toLowerCase() !== principal || !scopeCovers(assignment.scope, scope)) continue;
    const definition = findRoleDefinition(assignment.roleDefinitionId, world);
    if (!definition) continue;
    const actionOk = !permission.action || grants(definition.actions, definition.notActions, permission.action);
    const dataOk = !permission.dataAction || grants(definition.dataActions, definition.notDataActions, permission.dataAction);
    if (actionOk && dataOk) return assignment;
  }
  return undefined;
}
