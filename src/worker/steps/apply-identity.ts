import type { FhirServiceRef } from "../../domain/arm-ids.js";
import { currentIdentityType, identityBody, type FhirServiceResource, type RequestedIdentity } from "../../domain/fhir-resource.js";
import type { WorkerDependencies } from "../worker-dependencies.js";
import type { StepOutcome } from "../job-steps.js";

/**
 * Moves the FHIR service to the requested identity with a PATCH of the identity alone, before the key
 * changes: identity and key go in separate ARM writes (several resource providers refuse both at once).
 */
export async function applyIdentity(
  deps: WorkerDependencies,
  ref: FhirServiceRef,
  current: FhirServiceResource,
  requested: RequestedIdentity,
): Promise<StepOutcome<FhirServiceResource>> {
  const updated = await deps.fhirServices.updateIdentity(ref, identityBody(requested));
  const principal = updated.identity?.principalId;
  return {
    message: `Identity changed from ${currentIdentityType(current)} to ${currentIdentityType(updated)}${principal ? ` (principal ${principal})` : ""}.`,
    output: updated,
  };
}
