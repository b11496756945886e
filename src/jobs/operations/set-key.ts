import { parseFhirServiceId } from "../../domain/arm-ids.js";
import { buildKeyChangeBody, currentIdentityType, currentKeyUrl, hasKeyAndIdentity, type FhirServiceResource } from "../../domain/fhir-resource.js";
import type { StepPlan } from "../../domain/job-record.js";
import type { SetKeyRequest } from "../../schemas/change-requests.js";
import type { JobResult } from "../../schemas/jobs.js";
import { JobError } from "../../errors.js";
import type { JobSteps } from "../job-steps.js";
import type { WorkerDependencies } from "../worker-dependencies.js";
import { preflight } from "../steps/preflight.js";
import { readFhirService } from "../steps/read-fhir-service.js";
import { followOperation, startArmUpdate } from "../steps/arm-update.js";
import { verify } from "../steps/verify.js";

/** The steps of SetKey and their share of percentComplete (ARM's operation is most of the wait). */
export const SET_KEY_STEPS = [
  { name: "Preflight", weight: 10 },
  { name: "ReadFhirService", weight: 5 },
  { name: "BuildResource", weight: 5 },
  { name: "StartArmUpdate", weight: 10 },
  { name: "FollowOperation", weight: 60 },
  { name: "Verify", weight: 10 },
] as const satisfies readonly StepPlan[];

interface BuiltResource {
  body: FhirServiceResource;
  unchanged: boolean;
}

export async function runSetKey(steps: JobSteps, deps: WorkerDependencies, request: SetKeyRequest): Promise<JobResult> {
  const ref = parseFhirServiceId(request.fhirServiceId);
  if (!ref) throw new JobError({ code: "ValidationFailed", message: "fhirServiceId is not a FHIR service id.", target: request.fhirServiceId });
  const change = { keyEncryptionKeyUrl: request.keyEncryptionKeyUrl, identity: request.identity };

  await steps.run("Preflight", () => preflight(deps, request));
  const current = await steps.run("ReadFhirService", () => readFhirService(deps, ref));
  const built = await steps.run<BuiltResource>("BuildResource", async () => {
    const unchanged = hasKeyAndIdentity(current, change);
    return {
      message: unchanged ? "The service already uses this key and identity: nothing to send." : "Full PUT body built from the current resource.",
      output: { body: buildKeyChangeBody(current, change), unchanged },
    };
  });

  let armWrites = 0;
  if (built.unchanged) {
    await steps.skipRemaining("Nothing to change.");
  } else {
    const operation = await steps.run("StartArmUpdate", () => startArmUpdate(deps, ref, built.body));
    armWrites = 1;
    await steps.run("FollowOperation", (context) => followOperation(deps, ref, built.body, operation, context));
  }
  const verified = built.unchanged
    ? { keyEncryptionKeyUrl: change.keyEncryptionKeyUrl, identityType: currentIdentityType(current), provisioningState: current.provisioningState ?? "Succeeded" }
    : await steps.run("Verify", () => verify(deps, ref, change));

  const previousKey = currentKeyUrl(current);
  return steps.succeed({
    ...verified,
    ...(previousKey ? { previousKeyEncryptionKeyUrl: previousKey } : {}),
    previousIdentityType: currentIdentityType(current),
    armWrites,
  });
}
