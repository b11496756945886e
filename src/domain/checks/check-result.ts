/** The shape every pre-flight check returns (api-contract: Validation report). */

export const CHECK_IDS = [
  "FhirServiceExists",
  "WorkspaceExists",
  "CustomerManagedKeyConfigured",
  "KeyUrlVersioned",
  "KeyHostAllowed",
  "KeyNameLength",
  "KeyExists",
  "KeyType",
  "KeySize",
  "KeyEnabled",
  "KeyNotExpired",
  "KeyOperations",
  "VaultSoftDelete",
  "VaultPurgeProtection",
  "VaultRegion",
  "VaultFirewall",
  "IdentitySingleType",
  "IdentityExists",
  "IdentityKeyAccess",
  "IdentityTypeChange",
] as const;

export type CheckId = (typeof CHECK_IDS)[number];
export type CheckStatus = "Passed" | "Failed" | "Warning" | "Skipped";

/** Pre-flight checks use CheckId; the key-access diagnosis adds ids of its own. */
export interface CheckResult<Id extends string = CheckId> {
  id: Id;
  status: CheckStatus;
  message: string;
  remediation?: string;
}

export const passed = <Id extends string>(id: Id, message: string): CheckResult<Id> => ({ id, status: "Passed", message });
export const failed = <Id extends string>(id: Id, message: string, remediation: string): CheckResult<Id> => ({ id, status: "Failed", message, remediation });
export const warning = <Id extends string>(id: Id, message: string, remediation?: string): CheckResult<Id> =>
  remediation === undefined ? { id, status: "Warning", message } : { id, status: "Warning", message, remediation };
export const skipped = <Id extends string>(id: Id, message: string): CheckResult<Id> => ({ id, status: "Skipped", message });

export function failedChecks<Id extends string>(checks: CheckResult<Id>[]): CheckResult<Id>[] {
  return checks.filter((check) => check.status === "Failed");
}
