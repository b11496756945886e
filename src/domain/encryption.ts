import type { FhirServiceRef } from "./arm-ids.js";
import { checkKey } from "./checks/key-checks.js";
import { checkIdentity } from "./checks/identity-checks.js";
import { failed, passed, skipped, warning, type CheckResult } from "./checks/check-result.js";
import type { Fact, KeyFacts, PrincipalFacts, RoleAssignmentFacts, VaultFacts } from "./checks/facts.js";
import { currentIdentityType, currentKeyUrl, type FhirServiceResource, type RequestedIdentity } from "./fhir-resource.js";
import { parseKeyUrl } from "./key-url.js";

/** The encryption state of a FHIR service, as GET .../encryption shows it. Pure. */
export interface EncryptionState {
  fhirServiceId: string;
  encryptionType: "CustomerManagedKey" | "MicrosoftManagedKey";
  keyEncryptionKeyUrl?: string;
  keyVaultName?: string;
  keyVaultUrl?: string;
  keyName?: string;
  keyVersion?: string;
  identityType: string;
  principalId?: string;
  userAssignedIdentityIds?: string[];
  provisioningState: string;
  location: string;
}

export function encryptionState(ref: FhirServiceRef, resource: FhirServiceResource): EncryptionState {
  const url = currentKeyUrl(resource);
  const key = url ? parseKeyUrl(url) : undefined;
  const assigned = Object.entries(resource.identity?.userAssignedIdentities ?? {});
  const principalId = resource.identity?.principalId ?? assigned[0]?.[1]?.principalId;
  return {
    fhirServiceId: ref.id,
    encryptionType: url ? "CustomerManagedKey" : "MicrosoftManagedKey",
    ...(url ? { keyEncryptionKeyUrl: url } : {}),
    ...(key ? { keyVaultName: key.vaultName, keyVaultUrl: key.vaultUrl, keyName: key.keyName, ...(key.version ? { keyVersion: key.version } : {}) } : {}),
    identityType: currentIdentityType(resource),
    ...(principalId ? { principalId } : {}),
    ...(assigned.length ? { userAssignedIdentityIds: assigned.map(([id]) => id) } : {}),
    provisioningState: resource.provisioningState ?? "Unknown",
    location: resource.location ?? "",
  };
}

export type HealthStatus = "Healthy" | "KeyAccessLost" | "Degraded";

/** The diagnosis reuses the pre-flight key and identity checks and adds what only a live service shows. */
export type HealthCheckId = "CustomerManagedKeyConfigured" | "KeyExists" | "KeyEnabled" | "KeyNotExpired" | "KeyNotDeleted" | "IdentityPresent" | "IdentityKeyAccess" | "FhirDataPlane";
export type HealthCheck = CheckResult<HealthCheckId>;

export interface RecommendedAction {
  description: string;
  operation?: "RecoverKeyAccess" | "RotateKey" | "SetKey";
  /** A change request body to send once the described fix is done. */
  request?: Record<string, unknown>;
}

export interface EncryptionHealth {
  status: HealthStatus;
  checks: HealthCheck[];
  recommendedAction?: RecommendedAction;
}

export interface HealthFacts {
  key: Fact<KeyFacts>;
  /** Read when the key is missing: a soft-deleted key can be recovered. */
  deletedKey?: Fact<{ recoveryId: string; scheduledPurgeDate?: Date }>;
  vault: Fact<VaultFacts>;
  principal: Fact<PrincipalFacts>;
  roleAssignments: Fact<RoleAssignmentFacts[]>;
  /** Absent: not asked (a compliance scan judges from Azure's control and key planes only, one list per workspace). */
  dataPlane?: { status: number | undefined; detail: string };
}

/** Checks that mean the service cannot use its key (the FHIR API answers 500 while any of them fails). */
const ACCESS_CHECKS: HealthCheckId[] = ["KeyExists", "KeyNotDeleted", "KeyEnabled", "KeyNotExpired", "IdentityPresent", "IdentityKeyAccess", "FhirDataPlane"];

/**
 * Diagnoses lost key access from the facts: every reason the docs list (key disabled, deleted or
 * expired; identity gone or without its role) and the FHIR data plane's own answer. Pure.
 */
export function diagnoseEncryption(
  ref: FhirServiceRef,
  resource: FhirServiceResource,
  identity: RequestedIdentity | undefined,
  facts: HealthFacts,
  settings: { now: Date; propagationWindowMs: number },
): EncryptionHealth {
  const url = currentKeyUrl(resource);
  const key = url ? parseKeyUrl(url) : undefined;
  if (!url || !key) {
    return { status: "Healthy", checks: [skipped("CustomerManagedKeyConfigured", "Not checked: the service uses a Microsoft-managed key, which Azure manages.")] };
  }

  const checks: HealthCheck[] = checkKey(key, facts.key, settings.now).filter(
    (check): check is CheckResult<"KeyExists" | "KeyEnabled" | "KeyNotExpired"> => ["KeyExists", "KeyEnabled", "KeyNotExpired"].includes(check.id),
  );
  if (facts.deletedKey?.status === "found") {
    const purge = facts.deletedKey.value.scheduledPurgeDate;
    checks.push(
      failed(
        "KeyNotDeleted",
        `Key ${key.keyName} was deleted and is soft-deleted in ${key.vaultName}${purge ? ` until ${purge.toISOString()}` : ""}.`,
        `Recover it: az keyvault key recover --vault-name ${key.vaultName} --name ${key.keyName}, or send RecoverKeyAccess with recoverDeletedKey: true.`,
      ),
    );
  } else {
    checks.push(passed("KeyNotDeleted", "The key is not soft-deleted."));
  }

  if (!identity) {
    checks.push(failed("IdentityPresent", `The service has identity ${currentIdentityType(resource)}: no single identity can reach the key.`, "Send SetKey with the identity the service should use."));
  } else if (facts.principal.status === "found" && facts.principal.value.principalId) {
    checks.push(passed("IdentityPresent", `${identity.type} identity with principal ${facts.principal.value.principalId}.`));
    const access = checkIdentity({
      request: { identity },
      key,
      fhir: { status: "missing" },
      principal: facts.principal,
      vault: facts.vault,
      roleAssignments: facts.roleAssignments,
      ...settings,
    }).find((check) => check.id === "IdentityKeyAccess")!;
    checks.push({ ...access, id: "IdentityKeyAccess" });
  } else {
    checks.push(
      failed(
        "IdentityPresent",
        identity.type === "UserAssigned" ? `User-assigned identity ${identity.userAssignedIdentityId.split("/").at(-1)} no longer exists or cannot be read.` : "The system-assigned identity has no principal.",
        "Send SetKey with an identity that exists and holds Key Vault Crypto Service Encryption User on the key.",
      ),
    );
  }

  const plane = facts.dataPlane;
  checks.push(
    plane === undefined
      ? skipped("FhirDataPlane", "Not asked: judged from the key, identity and role assignments alone.")
      : plane.status === undefined
      ? warning("FhirDataPlane", `The FHIR data plane could not be reached: ${plane.detail}.`)
      : plane.status >= 500
        ? failed("FhirDataPlane", `The FHIR API answers ${plane.status} (${plane.detail}): data is unreachable until key access is restored.`, "Fix the failed checks above, then send RecoverKeyAccess.")
        : passed("FhirDataPlane", `The FHIR API answers ${plane.status} on /metadata.`),
  );

  const lost = checks.some((check) => check.status === "Failed" && ACCESS_CHECKS.includes(check.id));
  const degraded = checks.some((check) => check.status === "Warning" || check.status === "Failed");
  const status: HealthStatus = lost ? "KeyAccessLost" : degraded ? "Degraded" : "Healthy";
  const recommendedAction = status === "Healthy" ? undefined : recommend(ref, checks, key.vaultName, key.keyName);
  return { status, checks, ...(recommendedAction ? { recommendedAction } : {}) };
}

function recommend(ref: FhirServiceRef, checks: HealthCheck[], vaultName: string, keyName: string): RecommendedAction {
  const failing = (id: HealthCheckId) => checks.some((check) => check.id === id && check.status === "Failed");
  const recover = (extra: Record<string, unknown> = {}) => ({ operation: "RecoverKeyAccess" as const, request: { operation: "RecoverKeyAccess", fhirServiceId: ref.id, ...extra } });
  if (failing("KeyNotDeleted")) return { description: `Recover the soft-deleted key ${keyName} and re-apply it.`, ...recover({ recoverDeletedKey: true }) };
  if (failing("KeyEnabled")) return { description: `Enable key ${keyName} in ${vaultName} again (az keyvault key set-attributes --vault-name ${vaultName} --name ${keyName} --enabled true), then re-apply it.`, ...recover() };
  if (failing("KeyNotExpired")) return { description: `The key has expired: move the service to a new version.`, operation: "RotateKey", request: { operation: "RotateKey", fhirServiceId: ref.id } };
  if (failing("IdentityPresent")) return { description: "Give the service an identity that exists and holds the key role with a SetKey request." };
  if (failing("IdentityKeyAccess")) {
    return { description: "Give the identity Key Vault Crypto Service Encryption User on the key again (see IdentityKeyAccess), then re-apply the key.", ...recover() };
  }
  if (failing("FhirDataPlane")) return { description: "The FHIR API cannot use its key although every check passes (the identity may be disabled): re-apply key and identity.", ...recover() };
  return { description: "Look at the checks that warn; nothing blocks the service now." };
}
