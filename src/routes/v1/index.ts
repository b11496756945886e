import type { FastifyInstance, FastifyRequest } from "fastify";
import { ValidationFailedError } from "../../errors.js";
import { keyUrlFormErrors } from "../../domain/key-url.js";
import changeRequests from "./change-requests/index.js";
import jobs from "./jobs/index.js";
import validations from "./validations/index.js";
import audit from "./audit/index.js";
import templates from "./templates/index.js";
import fhirServices from "./fhir-services/index.js";
import events from "./events/index.js";
import keyRotations from "./key-rotations/index.js";
import compliance from "./compliance/index.js";
import selfCheck from "./self-check/index.js";

/** Everything under /v1 needs a credential; each route names its lowest role in `config.role`. */
export default async function v1Routes(fastify: FastifyInstance) {
  fastify.addHook("onRequest", fastify.authenticate);
  // After validation: subscription allow-lists and callback targets need the parsed request.
  fastify.addHook("preHandler", fastify.enforceRequestPolicy);
  // Key URLs are taken only as their canonical spelling, so what is sent to ARM is exactly what was checked.
  fastify.addHook("preHandler", async (request: FastifyRequest) => {
    const malformed = keyUrlFormErrors(request.body, fastify.cloud.keyVaultSuffixes);
    if (malformed.length > 0) throw new ValidationFailedError(malformed);
  });
  await fastify.register(changeRequests);
  await fastify.register(jobs);
  await fastify.register(validations);
  await fastify.register(audit);
  await fastify.register(templates);
  await fastify.register(fhirServices);
  await fastify.register(events);
  await fastify.register(keyRotations);
  await fastify.register(compliance);
  await fastify.register(selfCheck);
}
