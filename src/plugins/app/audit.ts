import fp from "fastify-plugin";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { AuditLog } from "../../audit/audit-log.js";
import { changeRequestRecord } from "../../audit/audit-entry.js";
import { whenReady } from "./redis.js";
import type { JobStatusMonitor } from "../../schemas/jobs.js";

declare module "fastify" {
  interface FastifyInstance {
    audit: AuditLog;
  }
  interface FastifyContextConfig {
    /** Every answer of this route is a change accepted or refused: write it to the audit trail. */
    auditChanges?: boolean;
  }
}

/**
 * The API's side of the audit trail: after a change route has answered (so the caller never waits for
 * it), one entry for what was accepted or refused, by whom and from where. Jobs write their outcomes
 * from the worker when a job ends (jobs/job-lifecycle.ts `followJobOutcomes`).
 */
export default fp<{ prefix: string }>(
  async function audit(fastify: FastifyInstance, options) {
    const log = new AuditLog(fastify.redis, options.prefix, fastify.log);
    fastify.decorate("audit", log);
    // The answer's object before serialization: the accepted job's monitor, or the problem's code.
    const answers = new WeakMap<FastifyRequest, unknown>();

    fastify.addHook("preSerialization", async (request, _reply, payload) => {
      if (request.routeOptions.config.auditChanges) answers.set(request, payload);
      return payload;
    });

    fastify.addHook("onResponse", async (request, reply) => {
      if (!request.routeOptions.config.auditChanges) return;
      const answer = answers.get(request) as (Partial<JobStatusMonitor> & { code?: unknown }) | undefined;
      const accepted = reply.statusCode < 300 && typeof answer?.id === "string";
      const record = changeRequestRecord({
        principal: request.principal,
        ip: request.ip,
        userAgent: request.headers["user-agent"],
        requestId: request.id,
        statusCode: reply.statusCode,
        body: request.body,
        monitor: accepted ? (answer as JobStatusMonitor) : undefined,
        problemCode: typeof answer?.code === "string" ? answer.code : undefined,
        replayed: reply.getHeader("idempotent-replayed") === "true",
        now: new Date(),
      });
      if (!record) return;
      // The caller has its answer already: wait a little for a reconnecting Redis rather than lose the entry.
      await whenReady(fastify.redis, 2500)
        .then(() => log.append(record))
        .catch((error: Error) => request.log.error({ err: error.message, audit: record }, "audit entry not written"));
    });
  },
  { name: "audit", dependencies: ["redis"] },
);
