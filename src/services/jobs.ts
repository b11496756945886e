import type { Redis } from "ioredis";
import type { FastifyBaseLogger } from "fastify";
import { NotAwaitingApprovalError, NotCancellableError, NotFoundError, SelfApprovalForbiddenError, TooManyEventStreamsError } from "../errors.js";
import { approvalDecisionRecord } from "../audit/audit-entry.js";
import { releaseAtMs } from "../domain/governance.js";
import { isTerminal, jobTarget, type ChangeJobData } from "../domain/job-record.js";
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

/** An approver's decision, as the approve and reject routes take it. */
export interface DecisionRequest {
  state: "Approved" | "Rejected";
  comment?: string | undefined;
}

/** Where a decision came from, for its audit entry. */
export interface DecisionOrigin {
  ip: string;
  userAgent: string | undefined;
  requestId: string;
  clientRequestId: string | undefined;
}

export interface JobsService {
  /**
   * Approves or rejects a job awaiting approval: 403 SelfApprovalForbidden for its creator (approve),
   * 409 NotAwaitingApproval when it is not Pending (decided, expired, ended, or never needed one).
   */
  decide(jobId: string, decision: DecisionRequest, principal: Principal, origin: DecisionOrigin): Promise<JobStatusMonitor>;
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
export function visibleTo(principal: Principal | null, monitor: JobStatusMonitor): boolean {
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

  /** Four eyes: the creator is the same principal (by id; by name for jobs from before ids were kept). */
  const createdBy = (data: ChangeJobData, principal: Principal) => (data.createdById ? data.createdById === principal.id : data.createdBy === principal.name);

  const notAwaiting = (jobId: string, monitor: JobStatusMonitor) =>
    new NotAwaitingApprovalError(
      jobId,
      !monitor.approval
        ? `Job ${jobId} does not wait for an approval (approvals were not required when it was accepted, or it is a dry run).`
        : isTerminal(monitor.status)
          ? `Job ${jobId} has ended (${monitor.status}${monitor.error ? `, ${monitor.error.code}` : ""}); there is nothing to decide.`
          : `Job ${jobId}'s approval is ${monitor.approval.state}${monitor.approval.decidedBy ? ` (by ${monitor.approval.decidedBy})` : ""}; it was decided already.`,
      { approvalState: monitor.approval?.state ?? "None", jobStatus: monitor.status },
    );

  const decide: JobsService["decide"] = (jobId, request, principal, origin) =>
    withRedis(async () => {
      const job = await store.readJob(jobId);
      if (!job || !visibleTo(principal, job.monitor)) throw new NotFoundError(`Job ${jobId}`);
      const { data, monitor: before } = job;
      if (request.state === "Approved" && data.approval && createdBy(data, principal)) throw new SelfApprovalForbiddenError(jobId);
      if (before.approval?.state !== "Pending" || isTerminal(before.status)) throw notAwaiting(jobId, before);
      const now = new Date();
      const notAfter = data.request.schedule?.notAfter;
      if (request.state === "Approved" && notAfter !== undefined && Date.parse(notAfter) <= now.getTime()) {
        // Its window closed: the worker is ending it ChangeWindowMissed; an approval would change nothing.
        throw new NotAwaitingApprovalError(jobId, `Job ${jobId}'s change window closed at ${notAfter}; it ends ChangeWindowMissed. Submit it again with a new window.`, {
          approvalState: "Pending",
          jobStatus: before.status,
        });
      }
      const decision = {
        state: request.state,
        decidedBy: principal.name,
        decidedById: principal.id,
        decidedDateTime: now.toISOString(),
        ...(request.comment ? { comment: request.comment } : {}),
      };
      const outcome = await store.decideApproval(jobId, decision);
      if (outcome.kind === "missing") throw new NotFoundError(`Job ${jobId}`);
      if (outcome.kind !== "decided") throw notAwaiting(jobId, (await readMonitor(jobId)) ?? before);
      const log = logger.child({ jobId, ...(before.ticket ? { ticketId: before.ticket.id } : {}) });
      log.info({ decidedBy: principal.name, decision: request.state }, "approval decided");
      if (request.state === "Approved") {
        // From its wait for a decision to its window's start, or to the front of the queue.
        await store.releaseApproved(jobId, releaseAtMs(data, now.getTime()) - now.getTime());
      } else {
        const rejected = { code: "Rejected", message: `Rejected by ${principal.name} at ${decision.decidedDateTime}${request.comment ? `: ${request.comment}` : ""}; nothing was written.`, target: jobTarget(data.request) };
        const canceled = await store.requestCancel(jobId, { by: principal.name, dateTime: decision.decidedDateTime }, rejected);
        // Ended here, not in a worker: its end (event, audit, webhook, lock) is ours to record. A worker
        // that holds the job (at its gate) ends it Rejected itself from the stored decision.
        if (canceled.kind === "canceled") await store.recordJobEnd(jobId, log).catch((error: Error) => log.warn({ err: error.message }, "rejected job's event, webhook or audit entry not written"));
      }
      const monitor = (await readMonitor(jobId)) ?? before;
      const pipeline = store.redis.pipeline();
      store.audit.queueAppend(pipeline, approvalDecisionRecord(monitor, decision, principal, origin, now));
      // Followers see the decision (a rejection's end was appended with the job's end).
      if (request.state === "Approved") store.events.queueAppend(pipeline, monitor);
      await pipeline.exec();
      return monitor;
    });

  return {
    decide,
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
