import type { ChangeRequest } from "../schemas/change-requests.js";
import type { FleetJobRequest } from "../schemas/key-rotations.js";
import type { ComplianceScanJobRequest } from "../schemas/compliance.js";
import type { JobErrorBody, JobResult, JobStatus, JobStatusMonitor, JobStep, StepStatus } from "../schemas/jobs.js";
import type { RequestedIdentity } from "./fhir-resource.js";
import { approvalView, awaitedBefore, awaiting, CANCELED_CODES, type ApprovalDecision } from "./governance.js";

/**
 * A job's execution record, kept as the BullMQ job's `progress`. Each step's outcome (and the output a
 * later attempt resumes from) is written before the next step begins. Pure functions: no I/O.
 */
export interface StepRecord extends JobStep {
  /** Percentage points this step is worth in `percentComplete`. */
  weight: number;
  /** Share of the step done so far (0-1), for long steps that report progress. */
  fraction?: number;
  /** What a later attempt needs to resume without redoing the step; not shown to callers. */
  output?: unknown;
}

export interface RetryRecord {
  attempt: number;
  step: string;
  code: string;
  message: string;
  dateTime: string;
}

export interface JobProgress {
  steps: StepRecord[];
  /** Why earlier attempts stopped and were retried. */
  retries?: RetryRecord[];
  currentStep?: string;
  result?: JobResult;
  error?: JobErrorBody;
  /**
   * What the job's first write replaced, recorded before it was sent: what a rollback restores. Absent
   * when the job wrote nothing.
   */
  replaced?: ReplacedSettings;
  lastUpdatedDateTime: string;
}

/** A FHIR service's key and identity as they were before a change (undefined key: Microsoft-managed). */
export interface ReplacedSettings {
  keyEncryptionKeyUrl?: string;
  /** Undefined when the service had no single identity a change request could name (none, or both kinds). */
  identity?: RequestedIdentity;
  identityType: string;
}

/** What a job carries out: a change request, a fleet rotation (the parent of RotateKey children), or a compliance scan. */
export type JobRequest = ChangeRequest | FleetJobRequest | ComplianceScanJobRequest;

/** What a scan's exclusivity and error targets name: there is one unfinished scan at a time. */
export const COMPLIANCE_SCAN_TARGET = "compliance-scans";

/** A fleet rotation's child: which parent made it, and the key version the parent resolved. */
export interface FleetMembership {
  parentJobId: string;
  targetKeyEncryptionKeyUrl: string;
}

export interface ChangeJobData {
  request: JobRequest;
  createdBy: string;
  /** The submitter's principal id (four eyes compares it with the approver's); absent on older jobs. */
  createdById?: string;
  createdDateTime: string;
  /** Set when the change waits for an approval (CMK_APPROVALS=required): until when. */
  approval?: { expiresDateTime: string };
  /** The Succeeded job this one undoes. */
  rollbackOf?: string;
  /** Children of a fleet rotation only. */
  fleet?: FleetMembership;
  /**
   * RotateFleet and ComplianceScan: the subscriptions it may look in, fixed when it was accepted (the body's
   * `subscriptions`, else the caller's allow-list); absent: every subscription the service can list.
   */
  scope?: string[];
}

/** What a job is about, for error targets: its FHIR service, or a fleet rotation's key. */
export function jobTarget(request: JobRequest): string {
  if (request.operation === "RotateFleet") return request.keyUrl;
  if (request.operation === "ComplianceScan") return COMPLIANCE_SCAN_TARGET;
  return request.fhirServiceId;
}

export interface StepPlan {
  name: string;
  weight: number;
}

export function newProgress(plan: readonly StepPlan[], now: Date): JobProgress {
  return {
    steps: plan.map(({ name, weight }) => ({ name, weight, status: "NotStarted" as StepStatus })),
    lastUpdatedDateTime: now.toISOString(),
  };
}

/** Returns a copy of `progress` with step `name` changed by `update`. */
export function updateStep(progress: JobProgress, name: string, update: Partial<StepRecord>, now: Date): JobProgress {
  let found = false;
  const steps = progress.steps.map((step) => {
    if (step.name !== name) return step;
    found = true;
    return { ...step, ...update };
  });
  if (!found) throw new Error(`Unknown step ${name}`);
  return { ...progress, steps, currentStep: name, lastUpdatedDateTime: now.toISOString() };
}

export function startStep(progress: JobProgress, name: string, now: Date): JobProgress {
  return updateStep(progress, name, { status: "Running", startedDateTime: now.toISOString(), endedDateTime: undefined, fraction: 0 }, now);
}

export function endStep(
  progress: JobProgress,
  name: string,
  outcome: { status: Extract<StepStatus, "Succeeded" | "Failed" | "Skipped">; message?: string; output?: unknown },
  now: Date,
): JobProgress {
  return updateStep(progress, name, { ...outcome, endedDateTime: now.toISOString(), fraction: undefined }, now);
}

export function findStep(progress: JobProgress, name: string): StepRecord | undefined {
  return progress.steps.find((step) => step.name === name);
}

export function percentComplete(progress: JobProgress): number {
  const total = progress.steps.reduce((sum, step) => sum + step.weight, 0) || 1;
  const done = progress.steps.reduce((sum, step) => {
    if (step.status === "Succeeded" || step.status === "Skipped") return sum + step.weight;
    if (step.status === "Running") return sum + step.weight * Math.min(Math.max(step.fraction ?? 0, 0), 0.99);
    return sum;
  }, 0);
  return Math.min(100, Math.floor((done / total) * 100));
}

/** What BullMQ knows of a job, reduced to what the status monitor needs. */
export interface JobSnapshot {
  id: string;
  data: ChangeJobData;
  progress: JobProgress | undefined;
  state: string;
  attemptsStarted: number;
  finishedOn: number | undefined;
  /** An approver's decision (or the approval's expiry), when there is one. */
  decision?: ApprovalDecision | undefined;
}

export function jobStatus(snapshot: Pick<JobSnapshot, "state" | "attemptsStarted" | "progress">): JobStatus {
  switch (snapshot.state) {
    case "completed":
      return CANCELED_CODES.has(snapshot.progress?.error?.code ?? "") ? "Canceled" : "Succeeded";
    case "failed":
      return CANCELED_CODES.has(snapshot.progress?.error?.code ?? "") ? "Canceled" : "Failed";
    case "active":
      return "Running";
    default:
      // waiting, delayed (between retries), prioritized: Running once a worker has started it.
      return snapshot.attemptsStarted > 0 ? "Running" : "NotStarted";
  }
}

export function isTerminal(status: JobStatus): boolean {
  return status === "Succeeded" || status === "Failed" || status === "Canceled";
}

export function toStatusMonitor(snapshot: JobSnapshot, now = new Date()): JobStatusMonitor {
  const { data, progress } = snapshot;
  // A job that has run no step may be waiting for an approval or its window: NotStarted, saying which.
  const waitingFor = progress === undefined && snapshot.finishedOn === undefined ? awaiting(data, snapshot.decision, now.getTime()) : undefined;
  const status = waitingFor ? "NotStarted" : jobStatus(snapshot);
  const monitor: JobStatusMonitor = {
    id: snapshot.id,
    operation: data.request.operation,
    status,
    percentComplete: status === "Succeeded" ? 100 : progress ? percentComplete(progress) : 0,
    steps: (progress?.steps ?? []).map(({ name, status: stepStatus, startedDateTime, endedDateTime, message }) => ({
      name,
      status: stepStatus,
      ...(startedDateTime ? { startedDateTime } : {}),
      ...(endedDateTime ? { endedDateTime } : {}),
      ...(message ? { message } : {}),
    })),
    ...(data.request.fhirServiceId ? { fhirServiceId: data.request.fhirServiceId } : {}),
    ...(data.fleet ? { parentJobId: data.fleet.parentJobId } : {}),
    ...(data.request.operation === "RotateFleet" ? { keyUrl: data.request.keyUrl } : {}),
    ...((data.request.operation === "RotateFleet" || data.request.operation === "ComplianceScan") && data.scope ? { subscriptions: data.scope } : {}),
    createdBy: data.createdBy,
    createdDateTime: data.createdDateTime,
    lastUpdatedDateTime:
      progress?.lastUpdatedDateTime ?? (snapshot.finishedOn ? new Date(snapshot.finishedOn).toISOString() : data.createdDateTime),
    attempts: snapshot.attemptsStarted,
  };
  if (progress?.currentStep) monitor.currentStep = progress.currentStep;
  if (waitingFor) monitor.currentStep = waitingFor;
  if (data.request.dryRun) monitor.dryRun = true;
  if (data.request.ticket) monitor.ticket = data.request.ticket;
  const approval = approvalView(data, snapshot.decision);
  // An ended job that was never decided (canceled, window missed) no longer expires.
  if (approval) monitor.approval = approval.state === "Pending" && isTerminal(status) ? { state: "Pending" } : approval;
  if (data.request.schedule) monitor.schedule = data.request.schedule;
  if (data.rollbackOf) monitor.rollbackOf = data.rollbackOf;
  if (progress?.result) monitor.result = progress.result;
  if (progress?.retries?.length) monitor.retries = progress.retries;
  if (status === "Failed" || status === "Canceled") {
    monitor.error = progress?.error ?? {
      code: "InternalError",
      message: "The job stopped unexpectedly; see the service logs for its id.",
      target: jobTarget(data.request),
    };
  }
  return monitor;
}

/** Who asked for a cancel, and when. */
export interface CancelRecord {
  by: string;
  dateTime: string;
}

export function canceledError(record: CancelRecord, fhirServiceId: string, detail = "no Azure write was sent"): JobErrorBody {
  return { code: "Canceled", message: `Canceled by ${record.by} at ${record.dateTime}; ${detail}.`, target: fhirServiceId };
}

/**
 * The record a job has once canceled: unfinished steps Skipped, `error.code` Canceled (or `error`, for a
 * job ended by governance: Rejected, ApprovalExpired, ChangeWindowMissed).
 */
export function canceledProgress(
  progress: JobProgress | undefined,
  plan: readonly StepPlan[],
  record: CancelRecord,
  fhirServiceId: string,
  now: Date,
  error: JobErrorBody = canceledError(record, fhirServiceId),
): JobProgress {
  let next = progress ?? newProgress(plan, now);
  for (const step of next.steps) {
    if (step.status === "NotStarted") next = endStep(next, step.name, { status: "Skipped", message: "Canceled before this step ran." }, now);
    else if (step.status === "Running") next = endStep(next, step.name, { status: "Skipped", message: "Canceled before this step finished; it wrote nothing." }, now);
  }
  const lastRun = [...next.steps].reverse().find((step) => step.startedDateTime !== undefined);
  // A job that ran no step shows what it was waiting for, if anything.
  const currentStep = lastRun?.name ?? progress?.currentStep ?? awaitedBefore(error.code);
  return { ...next, ...(currentStep ? { currentStep } : { currentStep: undefined }), error, lastUpdatedDateTime: now.toISOString() };
}

/** The monitor of a job just added (the 202's body, and what an Idempotency-Key replay answers again). */
export function newJobMonitor(id: string, data: ChangeJobData): JobStatusMonitor {
  return toStatusMonitor({ id, data, progress: undefined, state: "waiting", attemptsStarted: 0, finishedOn: undefined });
}
