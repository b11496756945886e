import fp from "fastify-plugin";
import helmet from "@fastify/helmet";
import type { FastifyInstance } from "fastify";

/**
 * Security headers on every response. The API answers JSON only, so its CSP allows nothing; Swagger UI
 * under /docs replaces it with its own policy (same-origin scripts and styles, see swagger.ts).
 */
export default fp(
  async function helmetPlugin(fastify: FastifyInstance) {
    await fastify.register(helmet, {
      contentSecurityPolicy: {
        useDefaults: false,
        directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], baseUri: ["'none'"], formAction: ["'none'"] },
      },
      hsts: { maxAge: 31_536_000, includeSubDomains: true },
      referrerPolicy: { policy: "no-referrer" },
      crossOriginResourcePolicy: { policy: "same-origin" },
    });
  },
  { name: "helmet" },
);
