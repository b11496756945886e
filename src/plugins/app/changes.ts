import fp from "fastify-plugin";
import type { FastifyInstance } from "fastify";
import { createChangesService, type ChangesService } from "../../services/changes.js";

declare module "fastify" {
  interface FastifyInstance {
    changes: ChangesService;
  }
}

/** Attaches the changes service (src/services/changes.ts) on the API's job store. */
export default fp(
  async function changes(fastify: FastifyInstance) {
    const { CMK_APPROVALS, CMK_APPROVAL_TTL_HOURS } = fastify.config;
    fastify.decorate(
      "changes",
      createChangesService({
        store: fastify.jobStore,
        withRedis: fastify.withRedis,
        approvals: { required: CMK_APPROVALS === "required", ttlMs: Math.round(CMK_APPROVAL_TTL_HOURS * 3_600_000) },
        logger: fastify.log,
      }),
    );
  },
  { name: "changes", dependencies: ["redis"] },
);
