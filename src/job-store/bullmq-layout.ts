import type { Queue } from "bullmq";
import type { ChangeJobData, JobProgress, JobSnapshot } from "../domain/job-record.js";
import { CANCELED_CODES, parseDecision } from "../domain/governance.js";

/**
 * What the store relies on of BullMQ's own key layout, in one place. Everything else goes through
 * BullMQ's API. Two things need more:
 * - a status read is one HGETALL of the job's hash, not BullMQ's getState script (a ZSCORE or LPOS per
 *   state): BullMQ writes the fields that tell the state in the same script that moves the job, so the
 *   hash alone says it (`statusFields`);
 * - cancel finishes a job no worker holds in its own script (scripts/cancel-9.lua), atomically with the
 *   job's control record: no BullMQ API fails a job that is not active (`cancelKeys`).
 * test/job-store/bullmq-layout.test.ts checks all of it against real BullMQ jobs in every state, so a
 * BullMQ upgrade that moves any of it fails there, loudly.
 */

/** Hash fields of `{prefix}:changes:{id}` the store reads (and cancel writes: progress, failedReason, finishedOn). */
export const JOB_FIELDS = {
  /** JSON of the job's data (ChangeJobData). */
  data: "data",
  /** JSON of the execution record (updateProgress). */
  progress: "progress",
  /** Attempts started: incremented when a worker takes the job (moveToActive). */
  attemptsStarted: "ats",
  /** Set, with `returnvalue` or `failedReason`, when the job finished (moveToFinished). */
  finishedOn: "finishedOn",
  returnValue: "returnvalue",
  failedReason: "failedReason",
  /** The deduplication id the job holds (our exclusivity per FHIR service). */
  deduplicationId: "deid",
  /**
   * Ours, not BullMQ's: an approver's decision (JSON, scripts/decide-approval-1.lua), absent while the
   * approval is pending. BullMQ leaves fields it does not know alone and deletes them with the job.
   */
  approval: "approval",
  /** Set when the job is added. */
  timestamp: "timestamp",
  /** Times the job was found stalled (its worker gone) and taken over; BullMQ fails it past maxStalledCount. */
  stalledCount: "stc",
} as const;

/** The fields `endStateFromFields` reads (HMGET, in this order): a fleet parent follows its children with them. */
export const END_STATE_FIELDS = [JOB_FIELDS.timestamp, JOB_FIELDS.finishedOn, JOB_FIELDS.returnValue, JOB_FIELDS.failedReason] as const;

/**
 * A job's state from END_STATE_FIELDS alone, without reading its data or progress: missing (no such
 * job), unfinished, or how it ended. Canceled jobs fail with a reason that starts `Canceled` (the cancel
 * script and the step runner both say so), or with a governance code that ends a job Canceled
 * (`ChangeWindowMissed: …`, `Rejected: …`, as the monitor shows them); a later success keeps an earlier
 * attempt's failedReason, so a return value decides first.
 */
export function endStateFromFields(values: ReadonlyArray<string | null>): "missing" | "unfinished" | "Succeeded" | "Failed" | "Canceled" {
  const [timestamp, finishedOn, returnValue, failedReason] = values;
  if (timestamp === null || timestamp === undefined) return "missing";
  if (!finishedOn) return "unfinished";
  if (returnValue !== null && returnValue !== undefined) return "Succeeded";
  const code = /^[A-Za-z]+/.exec(failedReason ?? "")?.[0];
  return code !== undefined && CANCELED_CODES.has(code) ? "Canceled" : "Failed";
}

/**
 * The job's snapshot from its hash alone: finished (completed when it has a return value, else failed),
 * or not yet: a started attempt makes it Running, as BullMQ's active and waiting-for-a-retry states both
 * are. Undefined for an empty hash (no such job).
 */
export function snapshotFromHash(id: string, hash: Record<string, string>): JobSnapshot | undefined {
  const rawData = hash[JOB_FIELDS.data];
  if (rawData === undefined) return undefined;
  let data: ChangeJobData;
  try {
    data = JSON.parse(rawData) as ChangeJobData;
  } catch {
    return undefined;
  }
  const finishedOn = hash[JOB_FIELDS.finishedOn] ? Number(hash[JOB_FIELDS.finishedOn]) : undefined;
  const attemptsStarted = Number(hash[JOB_FIELDS.attemptsStarted] ?? 0) || 0;
  const state = finishedOn !== undefined ? (JOB_FIELDS.returnValue in hash ? "completed" : "failed") : attemptsStarted > 0 ? "active" : "waiting";
  const decision = parseDecision(hash[JOB_FIELDS.approval]);
  return { id, data, progress: parseProgress(hash[JOB_FIELDS.progress]), state, attemptsStarted, finishedOn, ...(decision ? { decision } : {}) };
}

/**
 * The hash fields `snapshotFromHash` reads, as they are: equal sources make equal snapshots (the store
 * parses a job again only when its source changed, parsed-jobs.ts).
 */
export function snapshotSource(hash: Record<string, string>): string[] {
  return [
    hash[JOB_FIELDS.data] ?? "",
    hash[JOB_FIELDS.progress] ?? "",
    hash[JOB_FIELDS.finishedOn] ?? "",
    hash[JOB_FIELDS.attemptsStarted] ?? "",
    JOB_FIELDS.returnValue in hash ? "returned" : "",
    hash[JOB_FIELDS.approval] ?? "",
  ];
}

/** The execution record, when the progress field holds one (a bare number does not). */
export function parseProgress(raw: string | undefined): JobProgress | undefined {
  if (!raw) return undefined;
  try {
    const parsed = JSON.parse(raw) as unknown;
    return typeof parsed === "object" && parsed !== null && Array.isArray((parsed as JobProgress).steps) ? (parsed as JobProgress) : undefined;
  } catch {
    return undefined;
  }
}

/** BullMQ's keys the cancel script takes, in its KEYS order after the job hash and control record. */
export function cancelKeys(queue: Queue): string[] {
  const { keys } = queue;
  return [keys.wait!, keys.paused!, keys.delayed!, keys.prioritized!, keys.failed!, keys.completed!, keys.events!];
}

/** Where BullMQ keeps a deduplication id's key: `{prefix}:{queue}:de:{id}`. */
export function deduplicationKeyPrefix(queue: Queue): string {
  return `${queue.keys.de!}:`;
}
