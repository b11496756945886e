import fp from "fastify-plugin";
import { Redis } from "ioredis";
import type { FastifyInstance } from "fastify";
import { ApiError, ChangeInProgressError, IdempotencyKeyReusedError, QueueUnavailableError, RequestInProgressError } from "../../errors.js";
import type { ChangeRequest } from "../../schemas/change-requests.js";
import type { JobStatusMonitor } from "../../schemas/jobs.js";
import { createChangesQueue, enqueueChange, type ChangesQueue } from "../../jobs/queue.js";
import { fingerprint, IdempotencyStore, type StoredAnswer } from "../../jobs/idempotency.js";
import { readStatusMonitor } from "../../jobs/job-store.js";
import { toStatusMonitor } from "../../domain/job-record.js";
import { recordNewJob } from "../../jobs/job-lifecycle.js";
import type { Principal } from "./authentication.js";

/** The answer to a submission: the first one again when an Idempotency-Key is replayed. */
export interface SubmitAnswer extends StoredAnswer {
  replayed: boolean;
}

export interface ChangesService {
  /** Enqueues a change; throws ChangeInProgress, IdempotencyKeyReused or QueueUnavailable. */
  submit(request: ChangeRequest, principal: Principal, idempotencyKey?: string): Promise<SubmitAnswer>;
  status(jobId: string): Promise<JobStatusMonitor | undefined>;
  /** True when Redis answers within the deadline. */
  ping(): Promise<boolean>;
  queue: ChangesQueue;
}

declare module "fastify" {
  interface FastifyInstance {
    changes: ChangesService;
  }
}

export interface ChangesOptions {
  redisUrl: string;
  prefix: string;
  retentionHours: number;
  /** How long an API call waits for Redis before answering 503. */
  redisTimeoutMs?: number;
}

/**
 * The API's side of the job queue. Redis trouble never surfaces as a 500 or a hang: the connection
 * does not queue commands while offline, every call has a deadline, and both become 503 QueueUnavailable.
 */
export default fp<ChangesOptions>(
  async function changes(fastify: FastifyInstance, options) {
    const timeoutMs = options.redisTimeoutMs ?? 2500;
    // An answered 503 must not turn into a job later: nothing is queued offline or resent on reconnect.
    const connection = new Redis(options.redisUrl, {
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 2000,
      retryStrategy: (times) => Math.min(times * 250, 2000),
    });
    connection.on("error", (error) => fastify.log.warn({ err: error.message }, "redis connection error"));
    const queue = createChangesQueue(connection, { prefix: options.prefix, retentionHours: options.retentionHours });
    queue.on("error", (error) => fastify.log.warn({ err: error.message }, "queue error"));

    // Commands are not queued while offline, so a call waits (within its deadline) for a connection in
    // progress. One shared promise per outage, not one listener per waiting request.
    let ready: Promise<void> | undefined;
    const whenReady = (): Promise<void> => {
      if (connection.status === "ready") return Promise.resolve();
      ready ??= new Promise<void>((resolve) =>
        connection.once("ready", () => {
          ready = undefined;
          resolve();
        }),
      );
      return ready;
    };

    const guarded = async <T>(work: () => Promise<T>): Promise<T> => {
      let timer: NodeJS.Timeout | undefined;
      let expired = false;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          expired = true;
          reject(new QueueUnavailableError());
        }, timeoutMs);
      });
      // Work that has not started when the caller got its 503 must never start later.
      const attempt = whenReady().then(() => {
        if (expired) throw new QueueUnavailableError();
        return work();
      });
      attempt.catch(() => undefined);
      try {
        return await Promise.race([attempt, deadline]);
      } catch (error) {
        if (error instanceof ApiError) throw error;
        fastify.log.warn({ err: (error as Error).message }, "redis call failed");
        throw new QueueUnavailableError();
      } finally {
        clearTimeout(timer);
      }
    };

    const idempotency = new IdempotencyStore(connection, options.prefix, Math.max(24, options.retentionHours) * 3600);

    const enqueue = async (request: ChangeRequest, principal: Principal): Promise<StoredAnswer & { fingerprint: "" }> => {
      const data = { request, createdBy: principal.name, createdDateTime: new Date().toISOString() };
      const result = await enqueueChange(queue, data);
      if (!result.accepted) throw new ChangeInProgressError(request.fhirServiceId, result.activeJobId);
      // The job was just added: its monitor is known without reading it back.
      const added: JobStatusMonitor = toStatusMonitor({ id: result.jobId, data, progress: undefined, state: "waiting", attemptsMade: 0, attemptsStarted: 0, finishedOn: undefined, failedReason: undefined });
      // List indexes and the job's event log (jobs/job-lifecycle.ts).
      const monitor = await recordNewJob(connection, options, data, added, fastify.log);
      return { fingerprint: "", statusCode: 202, headers: { "operation-location": `/v1/jobs/${result.jobId}` }, body: monitor };
    };

    const service: ChangesService = {
      queue,
      submit: (request, principal, idempotencyKey) =>
        guarded(async () => {
          if (idempotencyKey === undefined) return { ...(await enqueue(request, principal)), replayed: false };
          const bodyFingerprint = fingerprint(request);
          const reservation = await idempotency.reserve(principal.name, idempotencyKey, bodyFingerprint);
          if (reservation.kind === "mismatch") throw new IdempotencyKeyReusedError();
          if (reservation.kind === "inProgress") throw new RequestInProgressError();
          if (reservation.kind === "replay") return { ...reservation.answer, replayed: true };
          try {
            const answer = { ...(await enqueue(request, principal)), fingerprint: bodyFingerprint };
            await idempotency.complete(principal.name, idempotencyKey, answer);
            return { ...answer, replayed: false };
          } catch (error) {
            await idempotency.release(principal.name, idempotencyKey).catch(() => undefined);
            throw error;
          }
        }),
      status: (jobId) => guarded(() => readStatusMonitor(queue, jobId)),
      ping: async () => {
        try {
          await guarded(() => connection.ping());
          return true;
        } catch {
          return false;
        }
      },
    };
    fastify.decorate("changes", service);
    fastify.addHook("onClose", async () => {
      await queue.close().catch(() => undefined);
      connection.disconnect();
    });
  },
  { name: "changes" },
);
