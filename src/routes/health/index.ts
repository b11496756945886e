import type { FastifyInstance } from "fastify";
import { Type } from "@sinclair/typebox";

const HealthStatus = Type.Object({ status: Type.String(), checks: Type.Optional(Type.Record(Type.String(), Type.String())) });
/** Readiness words for Redis: reached, or why not (the log says more). */
const REDIS_CHECK = { ok: "ok", unreachable: "unreachable", tls: "tls handshake failed", credentials: "credentials refused" } as const;

/** Probes need no credential (`security: []`) and are never rate limited, so they answer no 4xx. */
const PROBE = { tags: ["Health"], security: [] };

/**
 * Probes for orchestrators: liveness never touches dependencies; readiness checks Redis and, in azure
 * mode, that the service's credential can get a token (a worker without one cannot change anything).
 */
export default async function healthRoutes(fastify: FastifyInstance) {
  fastify.get(
    "/healthz",
    { schema: { ...PROBE, operationId: "getLiveness", summary: "Liveness", response: { 200: { ...HealthStatus, description: "The process is up." } } } },
    async () => ({ status: "ok" }),
  );
  fastify.get(
    "/readyz",
    {
      schema: {
        ...PROBE,
        operationId: "getReadiness",
        summary: "Readiness: Redis answers (and, in azure mode, a token can be had)",
        response: {
          200: { ...HealthStatus, description: "Ready: every check is ok." },
          503: { ...HealthStatus, description: "Not ready: `checks` says which dependency does not answer." },
        },
      },
    },
    async (_request, reply) => {
      const azureMode = fastify.config.CMK_MODE === "azure";
      const [redis, signIn] = await Promise.all([fastify.changes.ping(), azureMode ? fastify.azure.signInStatus(3000) : undefined]);
      const checks: Record<string, string> = { redis: REDIS_CHECK[redis] };
      if (signIn) {
        checks.azureToken = signIn.ok ? "ok" : "unavailable";
        // Which credential answered (or was tried) and why it failed: the first thing to look at on a 503.
        if (signIn.credential) checks.azureCredential = signIn.credential;
        if (signIn.error) checks.azureTokenError = signIn.error;
      }
      const ready = redis === "ok" && (signIn?.ok ?? true);
      return reply.code(ready ? 200 : 503).send({ status: ready ? "ready" : "unavailable", checks });
    },
  );
}
