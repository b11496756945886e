import { canceledProgress, jobTarget, type CancelRecord } from "../domain/job-record.js";
import { stepPlanOf } from "../domain/operation-plans.js";
import { cancelKeys, deduplicationKeyPrefix, JOB_FIELDS, parseProgress, snapshotFromHash } from "./bullmq-layout.js";
import type { JobErrorBody } from "../schemas/jobs.js";
import type { ChangesQueue } from "./queue.js";
import type { StoreContext } from "./store-context.js";

/**
 * Cancellation, race-free with the worker.
 *
 * Each job has a small control hash beside it (`{prefix}:jobs:{id}:control`):
 * - `cancel`: who asked for the cancel, and when;
 * - `committed`: the step that began writing to Azure (or how the job ended).
 *
 * Two Lua scripts decide between them atomically. The API's (scripts/cancel-9.lua) refuses when
 * `committed` is set, and otherwise either finishes a job no worker holds (waiting, or delayed between
 * retries) as Canceled in one step, or, for a job a worker holds, sets `cancel`. The worker's
 * (scripts/claim-1.lua), run right before every Azure write (and before a job ends), refuses when `cancel`
 * is set and otherwise sets `committed`. So a cancel that was accepted is always seen before any write,
 * and a write that was claimed always makes cancel answer 409.
 */

/** Thrown inside the worker when a cancel was asked for; the step runner turns it into the Canceled ending. */
export class JobCanceledError extends Error {
  /** `detail`: what the cancel left done, when not "no Azure write was sent" (a fleet rotation's children). */
  constructor(
    readonly record: CancelRecord,
    readonly detail?: string,
  ) {
    super(`Canceled by ${record.by} at ${record.dateTime}`);
    this.name = "JobCanceledError";
  }
}

function parseRecord(text: string): CancelRecord {
  try {
    const parsed = JSON.parse(text) as Partial<CancelRecord>;
    return { by: String(parsed.by ?? "unknown"), dateTime: String(parsed.dateTime ?? new Date().toISOString()) };
  } catch {
    return { by: "unknown", dateTime: new Date().toISOString() };
  }
}

/** The worker's side of one job's control record. */
export class JobControl {
  private readonly key: string;

  constructor(
    private readonly store: StoreContext,
    jobId: string,
  ) {
    this.key = store.keys.control(jobId);
  }

  /** Throws JobCanceledError when a cancel was asked for. */
  async throwIfCanceled(): Promise<void> {
    const record = await this.cancelRecord();
    if (record) throw new JobCanceledError(record);
  }

  /** The cancel asked for, if any. */
  async cancelRecord(): Promise<CancelRecord | undefined> {
    const cancel = await this.store.redis.hget(this.key, "cancel");
    return cancel ? parseRecord(cancel) : undefined;
  }

  /** Whether a step of this job (in any attempt) has begun writing, or the job is ending. */
  async hasClaimed(): Promise<boolean> {
    return (await this.store.redis.hexists(this.key, "committed")) === 1;
  }

  /**
   * Atomically: throws JobCanceledError when a cancel was asked for; otherwise records that `what` (a step
   * about to write, or how the job ends) is under way, after which cancel answers 409.
   */
  async claim(what: string): Promise<void> {
    const [outcome, cancel] = await this.store.redis.cmkClaim(this.key, what, this.store.keepMs);
    if (outcome === "canceled") throw new JobCanceledError(parseRecord(cancel));
  }
}

export type CancelOutcome =
  /** The job was waiting (or between retries) and is Canceled now. */
  | { kind: "canceled" }
  /** A worker holds the job: it ends Canceled at its next step or before its next write. */
  | { kind: "requested" }
  | { kind: "alreadyRequested" }
  | { kind: "notFound" }
  | { kind: "ended" }
  /** A step began writing to Azure (or the job is finishing): too late. */
  | { kind: "committed"; step: string };

/** The API's side: cancels `jobId` if it has not begun writing. */
export async function requestCancel(store: StoreContext, queue: ChangesQueue, jobId: string, record: CancelRecord, error?: JobErrorBody): Promise<CancelOutcome> {
  const jobKey = queue.toKey(jobId);
  for (let round = 0; round < 10; round += 1) {
    const hash = await store.redis.hgetall(jobKey);
    const snapshot = snapshotFromHash(jobId, hash);
    if (!snapshot) return { kind: "notFound" };
    const raw = hash[JOB_FIELDS.progress] ?? "";
    const now = new Date();
    const progress = canceledProgress(parseProgress(raw), stepPlanOf(snapshot.data.request.operation), record, jobTarget(snapshot.data.request), now, error);
    const [outcome, detail] = await store.redis.cmkCancel(
      jobKey,
      store.keys.control(jobId),
      ...cancelKeys(queue),
      jobId,
      raw,
      JSON.stringify(progress),
      now.getTime(),
      `Canceled: ${progress.error!.message}`,
      JSON.stringify(record),
      deduplicationKeyPrefix(queue),
      store.keepMs,
    );
    switch (outcome) {
      case "missing":
        return { kind: "notFound" };
      case "finished":
        return { kind: "ended" };
      case "committed":
        return { kind: "committed", step: detail };
      case "flagged":
        return { kind: "requested" };
      case "already":
        return { kind: "alreadyRequested" };
      case "finalized":
        return { kind: "canceled" };
      default:
      // "changed": a worker moved the job between our read and the script; look again.
    }
  }
  return { kind: "requested" };
}
