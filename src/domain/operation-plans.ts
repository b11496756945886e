import type { Operation } from "../schemas/change-requests.js";
import type { StepPlan } from "./job-record.js";

/**
 * The named steps of each operation and their share of percentComplete. Data, not code: the worker runs
 * them (worker/operations), and the API shows them on a job it cancels before any worker started it.
 */

/** ARM's key operation is most of the wait. */
export const SET_KEY_STEPS = [
  { name: "Preflight", weight: 10 },
  { name: "ReadFhirService", weight: 5 },
  { name: "ApplyIdentity", weight: 10 },
  { name: "RecheckKeyAccess", weight: 5 },
  { name: "BuildResource", weight: 5 },
  { name: "StartArmUpdate", weight: 10 },
  { name: "FollowOperation", weight: 45 },
  { name: "Verify", weight: 10 },
] as const satisfies readonly StepPlan[];

export const CREATE_SERVICE_STEPS = [
  { name: "Preflight", weight: 10 },
  { name: "BuildResource", weight: 5 },
  { name: "StartArmUpdate", weight: 10 },
  { name: "FollowOperation", weight: 65 },
  { name: "Verify", weight: 10 },
] as const satisfies readonly StepPlan[];

export const ROTATE_KEY_STEPS = [
  { name: "ReadFhirService", weight: 5 },
  { name: "PrepareKeyVersion", weight: 10 },
  { name: "Preflight", weight: 10 },
  { name: "BuildResource", weight: 5 },
  { name: "StartArmUpdate", weight: 10 },
  { name: "FollowOperation", weight: 45 },
  { name: "Verify", weight: 10 },
  { name: "CheckPreviousVersion", weight: 5 },
] as const satisfies readonly StepPlan[];

export const RECOVER_KEY_ACCESS_STEPS = [
  { name: "ReadFhirService", weight: 5 },
  { name: "RecoverDeletedKey", weight: 10 },
  { name: "Preflight", weight: 10 },
  { name: "BuildResource", weight: 5 },
  { name: "StartArmUpdate", weight: 10 },
  { name: "FollowOperation", weight: 45 },
  { name: "Verify", weight: 5 },
  { name: "CheckFhirDataPlane", weight: 10 },
] as const satisfies readonly StepPlan[];

/** A fleet rotation: most of its time is its children's, which Aggregate follows. */
export const ROTATE_FLEET_STEPS = [
  { name: "Discover", weight: 10 },
  { name: "ResolveTarget", weight: 3 },
  { name: "Preflight", weight: 2 },
  { name: "FanOut", weight: 5 },
  { name: "Aggregate", weight: 80 },
] as const satisfies readonly StepPlan[];

/** A compliance scan: listing and key reads are most of it. */
export const COMPLIANCE_SCAN_STEPS = [
  { name: "Discover", weight: 40 },
  { name: "ReadKeys", weight: 30 },
  { name: "Evaluate", weight: 20 },
  { name: "Store", weight: 5 },
  { name: "Follow", weight: 5 },
] as const satisfies readonly StepPlan[];

export const STEP_PLANS: Readonly<Record<Operation | "RotateFleet" | "ComplianceScan", readonly StepPlan[]>> = {
  SetKey: SET_KEY_STEPS,
  CreateService: CREATE_SERVICE_STEPS,
  RotateKey: ROTATE_KEY_STEPS,
  RecoverKeyAccess: RECOVER_KEY_ACCESS_STEPS,
  RotateFleet: ROTATE_FLEET_STEPS,
  ComplianceScan: COMPLIANCE_SCAN_STEPS,
};

/** The steps `operation` runs; none for a name no operation has (a record from another version). */
export function stepPlanOf(operation: string): readonly StepPlan[] {
  return (STEP_PLANS as Record<string, readonly StepPlan[] | undefined>)[operation] ?? [];
}
