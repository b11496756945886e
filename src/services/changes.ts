import { randomUUID } from "node:crypto";
import { ChangeInProgressError, IdempotencyKeyReusedError, RequestInProgressError } from "../errors.js";
import { changeRequestRecord } from "../audit/audit-entry.js";
import type { ChangeRequest } from "../schemas/change-requests.js";
import type { JobStatusMonitor } from "../schemas/jobs.js";
import type { Principal } from "../security/principal.js";
import { fingerprint, type IdempotencyClaim } from "../job-store/idempotency.js";
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
 * one round trip (BullMQ's script; with an Idempotency-Key, the key's claim and BullMQ's add in one script
 * of the store's), its index entries and audit entry one more.
 */
export function createChangesService({ store, withRedis }: ChangesServiceOptions): ChangesService {
  /** Adds the job, behind `claim` when the request has an Idempotency-Key: the earlier record when another request holds it. */
  const add = async (
    request: ChangeRequest,
    principal: Principal,
    origin: RequestOrigin | undefined,
    jobId?: string,
    claim?: IdempotencyClaim,
  ): Promise<SubmitAnswer | { earlierRecord: string }> => {
    const data = { request, createdBy: principal.name, createdDateTime: new Date().toISOString() };
    const added = await store.addChange(data, {
      ...(jobId ? { jobId } : {}),
      ...(claim ? { idempotency: claim } : {}),
      ...(origin
        ? {
            audit: (monitor: JobStatusMonitor) =>
              changeRequestRecord({ principal, ...origin, statusCode: 202, body: request, monitor, problemCode: undefined, replayed: false, now: new Date() }),
          }
        : {}),
    });
    if ("earlierRecord" in added) return { earlierRecord: added.earlierRecord };
    if (!added.accepted) throw new ChangeInProgressError(request.fhirServiceId, added.activeJobId);
    return answer(added.monitor, false, added.audited);
  };
  const added = (outcome: SubmitAnswer | { earlierRecord: string }): SubmitAnswer => {
    if ("earlierRecord" in outcome) throw new Error("the job was added without an Idempotency-Key claim, yet a claim was reported");
    return outcome;
  };

  return {
    submit: (request, principal, idempotencyKey, origin) =>
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
      }),
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
