import fp from "fastify-plugin";
import helmet from "@fastify/helmet";
import type { FastifyInstance } from "fastify";

/** HSTS for answers served over https: a year, subdomains included. */
export const HSTS = "max-age=31536000; includeSubDomains";

/**
 * Security headers on every response. The API answers JSON only, so its CSP allows nothing; Swagger UI
 * under /docs replaces it with its own policy (same-origin scripts and styles, see swagger.ts).
 * HSTS and Cross-Origin-Opener-Policy only on answers that went out over https (TLS here, or
 * X-Forwarded-Proto from a trusted proxy, CMK_TRUST_PROXY_HOPS): browsers ignore both over plain http, and
 * Chromium logs a console error for the ignored COOP on every page (Swagger UI at http://<address>/docs).
 */
export default fp(
  async function helmetPlugin(fastify: FastifyInstance) {
    await fastify.register(helmet, {
      contentSecurityPolicy: {
        useDefaults: false,
        directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], baseUri: ["'none'"], formAction: ["'none'"] },
      },
      hsts: false,
      crossOriginOpenerPolicy: false,
      referrerPolicy: { policy: "no-referrer" },
      crossOriginResourcePolicy: { policy: "same-origin" },
    });
    fastify.addHook("onRequest", async (request, reply) => {
      if (request.protocol === "https") reply.header("strict-transport-security", HSTS).header("cross-origin-opener-policy", "same-origin");
    });
  },
  { name: "helmet" },
);
