import fp from "fastify-plugin";
import rateLimit from "@fastify/rate-limit";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { TooManyRequestsError } from "../../errors.js";

export interface RateLimitOptions {
  perMinute: number;
  /** Redis key prefix (CMK_QUEUE_PREFIX): counters are shared by every API process of a deployment. */
  prefix: string;
}

/** Probes must never be throttled: a 429 would make an orchestrator restart a healthy process. */
const UNLIMITED_ROUTES = new Set(["/healthz", "/readyz"]);

/**
 * Requests per minute per credential on /v1 routes (the bucket is the principal, so a caller's limit
 * holds across addresses), per client address for everything else and for requests whose credential
 * is missing or bad (so guessing keys is throttled too). Runs before authentication's role check.
 */
export default fp<RateLimitOptions>(
  async function rateLimiting(fastify: FastifyInstance, options) {
    const bucketOf = async (request: FastifyRequest): Promise<string> => {
      if (request.routeOptions.config.role) {
        const principal = await fastify.identify(request).catch(() => undefined);
        if (principal) return `${principal.kind}:${principal.name}`;
      }
      return `ip:${request.ip}`;
    };
    await fastify.register(rateLimit, {
      global: false,
      max: options.perMinute,
      timeWindow: 60_000,
      redis: fastify.redis,
      nameSpace: `${options.prefix}:rate-limit:`,
      // An unreachable Redis is answered by the routes themselves (503); it must not also block probes and docs.
      skipOnError: true,
      keyGenerator: bucketOf,
      allowList: (request) => UNLIMITED_ROUTES.has(request.routeOptions.url ?? ""),
      errorResponseBuilder: (_request, context) => new TooManyRequestsError(context.ttl / 1000),
    });
    // A root onRequest hook runs before the /v1 authentication hook, so refused credentials count too.
    fastify.addHook("onRequest", fastify.rateLimit());
  },
  { name: "rate-limit", dependencies: ["authentication", "redis"] },
);
