import { HSM_ROLE } from "./seed.js";
import type { LocalRoleAssignmentRecord, ManagedHsmRecord } from "./world.js";

/**
 * Managed HSM local RBAC: built-in role definitions with the data actions of the "Permitted operations"
 * table (MicrosoftDocs azure-security-docs `articles/key-vault/managed-hsm/built-in-roles.md`), scopes
 * `/`, `/keys` and `/keys/{name}`, and the check the HSM's data plane and the FHIR RP share.
 */

const PREFIX = "Microsoft.KeyVault/managedHsm";

export interface LocalRoleDefinition {
  id: string;
  roleName: string;
  description: string;
  dataActions: string[];
}

const ROLE_READ = ["roleAssignments/read/action", "roleDefinitions/read/action"];
const ROLE_WRITE = ["roleAssignments/write/action", "roleAssignments/delete/action", "roleDefinitions/write/action", "roleDefinitions/delete/action"];

function role(id: string, roleName: string, description: string, dataActions: string[]): LocalRoleDefinition {
  return { id, roleName, description, dataActions: dataActions.map((action) => `${PREFIX}/${action}`) };
}

export const LOCAL_ROLE_DEFINITIONS: readonly LocalRoleDefinition[] = [
  role(HSM_ROLE.administrator, "Managed HSM Administrator", "Grants permissions to perform all operations related to the security domain, full backup and restore, and role management. Not permitted to perform any key management operations.", [
    "securitydomain/download/action",
    "securitydomain/upload/action",
    "securitydomain/upload/read",
    "securitydomain/transferkey/read",
    ...ROLE_READ,
    ...ROLE_WRITE,
    "backup/start/action",
    "backup/status/action",
    "restore/start/action",
    "restore/status/action",
  ]),
  role(HSM_ROLE.cryptoOfficer, "Managed HSM Crypto Officer", "Grants permissions to perform all role management, purge or recover deleted keys, and export keys. Not permitted to perform any other key management operations.", [
    "keys/deletedKeys/read/action",
    "keys/deletedKeys/recover/action",
    "keys/deletedKeys/delete",
    ...ROLE_READ,
    ...ROLE_WRITE,
  ]),
  role(HSM_ROLE.cryptoUser, "Managed HSM Crypto User", "Grants permissions to perform all key management operations except purge or recover deleted keys and export keys.", [
    "keys/read/action",
    "keys/write/action",
    "keys/rotate/action",
    "keys/create",
    "keys/delete",
    "keys/backup/action",
    "keys/restore/action",
    "keys/release/action",
    "keys/import/action",
    "keys/encrypt/action",
    "keys/decrypt/action",
    "keys/wrap/action",
    "keys/unwrap/action",
    "keys/sign/action",
    "keys/verify/action",
    ...ROLE_READ,
  ]),
  role(HSM_ROLE.policyAdministrator, "Managed HSM Policy Administrator", "Grants permissions to create and delete role assignments.", [...ROLE_READ, ...ROLE_WRITE]),
  role(HSM_ROLE.cryptoAuditor, "Managed HSM Crypto Auditor", "Grants read permissions to read (but not use) key attributes.", ["keys/read/action", "keys/deletedKeys/delete", ...ROLE_READ]),
  role(HSM_ROLE.cryptoServiceEncryptionUser, "Managed HSM Crypto Service Encryption User", "Grants permissions to use a key for service encryption.", [
    "keys/read/action",
    "keys/wrap/action",
    "keys/unwrap/action",
  ]),
  role(HSM_ROLE.cryptoServiceReleaseUser, "Managed HSM Crypto Service Release User", "Grants permissions to release a key to a trusted execution environment.", ["keys/read/action", "keys/release/action"]),
  role(HSM_ROLE.backup, "Managed HSM Backup", "Grants permissions to perform single-key or whole-HSM backup.", ["keys/backup/action", "backup/start/action", "backup/status/action"]),
  role(HSM_ROLE.restore, "Managed HSM Restore", "Grants permissions to perform single-key or whole-HSM restore.", ["keys/restore/action", "restore/start/action", "restore/status/action"]),
];

/** The form a local role definition id takes on the wire. */
export function localRoleDefinitionId(roleId: string): string {
  return `Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/${roleId}`;
}

/** A local role definition from its GUID, its wire id or its name. */
export function findLocalRoleDefinition(idOrName: string): LocalRoleDefinition | undefined {
  const guid = idOrName.split("/").pop()?.toLowerCase();
  return LOCAL_ROLE_DEFINITIONS.find((definition) => definition.id === guid || definition.roleName.toLowerCase() === idOrName.toLowerCase());
}

/** `/`, `/keys` or `/keys/{name}`, lower case, no trailing slash; anything else is undefined. */
export function normalizeLocalScope(scope: string): string | undefined {
  const trimmed = scope.replace(/\/+$/, "").toLowerCase() || "/";
  return /^\/(?:keys(?:\/[0-9a-z-]{1,127})?)?$/.test(trimmed) ? trimmed : undefined;
}

/** True when an assignment at `assignmentScope` applies at `targetScope` (same scope or above it). */
export function localScopeCovers(assignmentScope: string, targetScope: string): boolean {
  const outer = normalizeLocalScope(assignmentScope);
  const inner = normalizeLocalScope(targetScope);
  if (!outer || !inner) return false;
  return outer === "/" || inner === outer || inner.startsWith(`${outer}/`);
}

/** The local role assignment that grants `principalId` the data action at `scope`, if any. */
export function findLocalGrant(hsm: ManagedHsmRecord, principalId: string, scope: string, dataAction: string): LocalRoleAssignmentRecord | undefined {
  const principal = principalId.toLowerCase();
  for (const assignment of hsm.localRoleAssignments.values()) {
    if (assignment.principalId.toLowerCase() !== principal || !localScopeCovers(assignment.scope, scope)) continue;
    const definition = findLocalRoleDefinition(assignment.roleId);
    if (definition?.dataActions.some((action) => action.toLowerCase() === dataAction.toLowerCase())) return assignment;
  }
  return undefined;
}

export function isManagedHsm(store: object): store is ManagedHsmRecord {
  return "localRoleAssignments" in store;
}
