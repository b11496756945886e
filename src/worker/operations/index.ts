import type { StepPlan } from "../../domain/job-record.js";
import { STEP_PLANS } from "../../domain/operation-plans.js";
import type { ChangeRequest, Operation } from "../../schemas/change-requests.js";
import type { JobResult } from "../../schemas/jobs.js";
import type { JobSteps } from "../job-steps.js";
import type { WorkerDependencies } from "../worker-dependencies.js";
import { runCreateService } from "./create-service.js";
import { runRecoverKeyAccess } from "./recover-key-access.js";
import { runRotateKey } from "./rotate-key.js";
import { runSetKey } from "./set-key.js";

/** One operation as the worker runs it: its named steps, and the function that runs them. */
export interface OperationEntry<R extends ChangeRequest = ChangeRequest> {
  steps: readonly StepPlan[];
  run(steps: JobSteps, deps: WorkerDependencies, request: R): Promise<JobResult>;
}

type Registry = { [O in Operation]: OperationEntry<Extract<ChangeRequest, { operation: O }>> };

/** Every operation a change job can be; a new one is one entry here (and its plan in domain/operation-plans.ts). */
export const OPERATIONS: Registry = {
  SetKey: { steps: STEP_PLANS.SetKey, run: runSetKey },
  CreateService: { steps: STEP_PLANS.CreateService, run: runCreateService },
  RotateKey: { steps: STEP_PLANS.RotateKey, run: runRotateKey },
  RecoverKeyAccess: { steps: STEP_PLANS.RecoverKeyAccess, run: runRecoverKeyAccess },
};

/** The entry of `request`'s operation. */
export function operationOf(request: ChangeRequest): OperationEntry {
  return OPERATIONS[request.operation] as OperationEntry;
}
