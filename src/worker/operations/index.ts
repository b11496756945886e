import type { CancelRecord, ChangeJobData, JobRequest, StepPlan } from "../../domain/job-record.js";
import { STEP_PLANS } from "../../domain/operation-plans.js";
import type { ChangeRequest, Operation } from "../../schemas/change-requests.js";
import type { FleetJobRequest } from "../../schemas/key-rotations.js";
import type { FleetStore } from "../../job-store/fleet-store.js";
import type { JobResult } from "../../schemas/jobs.js";
import type { JobSteps } from "../job-steps.js";
import type { WorkerDependencies } from "../worker-dependencies.js";
import { runCreateService } from "./create-service.js";
import { runRecoverKeyAccess } from "./recover-key-access.js";
import { runRotateKey } from "./rotate-key.js";
import { runSetKey } from "./set-key.js";
import { runRotateFleet } from "./rotate-fleet.js";
import { runComplianceScan } from "./compliance-scan.js";
import type { ComplianceSettings } from "../../domain/compliance/rules.js";
import type { ComplianceScanJobRequest } from "../../schemas/compliance.js";
import type { ComplianceReports } from "../../job-store/compliance-reports.js";
import type { FollowMove, FollowOutcome } from "../../job-store/follow-latest.js";

/** What a run knows of its job beyond the request: fleet rotations and their children need it. */
export interface JobContext {
  jobId: string;
  data: ChangeJobData;
  /** The job store's fleet records (not an Azure adapter: never write-guarded). */
  fleets: FleetStore;
  /** The cancel asked for this job, if any (a fleet parent looks while it waits for its children). */
  cancelRequested(): Promise<CancelRecord | undefined>;
  /** CMK_SUBSCRIPTIONS; undefined: every subscription the service can list. */
  fleetSubscriptions: readonly string[] | undefined;
  /** How often a fleet parent looks at its children. */
  fleetPollMs: number;
  /** What a compliance scan needs beyond Azure. */
  compliance: ScanContext;
}

/** A compliance scan's settings and stores. */
export interface ScanContext {
  /** CMK_REQUIRE_CUSTOMER_MANAGED_KEY, CMK_KEY_MAX_AGE_DAYS. */
  settings: ComplianceSettings;
  /** CMK_FOLLOW_LATEST_KEY_VERSION. */
  follow: boolean;
  reports: ComplianceReports;
  /** Starts the RotateKeys of following (job-store/follow-latest.ts, with CMK_APPROVALS). */
  followLatest(moves: readonly FollowMove[]): Promise<FollowOutcome>;
}

/** One operation as the worker runs it: its named steps, and the function that runs them. */
export interface OperationEntry<R extends JobRequest = ChangeRequest> {
  steps: readonly StepPlan[];
  run(steps: JobSteps, deps: WorkerDependencies, request: R, job: JobContext): Promise<JobResult>;
  /**
   * A fleet rotation's own writes (a new key version) do not end its cancellability: its cancel stops
   * its children. Other operations claim each write against cancel (job-store/cancel.ts).
   */
  writesStayCancellable?: boolean;
}

type Registry = { [O in Operation]: OperationEntry<Extract<ChangeRequest, { operation: O }>> } & {
  RotateFleet: OperationEntry<FleetJobRequest>;
  ComplianceScan: OperationEntry<ComplianceScanJobRequest>;
};

/** Every operation a change job can be; a new one is one entry here (and its plan in domain/operation-plans.ts). */
export const OPERATIONS: Registry = {
  SetKey: { steps: STEP_PLANS.SetKey, run: runSetKey },
  CreateService: { steps: STEP_PLANS.CreateService, run: runCreateService },
  RotateKey: { steps: STEP_PLANS.RotateKey, run: runRotateKey },
  RecoverKeyAccess: { steps: STEP_PLANS.RecoverKeyAccess, run: runRecoverKeyAccess },
  RotateFleet: { steps: STEP_PLANS.RotateFleet, run: runRotateFleet, writesStayCancellable: true },
  // A scan writes nothing to Azure: it stays cancellable to its end.
  ComplianceScan: { steps: STEP_PLANS.ComplianceScan, run: runComplianceScan, writesStayCancellable: true },
};

/** The entry of `request`'s operation. */
export function operationOf(request: JobRequest): OperationEntry<JobRequest> {
  return OPERATIONS[request.operation] as OperationEntry<JobRequest>;
}
