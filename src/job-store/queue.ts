import { createHash, randomUUID } from "node:crypto";
import { Queue, type JobsOptions } from "bullmq";
import type { Redis } from "ioredis";
import { canonicalArmId } from "../domain/arm-ids.js";
import type { ChangeJobData } from "../domain/job-record.js";

/** The one queue every change request goes through. */
export const CHANGES_QUEUE = "changes";

export type ChangesQueue = Queue<ChangeJobData>;

export interface QueueSettings {
  prefix: string;
  retentionHours: number;
}

/** Retries for transient Azure trouble: 6 attempts, exponential from 2 s with jitter (about 1 minute in all). */
export const CHANGE_JOB_ATTEMPTS = 6;

export function changeJobOptions(settings: QueueSettings): JobsOptions {
  const age = settings.retentionHours * 3600;
  return {
    attempts: CHANGE_JOB_ATTEMPTS,
    backoff: { type: "exponential", delay: 2000, jitter: 0.5 },
    removeOnComplete: { age },
    removeOnFail: { age },
  };
}

export function createChangesQueue(connection: Redis, settings: QueueSettings): ChangesQueue {
  return new Queue<ChangeJobData>(CHANGES_QUEUE, {
    connection,
    prefix: settings.prefix,
    defaultJobOptions: changeJobOptions(settings),
  });
}

/** One deduplication id per FHIR service: BullMQ keeps it until the job completes or fails. */
export function exclusivityId(fhirServiceId: string): string {
  return createHash("sha256").update(canonicalArmId(fhirServiceId)).digest("hex").slice(0, 40);
}

export type EnqueueResult = { accepted: true; jobId: string } | { accepted: false; activeJobId: string };

/**
 * Adds a change job unless the FHIR service already has an unfinished one. The check and the add are
 * one Lua script inside BullMQ (deduplication), so concurrent submissions cannot both win.
 */
export async function enqueueChange(queue: ChangesQueue, data: ChangeJobData): Promise<EnqueueResult> {
  const jobId = randomUUID();
  const exclusive = !data.request.dryRun;
  const job = await queue.add(data.request.operation, data, {
    jobId,
    ...(exclusive ? { deduplication: { id: exclusivityId(data.request.fhirServiceId) } } : {}),
  });
  return job.id === jobId ? { accepted: true, jobId } : { accepted: false, activeJobId: job.id! };
}
