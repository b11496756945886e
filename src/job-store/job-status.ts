import type { Job } from "bullmq";
import type { Redis } from "ioredis";
import { toStatusMonitor, type ChangeJobData, type JobProgress } from "../domain/job-record.js";
import type { JobStatusMonitor } from "../schemas/jobs.js";
import type { ChangesQueue } from "./queue.js";
import { withCallback } from "../worker/webhook-delivery.js";

/** Reads a BullMQ job back as the contract's status monitor. */
export async function snapshotOf(job: Job<ChangeJobData>): Promise<JobStatusMonitor> {
  const state = await job.getState();
  return toStatusMonitor({
    id: job.id!,
    data: job.data,
    progress: typeof job.progress === "object" ? (job.progress as unknown as JobProgress) : undefined,
    state,
    attemptsStarted: job.attemptsStarted ?? 0,
    finishedOn: job.finishedOn,
  });
}

export async function readStatusMonitor(queue: ChangesQueue, jobId: string): Promise<JobStatusMonitor | undefined> {
  const job = await queue.getJob(jobId);
  if (!job) return undefined;
  const monitor = await snapshotOf(job);
  // Jobs with a callbackUrl also show their webhook deliveries.
  if (!job.data.request.callbackUrl) return monitor;
  const prefix = queue.qualifiedName.slice(0, queue.qualifiedName.length - queue.name.length - 1);
  return withCallback((await queue.getBackend().client) as unknown as Redis, prefix, monitor, job.data.request.callbackUrl);
}
