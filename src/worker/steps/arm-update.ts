import type { FhirServiceRef } from "../../domain/arm-ids.js";
import { hasKeyAndIdentity, isOperationInProgress, type FhirServiceResource, type RequestedIdentity } from "../../domain/fhir-resource.js";
import type { ArmOperation } from "../../azure/fhir-services.js";
import { JobError } from "../../errors.js";
import type { WorkerDependencies } from "../worker-dependencies.js";
import type { JobSteps, StepContext, StepOutcome } from "../job-steps.js";
import { verify, type VerifiedState } from "./verify.js";

/** What StartArmUpdate did: sent the PUT (and what to follow), or found nothing left to write. */
export type ArmUpdateStart = { kind: "started"; operation: ArmOperation } | { kind: "alreadyApplied" };

type Change = { keyEncryptionKeyUrl: string; identity: RequestedIdentity };

/**
 * Sends the PUT, unless the live resource already has the target (an earlier attempt's write went
 * through before it could record so). An operation already running on the resource is waited out
 * first. The output is saved before the next step starts, so a later attempt follows the same operation
 * instead of writing again.
 */
export async function startArmUpdate(
  deps: WorkerDependencies,
  ref: FhirServiceRef,
  body: FhirServiceResource,
  change: Change,
  context: StepContext,
  /** `creating`: the service may not exist yet. `reapply`: write even when the live service matches (recovery). */
  mode: { creating?: boolean; reapply?: boolean } = {},
): Promise<StepOutcome<ArmUpdateStart>> {
  let live = await deps.fhirServices.get(ref);
  if (live && isOperationInProgress(live)) {
    await context.reportFraction(0, `Waiting for the operation already running on the service (provisioningState ${live.provisioningState}).`);
    live = await deps.fhirServices.waitUntilSettled(ref, () => undefined);
  }
  if (!live && !mode.creating) throw new JobError({ code: "FhirServiceNotFound", message: `FHIR service ${ref.fhirService} disappeared before the update.`, target: ref.id });
  if (live && mode.creating && !hasKeyAndIdentity(live, change)) {
    // Someone else made a service of that name since the checks ran: never overwrite it.
    throw new JobError({ code: "FhirServiceAlreadyExists", message: `FHIR service ${ref.fhirService} appeared while the job ran; it was not changed.`, target: ref.id });
  }
  if (live && hasKeyAndIdentity(live, change) && live.provisioningState === "Succeeded" && !mode.reapply) {
    return { status: "Skipped", message: "The live service already has the target key and identity: no write sent.", output: { kind: "alreadyApplied" } };
  }
  const operation = await deps.fhirServices.startPut(ref, body);
  return { message: "ARM accepted the update.", output: { kind: "started", operation } };
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

/**
 * The end every operation shares: StartArmUpdate, FollowOperation (skipped when nothing was written),
 * Verify. Returns the verified state and whether a write was sent.
 */
export async function writeAndVerify(
  steps: JobSteps,
  deps: WorkerDependencies,
  ref: FhirServiceRef,
  body: FhirServiceResource,
  change: Change,
  mode: { creating?: boolean; reapply?: boolean } = {},
): Promise<{ verified: VerifiedState; wrote: boolean }> {
  const start = await steps.run("StartArmUpdate", (context) => startArmUpdate(deps, ref, body, change, context, mode));
  if (start.kind === "started") await steps.run("FollowOperation", (context) => followOperation(deps, ref, body, start.operation, context));
  else await steps.skip(["FollowOperation"], "No operation to follow.");
  const verified = await steps.run("Verify", () => verify(deps, ref, change));
  return { verified, wrote: start.kind === "started" };
}
