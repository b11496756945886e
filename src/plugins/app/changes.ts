import fp from "fastify-plugin";
import type { FastifyInstance } from "fastify";
import { ChangeInProgressError, IdempotencyKeyReusedError, RequestInProgressError } from "../../errors.js";
import type { ChangeRequest } from "../../schemas/change-requests.js";
import type { JobStatusMonitor } from "../../schemas/jobs.js";
import { createChangesQueue, enqueueChange, type ChangesQueue } from "../../job-store/queue.js";
import { fingerprint, IdempotencyStore, type StoredAnswer } from "../../job-store/idempotency.js";
import { toStatusMonitor } from "../../domain/job-record.js";
import { recordNewJob } from "../../worker/job-hooks.js";
import type { Principal } from "./authentication.js";
import { redisOutageLog } from "../../job-store/outage-log.js";

/** The answer to a submission: the first one again when an Idempotency-Key is replayed. */
export interface SubmitAnswer extends StoredAnswer {
  replayed: boolean;
}

export interface ChangesService {
  /** Enqueues a change; throws ChangeInProgress, IdempotencyKeyReused or QueueUnavailable. */
  submit(request: ChangeRequest, principal: Principal, idempotencyKey?: string): Promise<SubmitAnswer>;
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
  prefix: string;
  retentionHours: number;
}

/**
 * The API's side of the job queue: submit (idempotent, one unfinished job per FHIR service) and status.
 * Every Redis call goes through `fastify.withRedis`: trouble becomes 503 QueueUnavailable, never a 500.
 */
export default fp<ChangesOptions>(
  async function changes(fastify: FastifyInstance, options) {
    const connection = fastify.redis;
    const guarded = fastify.withRedis;
    const queue = createChangesQueue(connection, { prefix: options.prefix, retentionHours: options.retentionHours });
    queue.on("error", (error) => redisOutageLog.error(fastify.log, error, "queue error"));

    const idempotency = new IdempotencyStore(connection, options.prefix, Math.max(24, options.retentionHours) * 3600);

    const enqueue = async (request: ChangeRequest, principal: Principal): Promise<StoredAnswer & { fingerprint: "" }> => {
      const data = { request, createdBy: principal.name, createdDateTime: new Date().toISOString() };
      const result = await enqueueChange(queue, data);
      if (!result.accepted) throw new ChangeInProgressError(request.fhirServiceId, result.activeJobId);
      // The job was just added: its monitor is known without reading it back.
      const added: JobStatusMonitor = toStatusMonitor({ id: result.jobId, data, progress: undefined, state: "waiting", attemptsStarted: 0, finishedOn: undefined });
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
    });
  },
  { name: "changes", dependencies: ["redis"] },
);
