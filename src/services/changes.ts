import { randomUUID } from "node:crypto";
import { ChangeInProgressError, IdempotencyKeyReusedError, RequestInProgressError } from "../errors.js";
import { changeRequestRecord } from "../audit/audit-entry.js";
import type { ChangeRequest } from "../schemas/change-requests.js";
import type { KeyRotationRequest } from "../schemas/key-rotations.js";
import type { JobRequest } from "../domain/job-record.js";
import type { JobStatusMonitor } from "../schemas/jobs.js";
import type { Principal } from "../security/principal.js";
import { fingerprint } from "../job-store/idempotency.js";
import type { JobStore } from "../job-store/job-store.js";
import { redisOutageLog, type RedisProblem } from "../job-store/outage-log.js";

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
  /** Enqueues a change; throws ChangeInProgress, IdempotencyKeyReused, RequestInProgress or QueueUnavailable. */
  submit(request: ChangeRequest, principal: Principal, idempotencyKey?: string, origin?: RequestOrigin): Promise<SubmitAnswer>;
  /**
   * Enqueues a fleet rotation (POST /v1/key-rotations): the same answers as `submit`, one unfinished
   * rotation per key (ChangeInProgress). It may look in the body's subscriptions, else the caller's
   * allow-list, fixed now (the worker discovers later, on its own authority).
   */
  submitRotation(request: KeyRotationRequest, principal: Principal, idempotencyKey?: string, origin?: RequestOrigin): Promise<SubmitAnswer>;
  /** "ok" when Redis answers within the deadline; otherwise why it does not. */
  ping(): Promise<"ok" | RedisProblem>;
}

export interface ChangesServiceOptions {
  store: JobStore;
  /** Runs Redis work with the API's deadline: trouble becomes 503 QueueUnavailable. */
  withRedis<T>(work: () => Promise<T>): Promise<T>;
}

function answer(monitor: JobStatusMonitor, replayed: boolean, audited: boolean): SubmitAnswer {
  return { statusCode: 202, headers: { "operation-location": `/v1/jobs/${monitor.id}` }, body: monitor, replayed, audited };
}

/**
 * Submitting a change: one unfinished job per FHIR service, idempotent with an Idempotency-Key. The add is
 * one round trip (BullMQ's script), its index entries and audit entry one more; with an Idempotency-Key,
 * the key's record one before them.
 */
export function createChangesService({ store, withRedis }: ChangesServiceOptions): ChangesService {
  const add = async (request: JobRequest, principal: Principal, origin: RequestOrigin | undefined, jobId?: string): Promise<SubmitAnswer> => {
    const scope = request.operation === "RotateFleet" ? (request.subscriptions ?? principal.subscriptions)?.map((id) => id.toLowerCase()) : undefined;
    const data = { request, createdBy: principal.name, createdDateTime: new Date().toISOString(), ...(scope ? { scope } : {}) };
    const added = await store.addChange(data, {
      ...(jobId ? { jobId } : {}),
      ...(origin
        ? {
            audit: (monitor: JobStatusMonitor) =>
              changeRequestRecord({ principal, ...origin, statusCode: 202, body: request, monitor, problemCode: undefined, replayed: false, now: new Date() }),
          }
        : {}),
    });
    if (!added.accepted) throw new ChangeInProgressError(request.fhirServiceId ?? (request.operation === "RotateFleet" ? request.keyUrl : ""), added.activeJobId);
    return answer(added.monitor, false, added.audited);
  };

  const submit = (request: JobRequest, principal: Principal, idempotencyKey?: string, origin?: RequestOrigin) =>
      withRedis(async () => {
        if (idempotencyKey === undefined) return add(request, principal, origin);
        const jobId = randomUUID();
        const reservation = await store.idempotency.reserve(principal.name, idempotencyKey, fingerprint(request), jobId);
        if (reservation.kind === "mismatch") throw new IdempotencyKeyReusedError();
        if (reservation.kind === "inProgress") throw new RequestInProgressError();
        if (reservation.kind === "replay") return answer(reservation.monitor, true, false);
        try {
          return await add(request, principal, origin, jobId);
        } catch (error) {
          await store.idempotency.release(principal.name, idempotencyKey).catch(() => undefined);
          throw error;
        }
      });

  return {
    submit,
    submitRotation: (request, principal, idempotencyKey, origin) => submit({ ...request, operation: "RotateFleet" }, principal, idempotencyKey, origin),
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
