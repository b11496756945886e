import { randomUUID } from "node:crypto";
import type { FastifyBaseLogger } from "fastify";
import { ChangeInProgressError, IdempotencyKeyReusedError, NotFoundError, NotRollbackableError, RequestInProgressError, ValidationFailedError } from "../errors.js";
import { changeRequestRecord } from "../audit/audit-entry.js";
import { jobTarget, type ChangeJobData, type JobRequest } from "../domain/job-record.js";
import { approvalFor, scheduleProblems, type ApprovalPolicy } from "../domain/governance.js";
import { fleetRollbackRefusal, rollbackPlan, type RollbackOptions } from "../domain/rollback.js";
import type { ChangeRequest } from "../schemas/change-requests.js";
import type { KeyRotationRequest } from "../schemas/key-rotations.js";
import type { ComplianceScanRequest } from "../schemas/compliance.js";
import type { JobStatusMonitor } from "../schemas/jobs.js";
import type { Principal } from "../security/principal.js";
import { fingerprint, type IdempotencyClaim } from "../job-store/idempotency.js";
import type { JobStore } from "../job-store/job-store.js";
import { redisOutageLog, type RedisProblem } from "../job-store/outage-log.js";
import { visibleTo } from "./jobs.js";

/** Where a change request came from, as its audit entry records it. */
export interface RequestOrigin {
  ip: string;
  userAgent: string | undefined;
  requestId: string;
  clientRequestId: string | undefined;
}

/** The answer to a submission: the first one again when an Idempotency-Key is replayed. */
export interface SubmitAnswer {
  statusCode: 202;
  headers: Record<string, string>;
  body: JobStatusMonitor;
  replayed: boolean;
  /** The accepted request's audit entry is written (with the job's index entries). */
  audited: boolean;
}

export interface ChangesService {
  /** Enqueues a change; throws ValidationFailed (schedule), ChangeInProgress, IdempotencyKeyReused, RequestInProgress or QueueUnavailable. */
  submit(request: ChangeRequest, principal: Principal, idempotencyKey?: string, origin?: RequestOrigin): Promise<SubmitAnswer>;
  /**
   * Enqueues the change that undoes Succeeded job `jobId` (a SetKey back to the key and identity it
   * replaced); throws NotFound, NotRollbackable, or what `submit` throws.
   */
  rollback(jobId: string, options: RollbackOptions, principal: Principal, origin?: RequestOrigin): Promise<SubmitAnswer>;
  /**
   * Enqueues a fleet rotation (POST /v1/key-rotations): the same answers as `submit`, one unfinished
   * rotation per key (ChangeInProgress). It may look in the body's subscriptions, else the caller's
   * allow-list, fixed now (the worker discovers later, on its own authority).
   */
  submitRotation(request: KeyRotationRequest, principal: Principal, idempotencyKey?: string, origin?: RequestOrigin): Promise<SubmitAnswer>;
  /** Enqueues a compliance scan (POST /v1/compliance-scans): one unfinished scan at a time (ChangeInProgress). */
  submitScan(request: ComplianceScanRequest, principal: Principal, origin?: RequestOrigin): Promise<SubmitAnswer>;
  /** "ok" when Redis answers within the deadline; otherwise why it does not. */
  ping(): Promise<"ok" | RedisProblem>;
}

export interface ChangesServiceOptions {
  store: JobStore;
  /** CMK_APPROVALS=required: every change that would write waits for an approver; for CMK_APPROVAL_TTL_HOURS. */
  approvals?: ApprovalPolicy;
  logger?: Pick<FastifyBaseLogger, "warn">;
  /** Runs Redis work with the API's deadline: trouble becomes 503 QueueUnavailable. */
  withRedis<T>(work: () => Promise<T>): Promise<T>;
}

function answer(monitor: JobStatusMonitor, replayed: boolean, audited: boolean): SubmitAnswer {
  return { statusCode: 202, headers: { "operation-location": `/v1/jobs/${monitor.id}` }, body: monitor, replayed, audited };
}

/**
 * Submitting a change: one unfinished job per FHIR service, idempotent with an Idempotency-Key. The add is
 * one round trip (BullMQ's script; with an Idempotency-Key, the key's claim and BullMQ's add in one script
 * of the store's), its index entries and audit entry one more.
 */
export function createChangesService({ store, withRedis, approvals, logger }: ChangesServiceOptions): ChangesService {
  /** Adds the job, behind `claim` when the request has an Idempotency-Key: the earlier record when another request holds it. */
  const add = async (
    request: JobRequest,
    principal: Principal,
    origin: RequestOrigin | undefined,
    jobId?: string,
    claim?: IdempotencyClaim,
    rollbackOf?: string,
  ): Promise<SubmitAnswer | { earlierRecord: string }> => {
    const now = new Date();
    // The window's problems are the caller's: 400 naming the field.
    const problems = scheduleProblems("schedule" in request ? request.schedule : undefined, now);
    if (problems.length > 0) throw new ValidationFailedError(problems);
    const approval = approvalFor(request, approvals, now);
    // A fleet rotation or scan may look in the body's subscriptions, else the caller's allow-list, fixed now.
    const scope = request.operation === "RotateFleet" || request.operation === "ComplianceScan" ? (request.subscriptions ?? principal.subscriptions)?.map((id) => id.toLowerCase()) : undefined;
    const data: ChangeJobData = {
      request,
      createdBy: principal.name,
      createdById: principal.id,
      createdDateTime: now.toISOString(),
      ...(approval ? { approval } : {}),
      ...(rollbackOf ? { rollbackOf } : {}),
      ...(scope ? { scope } : {}),
    };
    const added = await store.addChange(data, {
      ...(jobId ? { jobId } : {}),
      ...(claim ? { idempotency: claim } : {}),
      ...(origin
        ? {
            audit: (monitor: JobStatusMonitor) =>
              changeRequestRecord({ principal, ...origin, statusCode: 202, body: request, monitor, problemCode: undefined, replayed: false, now: new Date(), rollbackOf }),
          }
        : {}),
    });
    if ("earlierRecord" in added) return { earlierRecord: added.earlierRecord };
    if (!added.accepted) throw new ChangeInProgressError(jobTarget(request), added.activeJobId);
    if (approval && request.callbackUrl) {
      // Tell the ticketing system an approval is wanted (Standard Webhooks, type job.approval_requested).
      await store.enqueueWebhook(added.monitor, request.callbackUrl, "job.approval_requested").catch((error: Error) => {
        logger?.warn({ jobId: added.jobId, err: error.message }, "job.approval_requested webhook not queued");
      });
    }
    return answer(added.monitor, false, added.audited);
  };
  const added = (outcome: SubmitAnswer | { earlierRecord: string }): SubmitAnswer => {
    if ("earlierRecord" in outcome) throw new Error("the job was added without an Idempotency-Key claim, yet a claim was reported");
    return outcome;
  };

  const submit = (request: JobRequest, principal: Principal, idempotencyKey?: string, origin?: RequestOrigin): Promise<SubmitAnswer> =>
    withRedis(async () => {
      if (idempotencyKey === undefined) return added(await add(request, principal, origin));
      // The claim and the add are one script: a free key is claimed and the job added in one round trip.
      const jobId = randomUUID();
      const claim = store.idempotency.claim(principal.name, idempotencyKey, fingerprint(request), jobId);
      const outcome = await add(request, principal, origin, jobId, claim);
      if (!("earlierRecord" in outcome)) return outcome;
      const reservation = await store.idempotency.judge(claim, outcome.earlierRecord);
      if (reservation.kind === "mismatch") throw new IdempotencyKeyReusedError();
      if (reservation.kind === "inProgress") throw new RequestInProgressError();
      if (reservation.kind === "replay") return answer(reservation.monitor, true, false);
      // A record whose job never came, taken over: the key is this request's now.
      try {
        return added(await add(request, principal, origin, jobId));
      } catch (error) {
        await store.idempotency.release(principal.name, idempotencyKey).catch(() => undefined);
        throw error;
      }
    });

  return {
    submit,
    submitRotation: (request, principal, idempotencyKey, origin) => submit({ ...request, operation: "RotateFleet" }, principal, idempotencyKey, origin),
    submitScan: (request, principal, origin) => submit({ ...request, operation: "ComplianceScan" }, principal, undefined, origin),
    rollback: async (jobId, options, principal, origin) => {
      const job = await withRedis(() => store.readJob(jobId));
      if (!job || !visibleTo(principal, job.monitor)) throw new NotFoundError(`Job ${jobId}`);
      if (job.data.request.operation === "RotateFleet") {
        // A fleet is rolled back by a new parent: its worker adds one SetKey child per child that moved a service.
        const refusal = fleetRollbackRefusal(job.monitor);
        if (refusal) throw new NotRollbackableError(jobId, refusal.reason, { reasonCode: refusal.code });
        const { keyUrl, ticket } = job.data.request;
        const request: JobRequest = {
          operation: "RotateFleet",
          keyUrl,
          ...(job.data.scope ? { subscriptions: job.data.scope } : {}),
          ...((options.ticket ?? ticket) ? { ticket: options.ticket ?? ticket } : {}),
          ...(options.callbackUrl ? { callbackUrl: options.callbackUrl } : {}),
          ...(options.schedule ? { schedule: options.schedule } : {}),
        };
        return withRedis(async () => added(await add(request, principal, origin, undefined, undefined, jobId)));
      }
      const plan = rollbackPlan(job, options);
      if ("reason" in plan) throw new NotRollbackableError(jobId, plan.reason, { reasonCode: plan.code });
      return withRedis(async () => added(await add(plan.request, principal, origin, undefined, undefined, jobId)));
    },
    ping: async () => {
      try {
        await withRedis(() => store.redis.ping());
        return "ok";
      } catch {
        // What the process's connections last met: an unreachable server, a failed TLS handshake, refused credentials.
        return redisOutageLog.problem ?? "unreachable";
      }
    },
  };
}
