import fp from "fastify-plugin";
import type { FastifyInstance } from "fastify";
import { createComplianceService, type ComplianceService } from "../../services/compliance.js";

declare module "fastify" {
  interface FastifyInstance {
    /** Compliance reports (`GET /v1/compliance`). */
    compliance: ComplianceService;
  }
}

export default fp(
  async function compliance(fastify: FastifyInstance) {
    fastify.decorate("compliance", createComplianceService({ store: fastify.jobStore, withRedis: fastify.withRedis }));
  },
  { name: "compliance", dependencies: ["redis"] },
);
