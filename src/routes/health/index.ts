import type { FastifyInstance } from "fastify";
import { Type } from "@sinclair/typebox";

const HealthStatus = Type.Object({ status: Type.String(), checks: Type.Optional(Type.Record(Type.String(), Type.String())) });

/** Probes for orchestrators: liveness never touches dependencies; readiness checks Redis. */
export default async function healthRoutes(fastify: FastifyInstance) {
  fastify.get(
    "/healthz",
    { schema: { tags: ["Health"], summary: "Liveness", response: { 200: HealthStatus } } },
    async () => ({ status: "ok" }),
  );
  fastify.get(
    "/readyz",
    { schema: { tags: ["Health"], summary: "Readiness: Redis answers", response: { 200: HealthStatus, 503: HealthStatus } } },
    async (_request, reply) => {
      const redis = await fastify.changes.ping();
      const body = { status: redis ? "ready" : "unavailable", checks: { redis: redis ? "ok" : "unreachable" } };
      return reply.code(redis ? 200 : 503).send(body);
    },
  );
}
