import fp from "fastify-plugin";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { AuditTrail } from "../../job-store/audit-trail.js";
import { changeRequestRecord } from "../../audit/audit-entry.js";
import { RefusalTally } from "../../audit/refusal-summary.js";
import { clientRequestIdOf } from "../../security/client-request-id.js";
import { whenReady } from "./redis.js";
import type { JobStatusMonitor } from "../../schemas/jobs.js";
import type { AuditRecord } from "../../schemas/audit.js";

declare module "fastify" {
  interface FastifyInstance {
    audit: AuditTrail;
  }
  interface FastifyRequest {
    /** The request's audit entry is written already (an accepted change's, with its job). */
    auditRecorded: boolean;
  }
  interface FastifyContextConfig {
    /** Every answer of this route is a change accepted or refused: write it to the audit trail. */
    auditChanges?: boolean;
    /** The operation a route's body stands for when it names none (POST /v1/key-rotations: RotateFleet). */
    auditOperation?: string;
  }
}

/** How often a process writes the RefusedSummary entries of what it refused without an entry each. */
const SUMMARY_PERIOD_MS = 60_000;

/**
 * The API's side of the audit trail: after a change route has answered (so the caller never waits for
 * it), one entry for what was accepted or refused, by whom and from where. Refusals anyone can send as
 * fast as they like (no valid credential: 401; over the rate limit: 429) get no entry each: they are
 * counted and written once a minute per principal as RefusedSummary entries (audit/refusal-summary.ts),
 * and counted in metrics. An accepted change's entry is written with its job, in the same round trip as
 * its index entries (services/changes.ts); jobs' outcomes where a job ends (the job store's
 * `recordJobEnd`).
 */
export default fp(
  async function audit(fastify: FastifyInstance) {
    const log = fastify.jobStore.audit;
    fastify.decorate("audit", log);
    fastify.decorateRequest("auditRecorded", false);
    // The answer's object before serialization: the accepted job's monitor, or the problem's code.
    const answers = new WeakMap<FastifyRequest, unknown>();
    const refusals = new RefusalTally(new Date());

    // The caller has its answer already: wait a little for a reconnecting Redis rather than lose entries.
    const write = (records: AuditRecord[], request?: FastifyRequest) =>
      whenReady(fastify.redis, 2500)
        .then(() => log.appendAll(records))
        .catch((error: Error) => (request?.log ?? fastify.log).error({ err: error.message, audit: records }, "audit entry not written"));
    const writeSummaries = () => write(refusals.drain(new Date()));
    const timer = setInterval(() => void writeSummaries(), SUMMARY_PERIOD_MS);
    timer.unref();
    fastify.addHook("preClose", async () => {
      clearInterval(timer);
      await writeSummaries();
    });

    fastify.addHook("preSerialization", async (request, _reply, payload) => {
      if (request.routeOptions.config.auditChanges) answers.set(request, payload);
      return payload;
    });

    fastify.addHook("onResponse", async (request, reply) => {
      if (!request.routeOptions.config.auditChanges || request.auditRecorded) return;
      const { statusCode } = reply;
      if (statusCode === 429 || !request.principal) {
        if (statusCode >= 400 && statusCode < 500) refusals.add(request.principal, statusCode === 429 ? "rateLimited" : "unauthenticated", request.ip);
        return;
      }
      const answer = answers.get(request) as (Partial<JobStatusMonitor> & { code?: unknown }) | undefined;
      const accepted = statusCode < 300 && typeof answer?.id === "string";
      const record = changeRequestRecord({
        principal: request.principal,
        ip: request.ip,
        userAgent: request.headers["user-agent"],
        requestId: request.id,
        clientRequestId: clientRequestIdOf(request.headers),
        statusCode,
        body: request.routeOptions.config.auditOperation && typeof request.body === "object" && request.body !== null ? { operation: request.routeOptions.config.auditOperation, ...request.body } : request.body,
        monitor: accepted ? (answer as JobStatusMonitor) : undefined,
        problemCode: typeof answer?.code === "string" ? answer.code : undefined,
        replayed: reply.getHeader("idempotent-replayed") === "true",
        now: new Date(),
      });
      if (record) await write([record], request);
    });
  },
  { name: "audit", dependencies: ["redis"] },
);
