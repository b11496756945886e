import type { Job, Worker } from "bullmq";
import type { FastifyBaseLogger } from "fastify";
import { jobTarget, toStatusMonitor, type ChangeJobData, type JobProgress } from "../domain/job-record.js";
import { withCallback } from "../domain/webhooks.js";
import type { JobStatusMonitor } from "../schemas/jobs.js";
import type { JobStore } from "../job-store/job-store.js";
import type { JobHooks } from "./job-steps.js";
import { JobError } from "../errors.js";

function windowMissed(notAfter: string, fhirServiceId: string): JobError {
  return new JobError({ code: "ChangeWindowMissed", message: `The change window closed at ${notAfter} before the change could begin writing; nothing was written.`, target: fhirServiceId });
}

/**
 * What the change worker does around each job beyond running its steps: the cancel checks, the event
 * log (a monitor per saved record), the job's end (the store's `recordJobEnd`: final event, webhook,
 * audit entry), and log lines that carry the job id and ticket id.
 */

/** A child logger whose every line names the job (and its ticket). */
export function jobLogger(logger: FastifyBaseLogger, job: Job<ChangeJobData> | undefined): FastifyBaseLogger {
  if (!job) return logger;
  const ticketId = job.data?.request?.ticket?.id;
  return logger.child({ jobId: job.id, ...(ticketId ? { ticketId } : {}), operation: job.name, fhirServiceId: job.data?.request?.fhirServiceId });
}

/** The hooks the step runner calls for `job`: cancel control and the event log. */
export function jobHooks(job: Job<ChangeJobData>, store: JobStore, logger: FastifyBaseLogger): JobHooks {
  const control = store.control(job.id!);
  const log = jobLogger(logger, job);
  let stalled = job.stalledCounter > 0;
  const notAfter = job.data.request.schedule?.notAfter === undefined ? undefined : Date.parse(job.data.request.schedule.notAfter);
  return {
    throwIfCanceled: () => control.throwIfCanceled(),
    claim: async (what) => {
      // The window bounds when the change may begin writing; once begun, it finishes.
      const writing = what !== "Succeeded" && what !== "Failed";
      if (writing && notAfter !== undefined && !job.data.request.dryRun && Date.now() >= notAfter && !(await control.hasClaimed())) {
        throw windowMissed(job.data.request.schedule!.notAfter!, jobTarget(job.data.request));
      }
      await control.claim(what);
    },
    saved: async (progress: JobProgress) => {
      // Progress since a takeover: the count of takeovers starts again (job-store's clearStalls).
      if (stalled) {
        stalled = false;
        await store.clearStalls(job.id!).catch((error: Error) => log.warn({ err: error.message }, "stall count not cleared"));
      }
      // The event log is for followers; the job record was saved already, so a failure here stops nothing.
      await store.events.append(runningMonitor(job, progress)).catch((error: Error) => log.warn({ err: error.message }, "job event not appended"));
    },
  };
}

function runningMonitor(job: Job<ChangeJobData>, progress: JobProgress): JobStatusMonitor {
  const monitor = toStatusMonitor({ id: job.id!, data: job.data, progress, state: "active", attemptsStarted: job.attemptsStarted ?? 0, finishedOn: undefined });
  return withCallback(monitor, job.data.request.callbackUrl, []);
}

/** How many recently finished jobs a starting worker looks at for a webhook that was never queued. */
const WEBHOOK_CATCH_UP_JOBS = 500;

/**
 * Queues the webhook of every job that ended in the last 24 hours with a `callbackUrl`, for the case of
 * a worker that died after its job ended but before it queued the webhook. Webhook jobs are keyed by the
 * change job's id, so a webhook that was queued (or delivered) already is not queued again. Returns how
 * many jobs it looked at.
 */
export async function catchUpWebhooks(store: JobStore, logger: FastifyBaseLogger): Promise<number> {
  const since = Date.now() - 24 * 3600_000;
  const finished = await store.changes.getJobs(["completed", "failed"], 0, WEBHOOK_CATCH_UP_JOBS - 1, false);
  for (const job of finished) {
    const url = job.data?.request.callbackUrl;
    if (!url || !job.finishedOn || job.finishedOn < since || (await store.webhooks.getJob(job.id!))) continue;
    const monitor = await store.readMonitor(job.id!);
    if (!monitor) continue;
    await store.enqueueWebhook(monitor, url);
    jobLogger(logger, job).warn("webhook of a finished job had not been queued; queued now");
  }
  return finished.length;
}

/**
 * Indexes each job again when a worker takes it (in case the API stopped between adding and indexing
 * it), and records each job's end. At start, queues the webhooks a previous worker may not have queued.
 */
export function followJobOutcomes(worker: Worker<ChangeJobData>, store: JobStore, logger: FastifyBaseLogger): void {
  void catchUpWebhooks(store, logger).catch((error: Error) => logger.warn({ err: error.message }, "webhook catch-up failed"));

  worker.on("active", (job) => {
    void store.indexJob(job.id!, job.data).catch((error: Error) => jobLogger(logger, job).warn({ err: error.message }, "job not re-indexed"));
  });

  const ended = async (job: Job<ChangeJobData>) => {
    await store.recordJobEnd(job.id!, jobLogger(logger, job));
  };
  const onEnded = (job: Job<ChangeJobData>) =>
    void ended(job).catch((error: Error) => jobLogger(logger, job).warn({ err: error.message }, "final job event, webhook or audit entry not written"));
  worker.on("completed", onEnded);
  worker.on("failed", (job) => {
    // A failed attempt that will be retried is not an end; its record was saved (and logged) already.
    if (job?.finishedOn) onEnded(job);
  });
}
