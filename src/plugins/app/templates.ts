import fp from "fastify-plugin";
import type { FastifyInstance } from "fastify";
import { createTemplatesService, type TemplatesService } from "../../services/templates.js";

declare module "fastify" {
  interface FastifyInstance {
    templates: TemplatesService;
  }
}

/** Attaches the templates service (src/services/templates.ts). */
export default fp(
  async function templates(fastify: FastifyInstance) {
    fastify.decorate("templates", createTemplatesService({ azure: fastify.azure, cloud: fastify.cloud }));
  },
  { name: "templates" },
);
