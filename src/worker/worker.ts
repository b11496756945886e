import { Worker, type Job } from "bullmq";
import type { FastifyBaseLogger } from "fastify";
import type { ChangeJobData } from "../domain/job-record.js";
import type { JobResult } from "../schemas/jobs.js";
import { CHANGES_QUEUE } from "../job-store/keys.js";
import type { JobStore } from "../job-store/job-store.js";
import { redisOutageLog } from "../job-store/outage-log.js";
import { JobSteps, type JobHooks } from "./job-steps.js";
import { operationOf, type JobContext, type ScanContext } from "./operations/index.js";
import type { ComplianceSettings } from "../domain/compliance/rules.js";
import type { ApprovalPolicy } from "../domain/governance.js";
import { followLatestVersion } from "../job-store/follow-latest.js";
import type { JobControl } from "../job-store/cancel.js";
import type { WorkerDependencies } from "./worker-dependencies.js";
import { guardAzureWrites } from "./write-guard.js";
import { followJobOutcomes, jobHooks, jobLogger } from "./job-hooks.js";
import { passGovernanceGate } from "./governance-gate.js";

export interface ChangeWorkerOptions {
  store: JobStore;
  /** CMK_SUBSCRIPTIONS: what fleet rotations cover by default. */
  fleetSubscriptions?: readonly string[] | undefined;
  /** How often a fleet parent looks at its children (default 1 s). */
  fleetPollMs?: number;
  /** Compliance scans: the rules' settings, following, and CMK_APPROVALS for the RotateKeys following starts. */
  compliance?: {
    settings?: ComplianceSettings;
    follow?: boolean;
    approvals?: ApprovalPolicy;
  };
  concurrency: number;
  /** Lock duration and stalled-job check interval: how soon a dead worker's job is taken over. */
  lockMs: number;
  logger: FastifyBaseLogger;
}

/** Runs one change job: its operation's steps, in order, with every Azure write guarded against cancel. */
export async function processChange(
  job: Job<ChangeJobData>,
  deps: WorkerDependencies,
  hooks: JobHooks,
  context: Omit<JobContext, "jobId" | "data" | "cancelRequested">,
  control: JobControl,
): Promise<JobResult> {
  const { request } = job.data;
  const operation = operationOf(request);
  const steps = await JobSteps.start(job, operation.steps, hooks);
  const beforeWrite = operation.writesStayCancellable ? () => steps.throwIfCanceled() : () => steps.beforeWrite();
  return operation.run(steps, guardAzureWrites(deps, beforeWrite), request, {
    ...context,
    jobId: job.id!,
    data: job.data,
    cancelRequested: () => control.cancelRecord(),
  });
}

/** Jobs each worker of this process is running now; shutdown waits for them only when there are any. */
const running = new WeakMap<Worker, { jobs: number }>();

export function runningJobCount(worker: Worker): number {
  return running.get(worker)?.jobs ?? 0;
}

export function createChangeWorker(deps: WorkerDependencies, options: ChangeWorkerOptions): Worker<ChangeJobData, JobResult> {
  const { store } = options;
  const count = { jobs: 0 };
  const scan = options.compliance ?? {};
  const compliance: ScanContext = {
    settings: scan.settings ?? { requireCustomerManagedKey: false, keyMaxAgeDays: 365 },
    follow: scan.follow ?? false,
    reports: store.compliance,
    followLatest: (moves) => followLatestVersion(store, moves, scan.approvals),
  };
  const run = async (job: Job<ChangeJobData>, token?: string): Promise<JobResult> => {
    count.jobs += 1;
    try {
      // Approval and change window first: a job that may not start yet goes back to wait, holding no slot.
      await passGovernanceGate(job, token, store);
      return await processChange(
        job,
        deps,
        jobHooks(job, store, options.logger),
        { fleets: store.fleets, fleetSubscriptions: options.fleetSubscriptions, fleetPollMs: options.fleetPollMs ?? 1000, compliance },
        store.control(job.id!),
      );
    } finally {
      count.jobs -= 1;
    }
  };
  const worker = new Worker<ChangeJobData, JobResult>(CHANGES_QUEUE, run, {
    connection: store.redis,
    prefix: store.keys.prefix,
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
  followJobOutcomes(worker, store, log);
  return worker;
}
