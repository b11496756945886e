import fp from "fastify-plugin";
import type { FastifyInstance } from "fastify";
import { createSelfCheckService, type SelfCheckService } from "../../services/self-check.js";

declare module "fastify" {
  interface FastifyInstance {
    /** The permission self-check (`GET /v1/self-check`). */
    selfCheck: SelfCheckService;
  }
}

export default fp(
  async function selfCheck(fastify: FastifyInstance) {
    fastify.decorate("selfCheck", createSelfCheckService(fastify.azure, fastify.config.fleetSubscriptions));
  },
  { name: "self-check" },
);
