/**
 * What the service's own identity must be allowed to do, per operation and per kind of scope, and how a
 * principal's permissions at a scope (`Microsoft.Authorization/permissions`: one entry per role assignment,
 * each with actions, notActions, dataActions and notDataActions) answer it. Plain functions, no I/O: the
 * self-check reads the permissions, these decide. deploy/cmk-service-role.json is the union of the
 * requirements (a test keeps them equal), deploy/cmk-service-reader-role.json that of the read-only operations.
 */

/** What the service does, as the self-check reports it (a change request's operation, or one of its own jobs). */
export const SERVICE_OPERATIONS = ["Validate", "ComplianceScan", "SetKey", "SetKeyUserAssigned", "CreateService", "RotateKey", "RecoverKeyAccess", "FleetRotation"] as const;
export type ServiceOperation = (typeof SERVICE_OPERATIONS)[number];

/** Operations that only read: what the reader role allows. */
export const READ_ONLY_OPERATIONS: readonly ServiceOperation[] = ["Validate", "ComplianceScan"];

/**
 * Where a permission is checked: a subscription (listing its workspaces, reading a long-running operation's
 * result: both asked of the subscription itself, so an assignment at a resource group does not do; no
 * permissions listing is documented there, so these two are probed with the request itself), the resource
 * group of a FHIR service's workspace (inheriting what is assigned above it), a user-assigned identity a FHIR
 * service uses, a key vault (its data actions too), a Managed HSM (its ARM resource) and a Managed HSM key:
 * the HSM's keys answer to its own local RBAC, not to Azure role assignments, so those data actions are
 * judged from the HSM's local role assignments and are no part of the Azure role.
 */
export const PERMISSION_SCOPE_KINDS = ["subscription", "resourceGroup", "userAssignedIdentity", "vault", "managedHsm", "managedHsmKey"] as const;
export type PermissionScopeKind = (typeof PERMISSION_SCOPE_KINDS)[number];

export type PermissionPlane = "action" | "dataAction";

export interface PermissionRequirement {
  scope: PermissionScopeKind;
  plane: PermissionPlane;
  permission: string;
  operations: readonly ServiceOperation[];
}

const EVERY: readonly ServiceOperation[] = SERVICE_OPERATIONS;
const WRITES: readonly ServiceOperation[] = ["SetKey", "SetKeyUserAssigned", "CreateService", "RotateKey", "RecoverKeyAccess", "FleetRotation"];
const USER_ASSIGNED: readonly ServiceOperation[] = ["Validate", "SetKeyUserAssigned"];

const action = (scope: PermissionScopeKind, permission: string, operations: readonly ServiceOperation[]): PermissionRequirement => ({ scope, plane: "action", permission, operations });
const dataAction = (scope: PermissionScopeKind, permission: string, operations: readonly ServiceOperation[]): PermissionRequirement => ({ scope, plane: "dataAction", permission, operations });

/** README "Deployment" has this table in words; `test/worker/custom-role.test.ts` shows each one is used. */
export const PERMISSION_REQUIREMENTS: readonly PermissionRequirement[] = [
  action("subscription", "Microsoft.HealthcareApis/workspaces/read", ["ComplianceScan", "FleetRotation"]),
  action("subscription", "Microsoft.HealthcareApis/locations/operationresults/read", WRITES),
  action("resourceGroup", "Microsoft.HealthcareApis/workspaces/read", ["CreateService"]),
  action("resourceGroup", "Microsoft.HealthcareApis/workspaces/fhirservices/read", EVERY),
  action("resourceGroup", "Microsoft.HealthcareApis/workspaces/fhirservices/write", WRITES),
  action("resourceGroup", "Microsoft.Authorization/roleAssignments/read", EVERY),
  action("resourceGroup", "Microsoft.Authorization/roleDefinitions/read", EVERY),
  action("userAssignedIdentity", "Microsoft.ManagedIdentity/userAssignedIdentities/read", USER_ASSIGNED),
  action("userAssignedIdentity", "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action", ["SetKeyUserAssigned"]),
  action("vault", "Microsoft.KeyVault/vaults/read", EVERY),
  dataAction("vault", "Microsoft.KeyVault/vaults/keys/read", EVERY),
  dataAction("vault", "Microsoft.KeyVault/vaults/keys/rotate/action", ["RotateKey", "FleetRotation"]),
  dataAction("vault", "Microsoft.KeyVault/vaults/keys/recover/action", ["RecoverKeyAccess"]),
  // A scan judges an HSM key by its versions alone (data plane): it never reads the HSM through ARM.
  action("managedHsm", "Microsoft.KeyVault/managedHSMs/read", EVERY.filter((operation) => operation !== "ComplianceScan")),
  dataAction("managedHsmKey", "Microsoft.KeyVault/managedHsm/keys/read/action", EVERY),
  dataAction("managedHsmKey", "Microsoft.KeyVault/managedHsm/keys/rotate/action", ["RotateKey", "FleetRotation"]),
];

/**
 * The actions and data actions of the Azure role a set of operations needs, each once, in table order (a
 * Managed HSM's local RBAC is granted apart, with its own built-in roles).
 */
export function requiredPermissions(operations: readonly ServiceOperation[] = SERVICE_OPERATIONS): { actions: string[]; dataActions: string[] } {
  const needed = PERMISSION_REQUIREMENTS.filter(
    (requirement) => requirement.scope !== "managedHsmKey" && requirement.operations.some((operation) => operations.includes(operation)),
  );
  const of = (plane: PermissionPlane) => [...new Set(needed.filter((requirement) => requirement.plane === plane).map((requirement) => requirement.permission))];
  return { actions: of("action"), dataActions: of("dataAction") };
}

/** One entry of `Microsoft.Authorization/permissions`: what one role assignment allows at the scope. */
export interface PermissionEntry {
  actions?: readonly string[];
  notActions?: readonly string[];
  dataActions?: readonly string[];
  notDataActions?: readonly string[];
}

/** ARM's wildcard match: each `*` stands for any characters (as in `Microsoft.KeyVault/vaults/keys/*`), case-insensitive. */
export function permissionMatches(pattern: string, permission: string): boolean {
  const parts = pattern.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\/]/g, "\\$&"));
  return new RegExp(`^${parts.join(".*")}$`, "i").test(permission);
}

/**
 * True when some entry allows the permission and the same entry does not exclude it: a `notActions` of one
 * role assignment takes nothing away from another (Azure RBAC is additive; notActions are not deny rules).
 */
export function isPermitted(entries: readonly PermissionEntry[], plane: PermissionPlane, permission: string): boolean {
  return entries.some((entry) => {
    const allowed = (plane === "action" ? entry.actions : entry.dataActions) ?? [];
    const excluded = (plane === "action" ? entry.notActions : entry.notDataActions) ?? [];
    return allowed.some((pattern) => permissionMatches(pattern, permission)) && !excluded.some((pattern) => permissionMatches(pattern, permission));
  });
}

export interface MissingPermission {
  plane: PermissionPlane;
  permission: string;
  /** The operations that cannot run without it. */
  operations: ServiceOperation[];
}

export interface ScopeVerdict {
  granted: string[];
  missing: MissingPermission[];
}

/**
 * The requirements of one kind of scope against the permissions found there. `planes` leaves out what
 * cannot be judged from them (a vault on access policies: its data actions are not RBAC).
 */
export function judgeScope(kind: PermissionScopeKind, entries: readonly PermissionEntry[], planes: readonly PermissionPlane[] = ["action", "dataAction"]): ScopeVerdict {
  const verdict: ScopeVerdict = { granted: [], missing: [] };
  for (const requirement of PERMISSION_REQUIREMENTS) {
    if (requirement.scope !== kind || !planes.includes(requirement.plane)) continue;
    if (isPermitted(entries, requirement.plane, requirement.permission)) verdict.granted.push(requirement.permission);
    else verdict.missing.push({ plane: requirement.plane, permission: requirement.permission, operations: [...requirement.operations] });
  }
  return verdict;
}

/**
 * The requirements of one kind of scope judged by probing: `granted` says, per permission, whether the
 * request that needs it was allowed (true), refused with 403 (false) or could not tell (absent: left out).
 */
export function judgeProbes(kind: PermissionScopeKind, granted: ReadonlyMap<string, boolean>): ScopeVerdict {
  const verdict: ScopeVerdict = { granted: [], missing: [] };
  for (const requirement of PERMISSION_REQUIREMENTS) {
    if (requirement.scope !== kind) continue;
    const answer = granted.get(requirement.permission);
    if (answer === true) verdict.granted.push(requirement.permission);
    else if (answer === false) verdict.missing.push({ plane: requirement.plane, permission: requirement.permission, operations: [...requirement.operations] });
  }
  return verdict;
}

/** Operations blocked by any of the missing permissions, in SERVICE_OPERATIONS order. */
export function blockedOperations(missing: readonly Pick<MissingPermission, "operations">[]): ServiceOperation[] {
  const blocked = new Set(missing.flatMap((entry) => entry.operations));
  return SERVICE_OPERATIONS.filter((operation) => blocked.has(operation));
}

/** The role the README tells operators to create from deploy/cmk-service-role.json. */
export const OPERATOR_ROLE_NAME = "CMK Service Operator";

/**
 * The Azure CLI command that grants the service's identity the operator role at a scope. A subscription
 * scope is what the README recommends: operation results are read at the subscription, so an assignment at
 * a resource group alone is not enough for a write.
 */
export function roleAssignmentCommand(principalObjectId: string, scope: string, role: string = OPERATOR_ROLE_NAME): string {
  return `az role assignment create --assignee-object-id ${principalObjectId} --assignee-principal-type ServicePrincipal --role "${role}" --scope ${scope}`;
}

/** The Managed HSM local role with the key permissions the service uses (read, rotate), at the key's scope. */
export function managedHsmRoleAssignmentCommand(principalObjectId: string, hsmName: string, keyName: string): string {
  return `az keyvault role assignment create --hsm-name ${hsmName} --role "Managed HSM Crypto User" --assignee-object-id ${principalObjectId} --assignee-principal-type ServicePrincipal --scope /keys/${keyName}`;
}
