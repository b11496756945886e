/** The shape every pre-flight check returns (api-contract: Validation report). */

export const CHECK_IDS = [
  "FhirServiceExists",
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

export interface CheckResult {
  id: CheckId;
  status: CheckStatus;
  message: string;
  remediation?: string;
}

export const passed = (id: CheckId, message: string): CheckResult => ({ id, status: "Passed", message });
export const failed = (id: CheckId, message: string, remediation: string): CheckResult => ({ id, status: "Failed", message, remediation });
export const warning = (id: CheckId, message: string, remediation?: string): CheckResult =>
  remediation === undefined ? { id, status: "Warning", message } : { id, status: "Warning", message, remediation };
export const skipped = (id: CheckId, message: string): CheckResult => ({ id, status: "Skipped", message });

export function failedChecks(checks: CheckResult[]): CheckResult[] {
  return checks.filter((check) => check.status === "Failed");
}
