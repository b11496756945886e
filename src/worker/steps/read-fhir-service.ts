import { JobError } from "../../errors.js";
import type { FhirServiceRef } from "../../domain/arm-ids.js";
import { currentIdentityType, currentKeyUrl, type FhirServiceResource } from "../../domain/fhir-resource.js";
import { parseKeyUrl } from "../../domain/key-url.js";
import { identityOf } from "../../preflight/resolve-request.js";
import type { ReplacedSettings } from "../../domain/job-record.js";
import type { WorkerDependencies } from "../worker-dependencies.js";
import type { StepOutcome } from "../job-steps.js";

/** Reads the FHIR service as ARM has it now; the change is built on top of it. */
export async function readFhirService(deps: WorkerDependencies, ref: FhirServiceRef): Promise<StepOutcome<FhirServiceResource>> {
  const resource = await deps.fhirServices.get(ref);
  if (!resource) {
    throw new JobError({
      code: "FhirServiceNotFound",
      message: `FHIR service ${ref.fhirService} was not found in workspace ${ref.workspace} (resource group ${ref.resourceGroup}, subscription ${ref.subscriptionId}).`,
      target: ref.id,
    });
  }
  return { message: describeEncryption(resource), output: resource };
}

/** The key and identity a change is about to replace (what a rollback restores). */
export function replacedSettings(resource: FhirServiceResource): ReplacedSettings {
  const key = currentKeyUrl(resource);
  const identity = identityOf(resource);
  return { ...(key ? { keyEncryptionKeyUrl: key } : {}), ...(identity ? { identity } : {}), identityType: currentIdentityType(resource) };
}

export function describeEncryption(resource: FhirServiceResource): string {
  const key = currentKeyUrl(resource);
  return `provisioningState ${resource.provisioningState ?? "unknown"}; identity ${currentIdentityType(resource)}; ${key ? `key ${key}` : "Microsoft-managed key"}.`;
}

/** RotateKey and RecoverKeyAccess start from the service's key and its one identity: both must be there. */
export function requireCustomerManagedKey(ref: FhirServiceRef, resource: FhirServiceResource): void {
  const key = currentKeyUrl(resource);
  if (!key || !parseKeyUrl(key)) {
    throw new JobError({ code: "NotCustomerManaged", message: `FHIR service ${ref.fhirService} uses a Microsoft-managed key; set a customer-managed key with SetKey first.`, target: ref.id });
  }
  if (!identityOf(resource)) {
    throw new JobError({ code: "IdentityNotSingle", message: `FHIR service ${ref.fhirService} has identity ${currentIdentityType(resource)}; send SetKey with the one identity it should use.`, target: ref.id });
  }
}
