import fp from "fastify-plugin";
import rateLimit from "@fastify/rate-limit";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { TooManyRequestsError } from "../../errors.js";

declare module "fastify" {
  interface FastifyContextConfig {
    /** The route reads Azure on every call: it also counts against CMK_AZURE_READ_RATE_LIMIT_PER_MINUTE. */
    readsAzure?: boolean;
  }
}

export interface RateLimitOptions {
  perMinute: number;
}

type IncrCallback = (error: Error | null, result: { current: number; ttl: number }) => void;

/** Probes must never be throttled: a 429 would make an orchestrator restart a healthy process. */
const UNLIMITED_ROUTES = new Set(["/healthz", "/readyz"]);

/**
 * Requests per minute per credential on /v1 routes (the bucket is the principal, so a caller's limit
 * holds across addresses), per client address for everything else and for requests whose credential
 * is missing or bad (so guessing keys is throttled too). Runs before authentication's role check.
 *
 * The counters are the job store's (job-store/rate-counters.ts): counted in the process, shared with every
 * API process of the deployment through Redis every quarter second, so no request waits for Redis here.
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
    const counters = fastify.jobStore.rateCounters;
    // @fastify/rate-limit's store interface, over the shared counters (one instance serves every limit).
    class SharedCounterStore {
      incr(key: string, callback: IncrCallback, timeWindow: number): void {
        callback(null, counters.hit(key, timeWindow));
      }
      child(): SharedCounterStore {
        return this;
      }
    }
    await fastify.register(rateLimit, {
      global: false,
      max: options.perMinute,
      timeWindow: 60_000,
      store: SharedCounterStore,
      skipOnError: true,
      keyGenerator: bucketOf,
      allowList: (request) => UNLIMITED_ROUTES.has(request.routeOptions.url ?? ""),
      errorResponseBuilder: (_request, context) => new TooManyRequestsError(context.ttl / 1000),
    });
    // A root onRequest hook runs before the /v1 authentication hook, so refused credentials count too.
    fastify.addHook("onRequest", fastify.rateLimit());
    // Routes that read Azure spend the service's own ARM and Key Vault budget, shared by every caller:
    // each credential gets a smaller share of them, counted in a bucket of its own.
    const azureReads = fastify.createRateLimit({
      max: fastify.config.CMK_AZURE_READ_RATE_LIMIT_PER_MINUTE,
      timeWindow: 60_000,
      keyGenerator: async (request: FastifyRequest) => `azure-reads:${await bucketOf(request)}`,
    });
    fastify.addHook("onRequest", async (request) => {
      if (!request.routeOptions.config.readsAzure) return;
      const limit = await azureReads(request);
      if (!limit.isAllowed && limit.isExceeded) {
        throw new TooManyRequestsError(limit.ttl / 1000, `This credential sent more than ${limit.max} requests this minute to routes that read Azure (other routes still answer)`);
      }
    });
  },
  { name: "rate-limit", dependencies: ["authentication", "redis"] },
);
