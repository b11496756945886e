import type { FastifyInstance } from "fastify";
import changeRequests from "./change-requests/index.js";
import jobs from "./jobs/index.js";
import validations from "./validations/index.js";

/** Everything under /v1 needs a credential; each route names its lowest role in `config.role`. */
export default async function v1Routes(fastify: FastifyInstance) {
  fastify.addHook("onRequest", fastify.authenticate);
  await fastify.register(changeRequests);
  await fastify.register(jobs);
  await fastify.register(validations);
}
