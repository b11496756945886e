import type { PreflightRequest, ValidationReport } from "../../domain/checks/preflight-report.js";
import { fullReport } from "../../domain/checks/preflight-report.js";
import type { PrincipalFacts } from "../../domain/checks/facts.js";
import type { FhirServiceResource } from "../../domain/fhir-resource.js";
import type { FleetMembership } from "../../domain/job-record.js";
import { fhirServiceFacts, type GatheredFacts } from "../../preflight/gather-facts.js";
import type { FleetStore } from "../../job-store/fleet-store.js";
import type { WorkerDependencies } from "../worker-dependencies.js";
import type { StepContext, StepOutcome } from "../job-steps.js";
import { judge, preflight, propagationWait } from "./preflight.js";

/**
 * A fleet child's pre-flight: every check a RotateKey runs, from facts it reads nothing for. The key,
 * its vault and the role assignments at the vault were read once by the parent for the whole fleet; the
 * service itself was just read by ReadFhirService. When a shared fact is not there (an HSM key, a vault
 * the parent could not list) or a new role assignment may still be propagating, it runs the ordinary
 * pre-flight, which reads (and waits) for itself.
 */
export async function fleetPreflight(
  deps: WorkerDependencies,
  fleets: FleetStore,
  fleet: FleetMembership,
  request: PreflightRequest,
  resource: FhirServiceResource,
  context: StepContext,
): Promise<StepOutcome<ValidationReport>> {
  const facts = await sharedFacts(fleets, fleet, request, resource);
  if (!facts) return preflight(deps, request, context);
  const settings = { cloud: deps.cloud, propagationWindowMs: deps.propagationWindowMs };
  let report = fullReport(request, facts, settings, new Date());
  // A granting assignment too new to have reached Key Vault: only time changes the verdict, so wait and judge the same facts again.
  for (let waitUntil = propagationWait({ report, facts }, request, deps.propagationWindowMs); waitUntil; waitUntil = propagationWait({ report, facts }, request, deps.propagationWindowMs)) {
    await context.reportFraction(0.5, `Waiting for a new role assignment to reach Key Vault (until ${waitUntil.toISOString()}).`);
    await new Promise((resolve) => setTimeout(resolve, Math.max(250, waitUntil.getTime() - Date.now() + 250)));
    report = fullReport(request, facts, settings, new Date());
  }
  const outcome = judge({ report, facts }, request);
  return { ...outcome, message: `${outcome.message ?? ""} Key, vault and role assignments as the fleet rotation read them once for all its services.`.trim() };
}

async function sharedFacts(fleets: FleetStore, fleet: FleetMembership, request: PreflightRequest, resource: FhirServiceResource): Promise<GatheredFacts | undefined> {
  const identity = request.identity;
  const uamiId = identity.type === "UserAssigned" ? identity.userAssignedIdentityId.toLowerCase() : undefined;
  const systemPrincipal = identity.type === "SystemAssigned" ? resource.identity?.principalId : undefined;
  // The user-assigned identity's principal is in the shared facts: look it up before the roles.
  let stored = await fleets.childFacts(fleet.parentJobId, systemPrincipal);
  if (!stored || stored.shared.roles.status !== "found") return undefined;
  let principal: PrincipalFacts;
  if (uamiId) {
    const uami = stored.shared.identities[uamiId];
    if (!uami || !("principalId" in uami)) return undefined;
    principal = { kind: "UserAssigned", principalId: uami.principalId, userAssignedIdentityId: identity.type === "UserAssigned" ? identity.userAssignedIdentityId : "" };
    stored = await fleets.childFacts(fleet.parentJobId, uami.principalId);
    if (!stored) return undefined;
  } else {
    if (!systemPrincipal) return undefined;
    principal = { kind: "SystemAssigned", principalId: systemPrincipal };
  }
  return {
    fhir: { status: "found", value: fhirServiceFacts(resource) },
    key: stored.shared.key,
    vault: stored.shared.vault,
    principal: { status: "found", value: principal },
    roleAssignments: { status: "found", value: stored.roles },
  };
}
