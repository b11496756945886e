import fp from "fastify-plugin";
import type { FastifyInstance } from "fastify";
import { createChangesService, type ChangesService } from "../../services/changes.js";
import { approvalPolicyOf } from "../../config.js";

declare module "fastify" {
  interface FastifyInstance {
    changes: ChangesService;
  }
}

/** Attaches the changes service (src/services/changes.ts) on the API's job store. */
export default fp(
  async function changes(fastify: FastifyInstance) {
    fastify.decorate(
      "changes",
      createChangesService({
        store: fastify.jobStore,
        withRedis: fastify.withRedis,
        approvals: approvalPolicyOf(fastify.config),
        logger: fastify.log,
      }),
    );
  },
  { name: "changes", dependencies: ["redis"] },
);
