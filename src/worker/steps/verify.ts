import { JobError } from "../../errors.js";
import type { FhirServiceRef } from "../../domain/arm-ids.js";
import { currentIdentityType, currentKeyUrl, hasKeyAndIdentity, type FhirServiceResource, type RequestedIdentity } from "../../domain/fhir-resource.js";
import type { WorkerDependencies } from "../worker-dependencies.js";
import type { StepOutcome } from "../job-steps.js";

export interface VerifiedState {
  keyEncryptionKeyUrl: string;
  identityType: string;
  provisioningState: string;
}

/** Reads the service back: the change counts only when ARM shows it Succeeded with the requested key. */
export async function verify(
  deps: WorkerDependencies,
  ref: FhirServiceRef,
  change: { keyEncryptionKeyUrl: string; identity: RequestedIdentity },
): Promise<StepOutcome<VerifiedState>> {
  return verifiedState(ref, await deps.fhirServices.get(ref), change);
}

/** The verification of a resource already read (e.g. the last read of a paced follow). */
export function verifiedState(
  ref: FhirServiceRef,
  resource: FhirServiceResource | undefined,
  change: { keyEncryptionKeyUrl: string; identity: RequestedIdentity },
): StepOutcome<VerifiedState> {
  if (!resource) {
    throw new JobError({ code: "FhirServiceNotFound", message: `FHIR service ${ref.fhirService} disappeared during the change.`, target: ref.id });
  }
  const provisioningState = resource.provisioningState ?? "Unknown";
  if (provisioningState !== "Succeeded" || !hasKeyAndIdentity(resource, change)) {
    throw new JobError({
      code: "VerificationFailed",
      message: `After the update ARM shows provisioningState ${provisioningState}, identity ${currentIdentityType(resource)} and key ${currentKeyUrl(resource) ?? "(Microsoft-managed)"}; expected Succeeded, ${change.identity.type} and ${change.keyEncryptionKeyUrl}.`,
      target: ref.id,
    });
  }
  return {
    message: `provisioningState Succeeded with key ${change.keyEncryptionKeyUrl}.`,
    output: { keyEncryptionKeyUrl: change.keyEncryptionKeyUrl, identityType: currentIdentityType(resource), provisioningState },
  };
}
