import { parseFhirServiceId } from "../../domain/arm-ids.js";
import {
  buildKeyChangeBody,
  currentIdentityType,
  currentKeyUrl,
  hasKeyAndIdentity,
  identityMatches,
  type FhirServiceResource,
} from "../../domain/fhir-resource.js";
import type { SetKeyRequest } from "../../schemas/change-requests.js";
import type { JobResult } from "../../schemas/jobs.js";
import { JobError } from "../../errors.js";
import type { JobSteps } from "../job-steps.js";
import type { WorkerDependencies } from "../worker-dependencies.js";
import { preflight } from "../steps/preflight.js";
import { readFhirService, replacedSettings } from "../steps/read-fhir-service.js";
import { applyIdentity } from "../steps/apply-identity.js";
import { writeAndVerify } from "../steps/arm-update.js";

interface BuiltResource {
  body: FhirServiceResource;
  unchanged: boolean;
}

export async function runSetKey(steps: JobSteps, deps: WorkerDependencies, request: SetKeyRequest): Promise<JobResult> {
  const ref = parseFhirServiceId(request.fhirServiceId);
  if (!ref) throw new JobError({ code: "ValidationFailed", message: "fhirServiceId is not a FHIR service id.", target: request.fhirServiceId });
  const change = { keyEncryptionKeyUrl: request.keyEncryptionKeyUrl, identity: request.identity };
  const dryRun = request.dryRun === true;

  await steps.run("Preflight", (context) => preflight(deps, request, context));
  const original = await steps.run("ReadFhirService", () => readFhirService(deps, ref));
  if (!dryRun) steps.noteReplaced(replacedSettings(original));

  let current = original;
  if (identityMatches(original, request.identity)) {
    await steps.skip(["ApplyIdentity", "RecheckKeyAccess"], `The service already uses ${request.identity.type}.`);
  } else if (dryRun) {
    await steps.skip(["ApplyIdentity", "RecheckKeyAccess"], `Dry run: the identity would change from ${currentIdentityType(original)} to ${request.identity.type}.`);
  } else {
    current = await steps.run("ApplyIdentity", () => applyIdentity(deps, ref, original, request.identity));
    // A new system-assigned identity is a new principal: its key access can only be checked now.
    await steps.run("RecheckKeyAccess", (context) => preflight(deps, request, context));
  }

  const built = await steps.run<BuiltResource>("BuildResource", async () => {
    const unchanged = hasKeyAndIdentity(current, change);
    return {
      message: unchanged ? "The service already uses this key and identity: nothing to send." : "Full PUT body built from the current resource.",
      output: { body: buildKeyChangeBody(current, change), unchanged },
    };
  });

  const previous = {
    ...(currentKeyUrl(original) ? { previousKeyEncryptionKeyUrl: currentKeyUrl(original) } : {}),
    previousIdentityType: currentIdentityType(original),
  };
  if (dryRun) {
    await steps.skipRemaining("Dry run: nothing was sent to Azure.");
    return steps.succeed({
      keyEncryptionKeyUrl: change.keyEncryptionKeyUrl,
      identityType: request.identity.type,
      provisioningState: original.provisioningState ?? "Unknown",
      ...previous,
      armWrites: 0,
      dryRun: true,
      resourceBody: built.body,
    });
  }
  if (built.unchanged) {
    await steps.skipRemaining("Nothing to change.");
    return steps.succeed({
      keyEncryptionKeyUrl: change.keyEncryptionKeyUrl,
      identityType: currentIdentityType(current),
      provisioningState: current.provisioningState ?? "Succeeded",
      ...previous,
      armWrites: current === original ? 0 : 1,
    });
  }

  const { verified, wrote } = await writeAndVerify(steps, deps, ref, built.body, change);
  const identityWrites = current === original ? 0 : 1;
  return steps.succeed({ ...verified, ...previous, armWrites: identityWrites + (wrote ? 1 : 0) });
}
