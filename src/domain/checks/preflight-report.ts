import type { AzureCloud } from "../../azure/cloud.js";
import { parseFhirServiceId } from "../arm-ids.js";
import { parseKeyUrl } from "../key-url.js";
import type { RequestedIdentity } from "../fhir-resource.js";
import { CHECK_IDS, failed, failedChecks, passed, skipped, warning, type CheckId, type CheckResult } from "./check-result.js";
import type { Fact, FhirServiceFacts, KeyFacts, PrincipalFacts, RoleAssignmentFacts, VaultFacts } from "./facts.js";
import { checkIdentity } from "./identity-checks.js";
import { checkKey } from "./key-checks.js";
import { checkKeyUrl } from "./key-url-checks.js";
import { checkVault } from "./vault-checks.js";

export interface ValidationReport {
  valid: boolean;
  checks: CheckResult[];
}

/** What every operation's checks are about: a FHIR service, a key and the identity that reaches it. */
export interface PreflightRequest {
  fhirServiceId: string;
  keyEncryptionKeyUrl: string;
  identity: RequestedIdentity;
  acknowledgeIdentityTypeChange?: boolean;
  /** CreateService: the service must not exist yet, its workspace must, and it will live in `location`. */
  create?: { location: string };
  /** RotateKey and RecoverKeyAccess: the key and identity were taken from the service itself. */
  fromCurrentKey?: boolean;
}

export interface PreflightFacts {
  fhir: Fact<FhirServiceFacts>;
  /** Read for CreateService only. */
  workspace?: Fact<{ location: string }>;
  key: Fact<KeyFacts>;
  vault: Fact<VaultFacts>;
  principal: Fact<PrincipalFacts>;
  roleAssignments: Fact<RoleAssignmentFacts[]>;
}

export interface ReportSettings {
  cloud: Pick<AzureCloud, "keyVaultSuffixes">;
  /** How long a new role assignment may take to reach Key Vault. */
  propagationWindowMs: number;
}

/**
 * The checks a request gets: WorkspaceExists only matters when creating a service, and
 * CustomerManagedKeyConfigured only for operations that start from the service's current key.
 */
export function checkIdsFor(request: Pick<PreflightRequest, "create" | "fromCurrentKey">): CheckId[] {
  return CHECK_IDS.filter(
    (id) => (id !== "WorkspaceExists" || request.create !== undefined) && (id !== "CustomerManagedKeyConfigured" || request.fromCurrentKey === true),
  );
}

export function report(checks: CheckResult[]): ValidationReport {
  const order = new Map<string, number>(CHECK_IDS.map((id, index) => [id, index]));
  const sorted = [...checks].sort((a, b) => (order.get(a.id) ?? 99) - (order.get(b.id) ?? 99));
  return { valid: failedChecks(sorted).length === 0, checks: sorted };
}

/** `checks` plus every other check of the request, Skipped with `reason`. */
export function completeReport(request: Pick<PreflightRequest, "create" | "fromCurrentKey">, checks: CheckResult[], reason: string): ValidationReport {
  const ran = new Set(checks.map((check) => check.id));
  return report([...checks, ...checkIdsFor(request).filter((id) => !ran.has(id)).map((id) => skipped(id, `Not checked: ${reason}.`))]);
}

/** The checks that need nothing from Azure; when one fails, nothing is fetched at all. */
export function staticReport(request: PreflightRequest, cloud: Pick<AzureCloud, "keyVaultSuffixes">): ValidationReport {
  return completeReport(request, checkKeyUrl(request.keyEncryptionKeyUrl, cloud), "the key URL was refused before anything was fetched");
}

function checkFhirService(request: PreflightRequest, fhir: Fact<FhirServiceFacts>): CheckResult {
  const name = request.fhirServiceId.split("/").at(-1) ?? "the FHIR service";
  if (request.create) {
    if (fhir.status === "missing") return passed("FhirServiceExists", `FHIR service ${name} does not exist yet; the job creates it in ${request.create.location}.`);
    if (fhir.status === "found") return failed("FhirServiceExists", `FHIR service ${name} already exists.`, "Use a SetKey request to change the key of an existing service, or choose another name.");
  } else {
    if (fhir.status === "found") return passed("FhirServiceExists", `FHIR service ${name} exists in ${fhir.value.location}.`);
    if (fhir.status === "missing") {
      return failed("FhirServiceExists", `FHIR service ${name} was not found.`, "Check the fhirServiceId (subscription, resource group, workspace and service name), or create the service with a CreateService request.");
    }
  }
  return warning("FhirServiceExists", `The service could not read FHIR service ${name}: ${fhir.reason}.`, "Give the service's identity the role in deploy/cmk-service-role.json (or deploy/cmk-service-reader-role.json) on the workspace's subscription.");
}

function checkWorkspace(request: PreflightRequest, workspace: Fact<{ location: string }> | undefined): CheckResult {
  const ref = parseFhirServiceId(request.fhirServiceId);
  const name = ref?.workspace ?? "the workspace";
  if (workspace?.status === "found") return passed("WorkspaceExists", `Workspace ${name} exists in ${workspace.value.location}.`);
  if (workspace?.status === "missing") {
    return failed(
      "WorkspaceExists",
      `Workspace ${name} was not found in resource group ${ref?.resourceGroup ?? "?"}.`,
      `Create it first: az healthcareapis workspace create --name ${name} --resource-group ${ref?.resourceGroup ?? "<group>"} --location ${request.create?.location ?? "<region>"}.`,
    );
  }
  return warning("WorkspaceExists", `Could not read workspace ${name}${workspace?.status === "unreadable" ? `: ${workspace.reason}` : ""}.`);
}

/** Every check, from the gathered facts. Pure: the same facts always give the same report. */
export function fullReport(request: PreflightRequest, facts: PreflightFacts, settings: ReportSettings, now: Date): ValidationReport {
  const key = parseKeyUrl(request.keyEncryptionKeyUrl);
  if (!key) return staticReport(request, settings.cloud);
  // A service being created is judged by what it will be: in the requested region, with no identity yet.
  const fhir: Fact<FhirServiceFacts> = request.create
    ? { status: "found", value: { id: request.fhirServiceId, location: request.create.location, identityType: "None", userAssignedIdentityIds: [] } }
    : facts.fhir;
  const fhirLocation = fhir.status === "found" ? fhir.value.location : undefined;
  return report([
    checkFhirService(request, facts.fhir),
    ...(request.fromCurrentKey ? [passed("CustomerManagedKeyConfigured", `The service uses key ${request.keyEncryptionKeyUrl}.`)] : []),
    ...(request.create ? [checkWorkspace(request, facts.workspace)] : []),
    ...checkKeyUrl(request.keyEncryptionKeyUrl, settings.cloud),
    ...checkKey(key, facts.key, now),
    ...checkVault(key, facts.vault, facts.key, fhirLocation),
    ...checkIdentity({
      request,
      key,
      fhir,
      principal: facts.principal,
      vault: facts.vault,
      roleAssignments: facts.roleAssignments,
      propagationWindowMs: settings.propagationWindowMs,
      now,
    }),
  ]);
}
