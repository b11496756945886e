import { Worker, type Job } from "bullmq";
import type { Redis } from "ioredis";
import type { FastifyBaseLogger } from "fastify";
import type { ChangeJobData } from "../domain/job-record.js";
import type { JobResult } from "../schemas/jobs.js";
import { CHANGES_QUEUE } from "./queue.js";
import { JobSteps } from "./job-steps.js";
import { runSetKey, SET_KEY_STEPS } from "./operations/set-key.js";
import type { WorkerDependencies } from "./worker-dependencies.js";

export interface ChangeWorkerOptions {
  connection: Redis;
  prefix: string;
  concurrency: number;
  /** Lock duration and stalled-job check interval: how soon a dead worker's job is taken over. */
  lockMs: number;
  logger: FastifyBaseLogger;
}

/** Runs one change job: picks the operation's steps and runs them in order. */
export async function processChange(job: Job<ChangeJobData>, deps: WorkerDependencies): Promise<JobResult> {
  const { request } = job.data;
  switch (request.operation) {
    case "SetKey": {
      const steps = await JobSteps.start(job, SET_KEY_STEPS);
      return runSetKey(steps, deps, request);
    }
  }
}

export function createChangeWorker(deps: WorkerDependencies, options: ChangeWorkerOptions): Worker<ChangeJobData, JobResult> {
  const worker = new Worker<ChangeJobData, JobResult>(CHANGES_QUEUE, (job) => processChange(job, deps), {
    connection: options.connection,
    prefix: options.prefix,
    concurrency: options.concurrency,
    lockDuration: options.lockMs,
    stalledInterval: options.lockMs,
    // Steps resume from their last saved outcome, so a job may be taken over several times safely.
    maxStalledCount: 5,
  });
  const log = options.logger;
  worker.on("active", (job) => log.info({ jobId: job.id, operation: job.name, fhirServiceId: job.data.request.fhirServiceId, attempt: job.attemptsStarted }, "job started"));
  worker.on("completed", (job) => log.info({ jobId: job.id, operation: job.name }, "job succeeded"));
  worker.on("failed", (job, error) => log.warn({ jobId: job?.id, operation: job?.name, reason: error.message }, "job attempt failed"));
  worker.on("error", (error) => log.error({ err: error }, "worker error"));
  return worker;
}
