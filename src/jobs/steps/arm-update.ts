import type { FhirServiceRef } from "../../domain/arm-ids.js";
import type { FhirServiceResource } from "../../domain/fhir-resource.js";
import type { ArmOperation } from "../../azure/fhir-services.js";
import type { WorkerDependencies } from "../worker-dependencies.js";
import type { StepContext, StepOutcome } from "../job-steps.js";

/**
 * Sends the PUT. Its output (the operation to follow) is saved before the next step starts, so a later
 * attempt follows the same operation instead of writing again.
 */
export async function startArmUpdate(deps: WorkerDependencies, ref: FhirServiceRef, body: FhirServiceResource): Promise<StepOutcome<ArmOperation>> {
  const operation = await deps.fhirServices.startPut(ref, body);
  return { message: "ARM accepted the update.", output: operation };
}

/** Polls the long-running operation until ARM says it is over, raising the step's share of progress. */
export async function followOperation(
  deps: WorkerDependencies,
  ref: FhirServiceRef,
  body: FhirServiceResource,
  operation: ArmOperation,
  context: StepContext,
): Promise<StepOutcome<FhirServiceResource>> {
  let polls = 0;
  let pending = Promise.resolve();
  const resource = await deps.fhirServices.follow(ref, body, operation, () => {
    polls += 1;
    // ARM's operation results carry no percentage: approach 1 as polls go by.
    pending = pending.then(() => context.reportFraction(polls / (polls + 4), `Operation running (poll ${polls}).`));
  });
  await pending;
  return { message: `Operation finished after ${polls} poll(s): provisioningState ${resource.provisioningState ?? "unknown"}.`, output: resource };
}
