import type { Redis } from "ioredis";
import type { FastifyBaseLogger } from "fastify";
import { NotCancellableError, NotFoundError, TooManyEventStreamsError } from "../errors.js";
import type { JobStatusMonitor } from "../schemas/jobs.js";
import { maySubscription, type Principal } from "../security/principal.js";
import { subscriptionOfArmId } from "../security/subscription-scope.js";
import type { JobListFilters, JobListPage } from "../job-store/job-index.js";
import type { JobStore } from "../job-store/job-store.js";
import { EventStreamSlots } from "./event-stream-slots.js";
import { JobEventHub, type EventSink } from "./job-event-hub.js";

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
  /** Ends every open stream and the subscription (before the HTTP server closes). */
  close(): Promise<void>;
}

export interface JobsServiceOptions {
  store: JobStore;
  /** Runs Redis work with the API's deadline: trouble becomes 503 QueueUnavailable (a cancel answered 503 never happens later). */
  withRedis<T>(work: () => Promise<T>): Promise<T>;
  /** Opens the connection the event subscription runs on. */
  subscriber(): Redis;
  heartbeatMs: number;
  /** Event streams per credential, and in all, this process holds open at most. */
  maxStreamsPerCredential: number;
  maxStreams: number;
  logger: FastifyBaseLogger;
}

/** A job is visible to a caller limited to some subscriptions when they hold its FHIR service, or every subscription a fleet rotation may look in. */
function visibleTo(principal: Principal | null, monitor: JobStatusMonitor): boolean {
  if (!principal || principal.subscriptions === undefined) return true;
  if (!monitor.fhirServiceId) return monitor.subscriptions !== undefined && monitor.subscriptions.every((id) => maySubscription(principal, id));
  const subscription = subscriptionOfArmId(monitor.fhirServiceId);
  return subscription !== undefined && maySubscription(principal, subscription);
}

/** The job API beyond submit: status, list, cancel and live events. */
export function createJobsService(options: JobsServiceOptions): JobsService {
  const { store, withRedis, logger } = options;
  const readMonitor = (jobId: string) => store.readMonitor(jobId);
  const events = new JobEventHub({ events: store.events, subscriber: options.subscriber, heartbeatMs: options.heartbeatMs, readMonitor, logger });
  const streams = new EventStreamSlots({ perCredential: options.maxStreamsPerCredential, total: options.maxStreams });

  const visibleMonitor = async (jobId: string, principal: Principal | null): Promise<JobStatusMonitor> => {
    const monitor = await readMonitor(jobId);
    if (!monitor || !visibleTo(principal, monitor)) throw new NotFoundError(`Job ${jobId}`);
    return monitor;
  };

  return {
    events,
    streams,
    reserveStream: (principal) => {
      const slot = streams.take(`${principal.kind}:${principal.name}`);
      if ("full" in slot) throw new TooManyEventStreamsError(slot.full.scope, slot.full.limit);
      return slot.release;
    },
    monitor: (jobId, principal) => withRedis(() => visibleMonitor(jobId, principal)),
    list: (filters, top, after, principal) =>
      withRedis(() =>
        store.listJobs(filters, top, after, principal?.subscriptions ? { subscriptions: principal.subscriptions, accept: (monitor) => visibleTo(principal, monitor) } : {}),
      ),
    cancel: (jobId, principal) =>
      withRedis(async () => {
        const before = await visibleMonitor(jobId, principal);
        const record = { by: principal.name, dateTime: new Date().toISOString() };
        const outcome = await store.requestCancel(jobId, record);
        const log = logger.child({ jobId, ...(before.ticket ? { ticketId: before.ticket.id } : {}) });
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
            const monitor = (await readMonitor(jobId)) ?? before;
            if (monitor.status === "Canceled") return { statusCode: 200, monitor };
            throw new NotCancellableError(jobId, `The job already ended ${monitor.status}.`, { jobStatus: monitor.status });
          }
          case "requested":
          case "alreadyRequested": {
            if (outcome.kind === "requested") log.info({ canceledBy: principal.name }, "cancel requested; the worker ends the job before its next write");
            return { statusCode: 202, monitor: (await readMonitor(jobId)) ?? before };
          }
          case "canceled": {
            log.info({ canceledBy: principal.name }, "job canceled before a worker started it");
            // A fleet rotation canceled between its attempts: no worker will pass the cancel on to its children.
            if (before.operation === "RotateFleet") await store.fleets.cancelChildrenOf(jobId, record);
            // The job ended here, not in a worker: its end is ours to record (the function a worker calls).
            const monitor = await store.recordJobEnd(jobId, log).catch((error: Error) => {
              log.warn({ err: error.message }, "canceled job's event, webhook or audit entry not written");
              return readMonitor(jobId);
            });
            return { statusCode: 200, monitor: monitor ?? before };
          }
        }
      }),
    follow: (jobId, lastEventId, sink) => withRedis(() => events.follow(jobId, lastEventId, sink)),
    close: () => events.close(),
  };
}
