import { Worker, type Job } from "bullmq";
import type { Redis } from "ioredis";
import type { FastifyBaseLogger } from "fastify";
import type { ChangeJobData } from "../domain/job-record.js";
import type { JobResult } from "../schemas/jobs.js";
import { CHANGES_QUEUE } from "../job-store/queue.js";
import { JobSteps, type JobHooks } from "./job-steps.js";
import { runSetKey, SET_KEY_STEPS } from "./operations/set-key.js";
import { CREATE_SERVICE_STEPS, runCreateService } from "./operations/create-service.js";
import { ROTATE_KEY_STEPS, runRotateKey } from "./operations/rotate-key.js";
import { RECOVER_KEY_ACCESS_STEPS, runRecoverKeyAccess } from "./operations/recover-key-access.js";
import type { WorkerDependencies } from "./worker-dependencies.js";
import { guardAzureWrites } from "../job-store/cancel.js";
import { followJobOutcomes, jobHooks, jobLogger } from "./job-hooks.js";
import { redisOutageLog } from "../job-store/outage-log.js";

export interface ChangeWorkerOptions {
  connection: Redis;
  prefix: string;
  concurrency: number;
  /** Lock duration and stalled-job check interval: how soon a dead worker's job is taken over. */
  lockMs: number;
  logger: FastifyBaseLogger;
  /** How long job records, event logs and control records are kept (default 168). */
  retentionHours?: number;
  /** First webhook retry delay (default 10 s). */
  webhookBackoffMs?: number;
}

/** Runs one change job: picks the operation's steps and runs them in order. */
export async function processChange(job: Job<ChangeJobData>, deps: WorkerDependencies, hooks: JobHooks = {}): Promise<JobResult> {
  const { request } = job.data;
  switch (request.operation) {
    case "SetKey": {
      const steps = await JobSteps.start(job, SET_KEY_STEPS, hooks);
      // Every Azure write first checks (atomically) that the job was not canceled: see cancel.ts.
      return runSetKey(steps, guardAzureWrites(deps, () => steps.beforeWrite()), request);
    }
    case "CreateService": {
      const steps = await JobSteps.start(job, CREATE_SERVICE_STEPS, hooks);
      return runCreateService(steps, guardAzureWrites(deps, () => steps.beforeWrite()), request);
    }
    case "RotateKey": {
      const steps = await JobSteps.start(job, ROTATE_KEY_STEPS, hooks);
      return runRotateKey(steps, guardAzureWrites(deps, () => steps.beforeWrite()), request);
    }
    case "RecoverKeyAccess": {
      const steps = await JobSteps.start(job, RECOVER_KEY_ACCESS_STEPS, hooks);
      return runRecoverKeyAccess(steps, guardAzureWrites(deps, () => steps.beforeWrite()), request);
    }
  }
}

/** Jobs each worker of this process is running now; shutdown waits for them only when there are any. */
const running = new WeakMap<Worker, { jobs: number }>();

export function runningJobCount(worker: Worker): number {
  return running.get(worker)?.jobs ?? 0;
}

export function createChangeWorker(deps: WorkerDependencies, options: ChangeWorkerOptions): Worker<ChangeJobData, JobResult> {
  const lifecycle = { ...options, retentionHours: options.retentionHours ?? 168, webhookBackoffMs: options.webhookBackoffMs ?? 10_000 };
  const count = { jobs: 0 };
  const run = async (job: Job<ChangeJobData>): Promise<JobResult> => {
    count.jobs += 1;
    try {
      return await processChange(job, deps, jobHooks(job, lifecycle));
    } finally {
      count.jobs -= 1;
    }
  };
  const worker = new Worker<ChangeJobData, JobResult>(CHANGES_QUEUE, run, {
    connection: options.connection,
    prefix: options.prefix,
    concurrency: options.concurrency,
    lockDuration: options.lockMs,
    stalledInterval: options.lockMs,
    // Steps resume from their last saved outcome, so a job may be taken over several times safely.
    maxStalledCount: 5,
  });
  running.set(worker, count);
  const log = options.logger;
  // Child loggers: every line about a job carries jobId and ticketId.
  worker.on("active", (job) => jobLogger(log, job).info({ attempt: job.attemptsStarted }, "job started"));
  worker.on("completed", (job) => jobLogger(log, job).info("job succeeded"));
  worker.on("failed", (job, error) => jobLogger(log, job).warn({ reason: error.message }, "job attempt failed"));
  worker.on("error", (error) => redisOutageLog.error(log, error, "worker error"));
  followJobOutcomes(worker, lifecycle);
  return worker;
}
