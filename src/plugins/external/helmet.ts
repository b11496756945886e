import type { IncomingMessage, ServerResponse } from "node:http";
import fp from "fastify-plugin";
import helmetMiddleware, { type HelmetOptions } from "helmet";
import type { FastifyInstance } from "fastify";

/** HSTS for answers served over https: a year, subdomains included. */
export const HSTS = "max-age=31536000; includeSubDomains";

/** Helmet's configuration for API answers. */
const API_HELMET_OPTIONS = {
  contentSecurityPolicy: {
    useDefaults: false,
    directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], baseUri: ["'none'"], formAction: ["'none'"] },
  },
  hsts: false,
  crossOriginOpenerPolicy: false,
  referrerPolicy: { policy: "no-referrer" },
  crossOriginResourcePolicy: { policy: "same-origin" },
} satisfies HelmetOptions;

/**
 * The headers helmet puts on API answers, for answers written without Fastify (Node's own 400/431 in
 * app.ts): the same helmet with the same options, run once against a response that only collects headers.
 */
export function apiSecurityHeaders(): Record<string, string> {
  const headers: Record<string, string> = {};
  const collector = {
    setHeader: (name: string, value: unknown) => (headers[name.toLowerCase()] = String(value)),
    removeHeader: (name: string) => delete headers[name.toLowerCase()],
  };
  helmetMiddleware(API_HELMET_OPTIONS)({} as IncomingMessage, collector as unknown as ServerResponse, () => undefined);
  return headers;
}

/**
 * Security headers on every response. The API answers JSON only, so its CSP allows nothing; Swagger UI
 * under /docs replaces it with its own policy (same-origin scripts and styles, see swagger.ts).
 * HSTS and Cross-Origin-Opener-Policy only on answers that went out over https (TLS here, or
 * X-Forwarded-Proto from a trusted proxy, CMK_TRUST_PROXY_HOPS): browsers ignore both over plain http, and
 * Chromium logs a console error for the ignored COOP on every page (Swagger UI at http://<address>/docs).
 */
export default fp(
  async function helmetPlugin(fastify: FastifyInstance) {
    // Helmet's headers do not depend on the request: computed once here, not by helmet on every request
    // (which @fastify/helmet does, parsing the CSP directives each time).
    const headers = apiSecurityHeaders();
    fastify.addHook("onRequest", (request, reply, done) => {
      reply.headers(headers);
      if (request.protocol === "https") reply.header("strict-transport-security", HSTS).header("cross-origin-opener-policy", "same-origin");
      done();
    });
  },
  { name: "helmet" },
);
