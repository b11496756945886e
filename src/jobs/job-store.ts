import type { Job } from "bullmq";
import { toStatusMonitor, type ChangeJobData, type JobProgress } from "../domain/job-record.js";
import type { JobStatusMonitor } from "../schemas/jobs.js";
import type { ChangesQueue } from "./queue.js";

/** Reads a BullMQ job back as the contract's status monitor. */
export async function snapshotOf(job: Job<ChangeJobData>): Promise<JobStatusMonitor> {
  const state = await job.getState();
  return toStatusMonitor({
    id: job.id!,
    data: job.data,
    progress: typeof job.progress === "object" ? (job.progress as unknown as JobProgress) : undefined,
    state,
    attemptsMade: job.attemptsMade,
    attemptsStarted: job.attemptsStarted ?? 0,
    finishedOn: job.finishedOn,
    failedReason: job.failedReason,
  });
}

export async function readStatusMonitor(queue: ChangesQueue, jobId: string): Promise<JobStatusMonitor | undefined> {
  const job = await queue.getJob(jobId);
  return job ? snapshotOf(job) : undefined;
}
