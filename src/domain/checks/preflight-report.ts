import type { AzureCloud } from "../../azure/cloud.js";
import { parseKeyUrl } from "../key-url.js";
import type { RequestedIdentity } from "../fhir-resource.js";
import { CHECK_IDS, failed, failedChecks, passed, skipped, warning, type CheckResult } from "./check-result.js";
import type { Fact, FhirServiceFacts, KeyFacts, PrincipalFacts, RoleAssignmentFacts, VaultFacts } from "./facts.js";
import { checkIdentity } from "./identity-checks.js";
import { checkKey } from "./key-checks.js";
import { checkKeyUrl } from "./key-url-checks.js";
import { checkVault } from "./vault-checks.js";

export interface ValidationReport {
  valid: boolean;
  checks: CheckResult[];
}

export interface PreflightRequest {
  keyEncryptionKeyUrl: string;
  identity: RequestedIdentity;
  acknowledgeIdentityTypeChange?: boolean;
}

export interface PreflightFacts {
  fhir: Fact<FhirServiceFacts>;
  key: Fact<KeyFacts>;
  vault: Fact<VaultFacts>;
  principal: Fact<PrincipalFacts>;
  roleAssignments: Fact<RoleAssignmentFacts[]>;
}

export function report(checks: CheckResult[]): ValidationReport {
  const order = new Map<string, number>(CHECK_IDS.map((id, index) => [id, index]));
  const sorted = [...checks].sort((a, b) => (order.get(a.id) ?? 99) - (order.get(b.id) ?? 99));
  return { valid: failedChecks(sorted).length === 0, checks: sorted };
}

/** The checks that need nothing from Azure; when one fails, nothing is fetched at all. */
export function staticReport(request: PreflightRequest, cloud: Pick<AzureCloud, "keyVaultSuffixes">): ValidationReport {
  const checks = checkKeyUrl(request.keyEncryptionKeyUrl, cloud);
  const ran = new Set(checks.map((check) => check.id));
  const notRun = CHECK_IDS.filter((id) => !ran.has(id)).map((id) => skipped(id, "Not checked: the key URL was refused before anything was fetched."));
  return report([...checks, ...notRun]);
}

function checkFhirService(request: PreflightRequest & { fhirServiceId?: string }, fhir: Fact<FhirServiceFacts>): CheckResult {
  const name = request.fhirServiceId?.split("/").at(-1) ?? "the FHIR service";
  if (fhir.status === "found") return passed("FhirServiceExists", `FHIR service ${name} exists in ${fhir.value.location}.`);
  if (fhir.status === "missing") {
    return failed("FhirServiceExists", `FHIR service ${name} was not found.`, "Check the fhirServiceId (subscription, resource group, workspace and service name), or create the service with a CreateService request.");
  }
  return warning("FhirServiceExists", `The service could not read FHIR service ${name}: ${fhir.reason}.`, "Give the service's identity Contributor on the FHIR service.");
}

/** Every check, from the gathered facts. Pure: the same facts always give the same report. */
export interface ReportSettings {
  cloud: Pick<AzureCloud, "keyVaultSuffixes">;
  /** How long a new role assignment may take to reach Key Vault. */
  propagationWindowMs: number;
}

export function fullReport(request: PreflightRequest & { fhirServiceId?: string }, facts: PreflightFacts, settings: ReportSettings, now: Date): ValidationReport {
  const { cloud } = settings;
  const key = parseKeyUrl(request.keyEncryptionKeyUrl);
  if (!key) return staticReport(request, cloud);
  const fhirLocation = facts.fhir.status === "found" ? facts.fhir.value.location : undefined;
  return report([
    checkFhirService(request, facts.fhir),
    ...checkKeyUrl(request.keyEncryptionKeyUrl, cloud),
    ...checkKey(key, facts.key, now),
    ...checkVault(key, facts.vault, facts.key, fhirLocation),
    ...checkIdentity({
      request,
      key,
      fhir: facts.fhir,
      principal: facts.principal,
      vault: facts.vault,
      roleAssignments: facts.roleAssignments,
      propagationWindowMs: settings.propagationWindowMs,
      now,
    }),
  ]);
}
