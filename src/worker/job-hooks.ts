import { Queue, type Job, type Worker } from "bullmq";
import type { Redis } from "ioredis";
import type { FastifyBaseLogger } from "fastify";
import { toStatusMonitor, type ChangeJobData, type JobProgress } from "../domain/job-record.js";
import type { JobStatusMonitor } from "../schemas/jobs.js";
import type { JobHooks } from "./job-steps.js";
import { JobControl } from "../job-store/cancel.js";
import { appendJobEvent } from "../job-store/job-events.js";
import { indexJob } from "../job-store/job-index.js";
import { snapshotOf } from "../job-store/job-status.js";
import { callbackInfo, createWebhooksQueue, enqueueWebhook, withCallback, type WebhookJobData } from "./webhook-delivery.js";
import { CHANGES_QUEUE } from "../job-store/queue.js";
import { recordJobOutcome } from "../job-store/audit-trail.js";
import { redisOutageLog } from "../job-store/outage-log.js";

/**
 * What the change worker does around each job beyond running its steps: the cancel checks, the event
 * log (a monitor per saved record, and the final one), the webhook when the job ends, and log lines
 * that carry the job id and ticket id.
 */
export interface JobLifecycleOptions {
  connection: Redis;
  prefix: string;
  retentionHours: number;
  webhookBackoffMs: number;
  logger: FastifyBaseLogger;
}

/** A child logger whose every line names the job (and its ticket). */
export function jobLogger(logger: FastifyBaseLogger, job: Job<ChangeJobData> | undefined): FastifyBaseLogger {
  if (!job) return logger;
  const ticketId = job.data?.request?.ticket?.id;
  return logger.child({ jobId: job.id, ...(ticketId ? { ticketId } : {}), operation: job.name, fhirServiceId: job.data?.request?.fhirServiceId });
}

/** The hooks JobSteps runs for `job`: cancel control and the event log. */
export function jobHooks(job: Job<ChangeJobData>, options: JobLifecycleOptions): JobHooks {
  const ttlMs = Math.max(24, options.retentionHours) * 3_600_000;
  const control = new JobControl(options.connection, options.prefix, job.id!, ttlMs);
  const log = jobLogger(options.logger, job);
  return {
    throwIfCanceled: () => control.throwIfCanceled(),
    claim: (what) => control.claim(what),
    saved: async (progress: JobProgress) => {
      const monitor = runningMonitor(job, progress);
      // The event log is for followers; the job record was saved already, so a failure here stops nothing.
      await appendJobEvent(options.connection, options, monitor).catch((error: Error) => log.warn({ err: error.message }, "job event not appended"));
    },
  };
}

function runningMonitor(job: Job<ChangeJobData>, progress: JobProgress): JobStatusMonitor {
  const monitor = toStatusMonitor({
    id: job.id!,
    data: job.data,
    progress,
    state: "active",
    attemptsStarted: job.attemptsStarted ?? 0,
    finishedOn: undefined,
  });
  const url = job.data.request.callbackUrl;
  return url ? { ...monitor, callback: callbackInfo(url, []) } : monitor;
}

/** How many recently finished jobs a starting worker looks at for a webhook that was never queued. */
const WEBHOOK_CATCH_UP_JOBS = 500;

/**
 * Queues the webhook of every job that ended in the last 24 hours with a `callbackUrl`, for the case of
 * a worker that died after its job ended but before it queued the webhook. Webhook jobs are keyed by the
 * change job's id, so a webhook that was queued (or delivered) already is not queued again. Returns how
 * many jobs it looked at.
 */
export async function catchUpWebhooks(changes: Queue<ChangeJobData>, webhooks: Queue<WebhookJobData>, options: JobLifecycleOptions): Promise<number> {
  const since = Date.now() - 24 * 3600_000;
  const finished = await changes.getJobs(["completed", "failed"], 0, WEBHOOK_CATCH_UP_JOBS - 1, false);
  for (const job of finished) {
    const url = job.data?.request.callbackUrl;
    if (!url || !job.finishedOn || job.finishedOn < since || (await webhooks.getJob(job.id!))) continue;
    const monitor = await withCallback(options.connection, options.prefix, await snapshotOf(job), url);
    await enqueueWebhook(webhooks, monitor, url, { backoffMs: options.webhookBackoffMs, retentionHours: options.retentionHours });
    jobLogger(options.logger, job).warn("webhook of a finished job had not been queued; queued now");
  }
  return finished.length;
}

/**
 * Re-indexes each job when a worker takes it (in case the API stopped between adding and indexing it),
 * and when a job ends: appends its final monitor to the event log, queues its webhook and writes its
 * audit entry. At start, queues the webhooks a previous worker may not have queued.
 */
export function followJobOutcomes(worker: Worker<ChangeJobData>, options: JobLifecycleOptions): void {
  const webhooks = createWebhooksQueue(options.connection, options.prefix);
  const changes = new Queue<ChangeJobData>(CHANGES_QUEUE, { connection: options.connection, prefix: options.prefix });
  worker.on("closed", () => void changes.close().catch(() => undefined));
  void catchUpWebhooks(changes, webhooks, options).catch((error: Error) => options.logger.warn({ err: error.message }, "webhook catch-up failed"));
  webhooks.on("error", (error) => redisOutageLog.error(options.logger, error, "webhooks queue error"));
  changes.on("error", (error) => redisOutageLog.error(options.logger, error, "changes queue error"));
  worker.on("closed", () => void webhooks.close().catch(() => undefined));

  worker.on("active", (job) => {
    void indexJob(options.connection, options.prefix, job.id!, job.data, options.retentionHours).catch((error: Error) =>
      jobLogger(options.logger, job).warn({ err: error.message }, "job not re-indexed"),
    );
  });

  const ended = async (job: Job<ChangeJobData>) => {
    const monitor = await withCallback(options.connection, options.prefix, await snapshotOf(job), job.data.request.callbackUrl);
    const url = job.data.request.callbackUrl;
    await Promise.all([
      appendJobEvent(options.connection, options, monitor),
      url ? enqueueWebhook(webhooks, monitor, url, { backoffMs: options.webhookBackoffMs, retentionHours: options.retentionHours }) : undefined,
      recordJobOutcome(options.connection, options.prefix, monitor, jobLogger(options.logger, job)),
    ]);
  };
  const onEnded = (job: Job<ChangeJobData>) =>
    void ended(job).catch((error: Error) => jobLogger(options.logger, job).warn({ err: error.message }, "final job event, webhook or audit entry not written"));
  worker.on("completed", onEnded);
  worker.on("failed", (job) => {
    // A failed attempt that will be retried is not an end; its record was saved (and logged) already.
    if (job?.finishedOn) onEnded(job);
  });
}

/**
 * The API's part when a job has just been added: list indexes and the first entry of its event log (one
 * MULTI and one script). A failure here does not undo the job: the worker indexes it again when it
 * starts it, and `/events` starts a missing log from the stored job.
 */
export async function recordNewJob(
  redis: Redis,
  options: { prefix: string; retentionHours: number },
  data: ChangeJobData,
  monitor: JobStatusMonitor,
  logger: Pick<FastifyBaseLogger, "warn">,
): Promise<JobStatusMonitor> {
  const shown = data.request.callbackUrl ? { ...monitor, callback: callbackInfo(data.request.callbackUrl, []) } : monitor;
  await Promise.all([indexJob(redis, options.prefix, monitor.id, data, options.retentionHours), appendJobEvent(redis, options, shown)]).catch((error: Error) =>
    logger.warn({ jobId: monitor.id, ...(data.request.ticket ? { ticketId: data.request.ticket.id } : {}), err: error.message }, "new job not indexed or its first event not logged"),
  );
  return shown;
}
