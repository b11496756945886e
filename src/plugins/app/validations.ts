import fp from "fastify-plugin";
import type { FastifyInstance } from "fastify";
import { createValidationsService, type ValidationsService } from "../../services/validations.js";

declare module "fastify" {
  interface FastifyInstance {
    validations: ValidationsService;
  }
}

/** Attaches the validations service (src/services/validations.ts). */
export default fp(
  async function validations(fastify: FastifyInstance) {
    fastify.decorate("validations", createValidationsService({ azure: fastify.azure, propagationWindowMs: fastify.config.CMK_ROLE_PROPAGATION_WINDOW_MS }));
  },
  { name: "validations" },
);
