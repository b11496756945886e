import fp from "fastify-plugin";
import type { FastifyInstance } from "fastify";
import { Type } from "@sinclair/typebox";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { RATE_LIMIT_HEADERS, problemResponses, responseHeaders } from "../../schemas/common.js";
import { PROBLEM_EXAMPLES } from "../../schemas/examples.js";

declare module "fastify" {
  interface FastifyInstance {
    metrics: Registry;
  }
}

/**
 * `GET /metrics` in Prometheus text format (no credential, as the contract says; keep it off the public
 * ingress): HTTP requests and latency per route, the jobs BullMQ holds per state, and Node's own
 * process metrics. Redis trouble leaves the job gauges out of a scrape instead of failing it.
 */
export default fp(
  async function metrics(fastify: FastifyInstance) {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry, prefix: "cmk_" });
    const requests = new Counter({
      name: "cmk_http_requests_total",
      help: "HTTP requests answered, by method, route and status code.",
      labelNames: ["method", "route", "status"] as const,
      registers: [registry],
    });
    const latency = new Histogram({
      name: "cmk_http_request_duration_seconds",
      help: "Time to answer an HTTP request, by method and route.",
      labelNames: ["method", "route"] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    });
    const jobs = new Gauge({
      name: "cmk_jobs",
      help: "Change jobs BullMQ holds, by state.",
      labelNames: ["state"] as const,
      registers: [registry],
      async collect() {
        try {
          const counts = await fastify.withRedis(() => fastify.changes.queue.getJobCounts("waiting", "active", "delayed", "completed", "failed"));
          for (const [state, count] of Object.entries(counts)) this.set({ state }, count);
        } catch {
          this.reset();
        }
      },
    });
    void jobs;

    fastify.addHook("onResponse", async (request, reply) => {
      // The route pattern, not the URL: job ids and FHIR service names would make unbounded label sets.
      const route = request.routeOptions.url ?? "unmatched";
      requests.inc({ method: request.method, route, status: String(reply.statusCode) });
      latency.observe({ method: request.method, route }, reply.elapsedTime / 1000);
    });
    fastify.decorate("metrics", registry);
    const schema = {
      tags: ["Health"],
      operationId: "getMetrics",
      summary: "Prometheus metrics",
      // No credential, but rate limited per client address like any route outside the probes.
      security: [],
      response: {
        200: {
          description: "Prometheus text exposition format 0.0.4.",
          headers: responseHeaders(RATE_LIMIT_HEADERS),
          content: { "text/plain": { schema: Type.String({ description: "# HELP / # TYPE lines and samples, e.g. cmk_jobs{state=\"active\"} 1." }) } },
        },
        ...problemResponses(PROBLEM_EXAMPLES.tooManyRequests),
      },
    };
    fastify.get("/metrics", { schema }, async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()));
  },
  { name: "metrics", dependencies: ["redis", "changes"] },
);
