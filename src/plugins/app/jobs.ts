import fp from "fastify-plugin";
import type { FastifyInstance } from "fastify";
import { NotCancellableError, NotFoundError, TooManyEventStreamsError } from "../../errors.js";
import type { JobStatusMonitor } from "../../schemas/jobs.js";
import { maySubscription, type Principal } from "../../security/principal.js";
import { subscriptionOfArmId } from "../../security/subscription-scope.js";
import { readStatusMonitor, snapshotOf } from "../../job-store/job-status.js";
import { listJobs, type JobListFilters, type JobListPage } from "../../job-store/job-index.js";
import { requestCancel } from "../../job-store/cancel.js";
import { appendJobEvent, EventStreamSlots, JobEventHub, type EventSink } from "../../job-store/job-events.js";
import { createWebhooksQueue, enqueueWebhook, withCallback } from "../../worker/webhook-delivery.js";
import { recordJobOutcome } from "../../job-store/audit-trail.js";
import { redisOutageLog } from "../../job-store/outage-log.js";

export interface CancelAnswer {
  /** 200: the job is Canceled now; 202: a worker holds it and ends it Canceled before its next write. */
  statusCode: 200 | 202;
  monitor: JobStatusMonitor;
}

export interface JobsService {
  /** A page after the position `after` (opened from a continuation token by the route). */
  list(filters: JobListFilters, top: number, after: string | undefined, principal: Principal | null): Promise<JobListPage>;
  cancel(jobId: string, principal: Principal): Promise<CancelAnswer>;
  /** The job's monitor, or NotFound (also for a job outside the caller's subscriptions). */
  monitor(jobId: string, principal: Principal | null): Promise<JobStatusMonitor>;
  follow(jobId: string, lastEventId: string | undefined, sink: EventSink): Promise<() => void>;
  /** A place for one more open event stream of `principal`, or 429 TooManyEventStreams; returns its release. */
  reserveStream(principal: Principal): () => void;
  events: JobEventHub;
  streams: EventStreamSlots;
}

declare module "fastify" {
  interface FastifyInstance {
    jobs: JobsService;
  }
}

export interface JobsOptions {
  redisUrl: string;
  prefix: string;
  retentionHours: number;
  heartbeatMs: number;
  webhookBackoffMs: number;
  /** Event streams per credential, and in all, this process holds open at most. */
  maxStreamsPerCredential: number;
  maxStreams: number;
}

function visibleTo(principal: Principal | null, monitor: JobStatusMonitor): boolean {
  if (!principal || principal.subscriptions === undefined) return true;
  const subscription = subscriptionOfArmId(monitor.fhirServiceId);
  return subscription !== undefined && maySubscription(principal, subscription);
}

/**
 * The job API beyond submit and status: list (job-index.ts), cancel (cancel.ts), live events
 * (job-events.ts) and, for jobs the API itself ends (a canceled waiting job), the webhook. Redis calls
 * go through `fastify.withRedis`, so a cancel answered 503 never happens later.
 */
export default fp<JobsOptions>(
  async function jobs(fastify: FastifyInstance, options) {
    const connection = fastify.redis;
    const guarded = fastify.withRedis;
    const queue = fastify.changes.queue;
    const webhooks = createWebhooksQueue(connection, options.prefix);
    webhooks.on("error", (error) => redisOutageLog.error(fastify.log, error, "webhooks queue error"));

    const readMonitor = (jobId: string) => readStatusMonitor(queue, jobId);
    const logOptions = { prefix: options.prefix, retentionHours: options.retentionHours };

    const events = new JobEventHub({
      ...logOptions,
      redisUrl: options.redisUrl,
      redis: connection,
      heartbeatMs: options.heartbeatMs,
      readMonitor,
      logger: fastify.log,
    });

    const visibleMonitor = async (jobId: string, principal: Principal | null): Promise<JobStatusMonitor> => {
      const monitor = await readMonitor(jobId);
      if (!monitor || !visibleTo(principal, monitor)) throw new NotFoundError(`Job ${jobId}`);
      return monitor;
    };

    const streams = new EventStreamSlots({ perCredential: options.maxStreamsPerCredential, total: options.maxStreams });

    const service: JobsService = {
      events,
      streams,
      reserveStream: (principal) => {
        const slot = streams.take(`${principal.kind}:${principal.name}`);
        if ("full" in slot) throw new TooManyEventStreamsError(slot.full.scope, slot.full.limit);
        return slot.release;
      },
      monitor: (jobId, principal) => guarded(() => visibleMonitor(jobId, principal)),
      list: (filters, top, after, principal) =>
        guarded(() =>
          listJobs(
            {
              redis: connection,
              prefix: options.prefix,
              readMonitor,
              ...(principal?.subscriptions ? { subscriptions: principal.subscriptions, accept: (monitor: JobStatusMonitor) => visibleTo(principal, monitor) } : {}),
            },
            filters,
            top,
            after,
          ),
        ),
      cancel: (jobId, principal) =>
        guarded(async () => {
          const before = await visibleMonitor(jobId, principal);
          const record = { by: principal.name, dateTime: new Date().toISOString() };
          const outcome = await requestCancel(queue, connection, options.prefix, jobId, record, options.retentionHours);
          const log = fastify.log.child({ jobId, ...(before.ticket ? { ticketId: before.ticket.id } : {}) });
          switch (outcome.kind) {
            case "notFound":
              throw new NotFoundError(`Job ${jobId}`);
            case "committed": {
              const writing = outcome.step !== "Succeeded" && outcome.step !== "Failed" && outcome.step !== "Canceled";
              throw new NotCancellableError(
                jobId,
                writing
                  ? `Step ${outcome.step} has already sent its write to Azure: ARM is changing the FHIR service, and stopping now would leave it half-changed. Follow the job to its end.`
                  : `The job is ending (${outcome.step}); there is nothing left to cancel.`,
                { step: outcome.step },
              );
            }
            case "ended": {
              const monitor = await snapshotOf(outcome.job);
              if (monitor.status === "Canceled") return { statusCode: 200, monitor: await withCallback(connection, options.prefix, monitor, outcome.job.data.request.callbackUrl) };
              throw new NotCancellableError(jobId, `The job already ended ${monitor.status}.`, { jobStatus: monitor.status });
            }
            case "requested":
            case "alreadyRequested": {
              if (outcome.kind === "requested") log.info({ canceledBy: principal.name }, "cancel requested; the worker ends the job before its next write");
              return { statusCode: 202, monitor: (await readMonitor(jobId)) ?? before };
            }
            case "canceled": {
              log.info({ canceledBy: principal.name }, "job canceled before a worker started it");
              const url = outcome.job.data.request.callbackUrl;
              const monitor = await withCallback(connection, options.prefix, await snapshotOf(outcome.job), url);
              // The job ended here, not in a worker: its last event, webhook and audit entry are ours to write.
              await Promise.all([
                appendJobEvent(connection, logOptions, monitor),
                url ? enqueueWebhook(webhooks, monitor, url, { backoffMs: options.webhookBackoffMs, retentionHours: options.retentionHours }) : undefined,
                recordJobOutcome(connection, options.prefix, monitor, log),
              ]).catch((error: Error) => log.warn({ err: error.message }, "canceled job's event, webhook or audit entry not written"));
              return { statusCode: 200, monitor };
            }
          }
        }),
      follow: (jobId, lastEventId, sink) => guarded(() => events.follow(jobId, lastEventId, sink)),
    };

    fastify.decorate("jobs", service);
    // Open event streams would hold the server open: end them before it closes.
    fastify.addHook("preClose", async () => {
      await events.close();
    });
    fastify.addHook("onClose", async () => {
      await webhooks.close().catch(() => undefined);
    });
  },
  { name: "jobs", dependencies: ["redis", "changes"] },
);

