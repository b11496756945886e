import { canonicalArmId } from "../arm-ids.js";
import type { RequestedIdentity } from "../fhir-resource.js";
import { isManagedHsmKey, type KeyUrl } from "../key-url.js";
import { failed, passed, skipped, warning, type CheckResult } from "./check-result.js";
import type { Fact, FhirServiceFacts, PrincipalFacts, RoleAssignmentFacts, VaultFacts } from "./facts.js";
import { vaultReadAction } from "./vault-checks.js";

/** The data actions the FHIR service needs on its key (Key Vault Crypto Service Encryption User's). */
export const REQUIRED_DATA_ACTIONS = [
  "Microsoft.KeyVault/vaults/keys/read",
  "Microsoft.KeyVault/vaults/keys/wrap/action",
  "Microsoft.KeyVault/vaults/keys/unwrap/action",
];
export const CRYPTO_SERVICE_ENCRYPTION_USER = "e147488a-f6f5-4113-8e2d-b22465e65bf6";
/** A Managed HSM's keys are reached through its local RBAC: these data actions, Managed HSM Crypto Service Encryption User's. */
export const HSM_REQUIRED_DATA_ACTIONS = [
  "Microsoft.KeyVault/managedHsm/keys/read/action",
  "Microsoft.KeyVault/managedHsm/keys/wrap/action",
  "Microsoft.KeyVault/managedHsm/keys/unwrap/action",
];
export const HSM_CRYPTO_SERVICE_ENCRYPTION_USER = "Managed HSM Crypto Service Encryption User";

/** ARM action wildcards: `*` matches any run of characters, case-insensitively. */
export function actionMatches(pattern: string, action: string): boolean {
  const regex = new RegExp(`^${pattern.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\/]/g, "\\$&")).join(".*")}$`, "i");
  return regex.test(action);
}

export function grantsKeyAccess(assignment: Pick<RoleAssignmentFacts, "dataActions" | "notDataActions">, required: readonly string[] = REQUIRED_DATA_ACTIONS): boolean {
  return required.every(
    (action) => assignment.dataActions.some((allowed) => actionMatches(allowed, action)) && !assignment.notDataActions.some((denied) => actionMatches(denied, action)),
  );
}

/** True when an assignment at `scope` applies to `resourceId` (same resource or a parent scope). */
export function scopeCovers(scope: string, resourceId: string): boolean {
  const parent = canonicalArmId(scope);
  const child = canonicalArmId(resourceId);
  return parent === "" || parent === "/" || child === parent || child.startsWith(`${parent}/`);
}

export interface IdentityCheckInput {
  request: { identity: RequestedIdentity; acknowledgeIdentityTypeChange?: boolean };
  key: KeyUrl;
  fhir: Fact<FhirServiceFacts>;
  principal: Fact<PrincipalFacts>;
  vault: Fact<VaultFacts>;
  roleAssignments: Fact<RoleAssignmentFacts[]>;
  /** RBAC changes take minutes to reach Key Vault: a granting assignment younger than this may not work yet. */
  propagationWindowMs: number;
  now: Date;
}

/** IdentitySingleType, IdentityExists, IdentityKeyAccess, IdentityTypeChange. */
export function checkIdentity(input: IdentityCheckInput): CheckResult[] {
  return [checkSingleType(input), checkExists(input), checkKeyAccess(input), checkTypeChange(input)];
}

function describePrincipal(input: IdentityCheckInput): string {
  const { identity } = input.request;
  return identity.type === "SystemAssigned" ? "the FHIR service's system-assigned identity" : `user-assigned identity ${identity.userAssignedIdentityId.split("/").at(-1)}`;
}

function checkSingleType(input: IdentityCheckInput): CheckResult {
  const requested = input.request.identity.type;
  if (input.fhir.status === "found") {
    const current = input.fhir.value;
    const many = current.identityType.includes(",") || current.userAssignedIdentityIds.length > 1;
    if (many) {
      return warning(
        "IdentitySingleType",
        `The FHIR service now has ${current.identityType}${current.userAssignedIdentityIds.length > 1 ? ` with ${current.userAssignedIdentityIds.length} user-assigned identities` : ""}; the change leaves only ${requested}.`,
        "The FHIR service supports one identity type; other features that used the removed identities must be reconfigured.",
      );
    }
  }
  return passed("IdentitySingleType", `The change uses one identity type: ${requested}.`);
}

function checkExists(input: IdentityCheckInput): CheckResult {
  const { identity } = input.request;
  if (input.principal.status === "found") {
    const principal = input.principal.value;
    if (principal.principalId) return passed("IdentityExists", `${capitalize(describePrincipal(input))} exists (principal ${principal.principalId}).`);
    return passed("IdentityExists", "The FHIR service has no system-assigned identity yet; the job turns it on before it sets the key.");
  }
  if (input.principal.status === "missing" && identity.type === "UserAssigned") {
    const name = identity.userAssignedIdentityId.split("/").at(-1);
    return failed(
      "IdentityExists",
      `User-assigned identity ${name} was not found.`,
      `Create it (az identity create --name ${name} --resource-group ${identity.userAssignedIdentityId.split("/")[4]}) or use an existing identity's ARM id.`,
    );
  }
  // An identity the service cannot read is never written to a FHIR service: it may be another
  // subscription's, and nothing proves it exists or what it may reach.
  const reason = input.principal.status === "unreadable" ? input.principal.reason : (input.principal.detail ?? "not found");
  return failed(
    "IdentityExists",
    `Could not read ${describePrincipal(input)}: ${reason}.`,
    identity.type === "UserAssigned"
      ? "Use a user-assigned identity the service can read, or give the service's identity Reader (Microsoft.ManagedIdentity/userAssignedIdentities/read) on it."
      : "Give the service's identity Contributor on the FHIR service's workspace so it can read the service and its identity.",
  );
}

function checkKeyAccess(input: IdentityCheckInput): CheckResult {
  const who = describePrincipal(input);
  if (input.principal.status !== "found") return skipped("IdentityKeyAccess", `Not checked: ${who} could not be read.`);
  const principalId = input.principal.value.principalId;
  if (!principalId) return skipped("IdentityKeyAccess", "Not checked yet: the system-assigned identity does not exist; the job checks its role after turning it on.");
  const hsm = isManagedHsmKey(input.key);
  if (!hsm && input.vault.status === "found" && !input.vault.value.enableRbacAuthorization) {
    return warning(
      "IdentityKeyAccess",
      `Vault ${input.key.vaultName} uses access policies, which this service does not read.`,
      `Make sure principal ${principalId} has key permissions get, wrapKey and unwrapKey (az keyvault set-policy --name ${input.key.vaultName} --object-id ${principalId} --key-permissions get wrapKey unwrapKey).`,
    );
  }
  // The vault's resource id comes from reading it through ARM: without it, assignments at the vault or its
  // resource group cannot be matched to the key, and no missing grant may be blamed on the identity.
  const vaultUnread = !hsm && input.vault.status === "unreadable" ? vaultUnreadWarning(input, who, principalId) : undefined;
  if (input.roleAssignments.status !== "found") {
    if (vaultUnread) return vaultUnread;
    const reason = input.roleAssignments.status === "unreadable" ? input.roleAssignments.reason : "no answer";
    return warning(
      "IdentityKeyAccess",
      `Could not list ${hsm ? `managed HSM ${input.key.vaultName}'s local role assignments` : "role assignments"} for ${who}: ${reason}.`,
      hsm
        ? `Give the service's identity a local role that reads role assignments on the HSM (az keyvault role assignment create --hsm-name ${input.key.vaultName} --role "Managed HSM Crypto User" --assignee <service principal> --scope /).`
        : "Give the service's identity Reader (Microsoft.Authorization/roleAssignments/read) on the vault.",
    );
  }
  const granting = grantingAssignments(input);
  const roleName = (assignment: RoleAssignmentFacts) => assignment.roleName ?? assignment.roleDefinitionId.split("/").at(-1);
  const settled = granting.find((assignment) => !isPropagating(assignment, input));
  if (settled) return passed("IdentityKeyAccess", `${capitalize(who)} holds ${roleName(settled)} at ${settled.scope}.`);
  const newest = granting[0];
  if (newest) {
    const ageSeconds = Math.round((input.now.getTime() - newest.createdOn!.getTime()) / 1000);
    return failed(
      "IdentityKeyAccess",
      `${capitalize(who)} holds ${roleName(newest)} at ${newest.scope}, but the assignment is only ${ageSeconds} s old and may not have reached Key Vault yet.`,
      `Wait ${Math.ceil(input.propagationWindowMs / 60_000)} minute(s) after assigning a role; a job waits for it by itself and checks again.`,
    );
  }
  if (vaultUnread) return vaultUnread;
  if (hsm) {
    return failed(
      "IdentityKeyAccess",
      `${capitalize(who)} (principal ${principalId}) holds no local role on managed HSM ${input.key.vaultName} that grants read, wrap and unwrap on key ${input.key.keyName}.`,
      `Assign ${HSM_CRYPTO_SERVICE_ENCRYPTION_USER} in the HSM's local RBAC: az keyvault role assignment create --hsm-name ${input.key.vaultName} --role "${HSM_CRYPTO_SERVICE_ENCRYPTION_USER}" --assignee-object-id ${principalId} --assignee-principal-type ServicePrincipal --scope /keys/${input.key.keyName}.`,
    );
  }
  return failed(
    "IdentityKeyAccess",
    `${capitalize(who)} (principal ${principalId}) holds no role that grants read, wrap and unwrap on key ${input.key.keyName} in ${input.key.vaultName}.`,
    `Assign Key Vault Crypto Service Encryption User: az role assignment create --role ${CRYPTO_SERVICE_ENCRYPTION_USER} --assignee-object-id ${principalId} --assignee-principal-type ServicePrincipal --scope ${vaultScope(input)}. New assignments can take several minutes to reach Key Vault.`,
  );
}

/** IdentityKeyAccess when the vault could not be read: the service's own missing permission, not the identity's. */
function vaultUnreadWarning(input: IdentityCheckInput, who: string, principalId: string): CheckResult {
  const reason = input.vault.status === "unreadable" ? input.vault.reason : "not read";
  return warning(
    "IdentityKeyAccess",
    `Not verified: the service could not read vault ${input.key.vaultName} through ARM (${reason}), so the role assignments of ${who} cannot be matched to key ${input.key.keyName} (the vault's subscription and resource group are unknown).`,
    `Give the service's identity ${vaultReadAction(input.key)} (it is in deploy/cmk-service-role.json) so it can check, or check yourself that principal ${principalId} holds Key Vault Crypto Service Encryption User on the key.`,
  );
}

/**
 * Role assignments of the principal that grant read, wrap and unwrap on the key: Azure RBAC at the key
 * or above for a vault; for a Managed HSM, its local ones at `/`, `/keys` or `/keys/{name}`.
 */
export function grantingAssignments(input: Pick<IdentityCheckInput, "roleAssignments" | "vault" | "key">): RoleAssignmentFacts[] {
  if (input.roleAssignments.status !== "found") return [];
  const hsm = isManagedHsmKey(input.key);
  const keyScope = hsm ? `/keys/${input.key.keyName}` : `${vaultScope(input)}/keys/${input.key.keyName}`;
  const required = hsm ? HSM_REQUIRED_DATA_ACTIONS : REQUIRED_DATA_ACTIONS;
  return input.roleAssignments.value.filter((assignment) => grantsKeyAccess(assignment, required) && scopeCovers(assignment.scope, keyScope));
}

/** True while an assignment is younger than the propagation window. */
export function isPropagating(assignment: RoleAssignmentFacts, input: Pick<IdentityCheckInput, "now" | "propagationWindowMs">): boolean {
  return assignment.createdOn !== undefined && input.now.getTime() - assignment.createdOn.getTime() < input.propagationWindowMs;
}

/** When the youngest granting assignment leaves the propagation window, or undefined if none is in it. */
export function propagationEndsAt(input: Pick<IdentityCheckInput, "roleAssignments" | "vault" | "key" | "now" | "propagationWindowMs">): Date | undefined {
  const pending = grantingAssignments(input).filter((assignment) => isPropagating(assignment, input));
  if (pending.length === 0 || grantingAssignments(input).some((assignment) => !isPropagating(assignment, input))) return undefined;
  const earliest = Math.min(...pending.map((assignment) => assignment.createdOn!.getTime()));
  return new Date(earliest + input.propagationWindowMs);
}

function vaultScope(input: Pick<IdentityCheckInput, "vault" | "key">): string {
  return input.vault.status === "found" ? input.vault.value.id : `<vault ${input.key.vaultName} resource id>`;
}

function checkTypeChange(input: IdentityCheckInput): CheckResult {
  const requested = input.request.identity.type;
  if (input.fhir.status !== "found") return skipped("IdentityTypeChange", "Not checked: the FHIR service could not be read.");
  const current = input.fhir.value.identityType;
  if (current === "None" || current.toLowerCase() === requested.toLowerCase()) {
    return passed("IdentityTypeChange", current === "None" ? `The FHIR service has no identity yet; it gets ${requested}.` : `The identity type stays ${requested}.`);
  }
  if (!input.request.acknowledgeIdentityTypeChange) {
    return failed(
      "IdentityTypeChange",
      `The identity type would change from ${current} to ${requested}.`,
      "Changing the identity type can disturb export and import jobs that use the current identity. Send acknowledgeIdentityTypeChange: true to go ahead, or keep the current type.",
    );
  }
  return warning(
    "IdentityTypeChange",
    `The identity type changes from ${current} to ${requested} (acknowledged).`,
    "Export and import jobs that use the old identity may be affected: reconfigure them with the new identity.",
  );
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
