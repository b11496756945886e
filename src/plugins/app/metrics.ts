import fp from "fastify-plugin";
import type { FastifyInstance } from "fastify";
import { Type } from "@sinclair/typebox";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { RATE_LIMIT_HEADERS, problemResponses, responseHeaders } from "../../schemas/common.js";
import { PROBLEM_EXAMPLES } from "../../schemas/examples.js";
import { problemCodeOf } from "./error-handler.js";
import { COMPLIANCE_RULES, SEVERITIES } from "../../schemas/compliance.js";
import type { ReportStats } from "../../domain/compliance/report.js";

declare module "fastify" {
  interface FastifyInstance {
    metrics: Registry;
  }
}

/** Refusals anyone can cause in bulk, by problem code: counted here, not written to the audit trail one by one. */
const REFUSAL_REASONS: Record<string, string> = {
  Unauthorized: "unauthenticated",
  TooManyRequests: "rate_limited",
  TooManyEventStreams: "event_streams",
};

/**
 * `GET /metrics` in Prometheus text format (no credential, as the contract says; keep it off the public
 * ingress): HTTP requests and latency per route, refusals without a valid credential or over a limit,
 * open event streams, the jobs BullMQ holds per state, the latest compliance report's counts, and Node's own process metrics. Redis trouble
 * leaves the job gauges out of a scrape instead of failing it.
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
    const refused = new Counter({
      name: "cmk_refused_requests_total",
      help: "Requests refused without a valid credential (unauthenticated), over the rate limit (rate_limited) or over the event stream caps (event_streams), by route.",
      labelNames: ["reason", "route"] as const,
      registers: [registry],
    });
    new Gauge({
      name: "cmk_event_streams",
      help: "Job event streams (GET /v1/jobs/{jobId}/events) this process holds open.",
      registers: [registry],
      collect() {
        this.set(fastify.jobs.streams.open);
      },
    });
    const jobs = new Gauge({
      name: "cmk_jobs",
      help: "Change jobs BullMQ holds, by state.",
      labelNames: ["state"] as const,
      registers: [registry],
      async collect() {
        try {
          const counts = await fastify.withRedis(() => fastify.jobStore.changes.getJobCounts("waiting", "active", "delayed", "completed", "failed"));
          for (const [state, count] of Object.entries(counts)) this.set({ state }, count);
        } catch {
          this.reset();
        }
      },
    });
    void jobs;
    // The latest compliance report's counts (one small GET per scrape, shared by the four gauges of a scrape).
    let statsRead: Promise<ReportStats | undefined> | undefined;
    const stats = () => {
      statsRead ??= fastify.withRedis(() => fastify.jobStore.compliance.stats()).finally(() => setImmediate(() => (statsRead = undefined)));
      return statsRead.catch(() => undefined);
    };
    new Gauge({
      name: "cmk_compliance_services",
      help: "FHIR services in the latest compliance report, by encryption (CustomerManaged, MicrosoftManaged).",
      labelNames: ["encryption"] as const,
      registers: [registry],
      async collect() {
        this.reset();
        const latest = await stats();
        if (latest) for (const [encryption, count] of Object.entries(latest.services)) this.set({ encryption }, count);
      },
    });
    new Gauge({
      name: "cmk_compliance_findings",
      help: "Findings in the latest compliance report, by rule and severity.",
      labelNames: ["rule", "severity"] as const,
      registers: [registry],
      async collect() {
        this.reset();
        const latest = await stats();
        if (!latest) return;
        // Every rule and severity, zeros included: alerts on a series that disappears are unreliable.
        for (const rule of COMPLIANCE_RULES) for (const severity of SEVERITIES) this.set({ rule, severity }, latest.findings[`${rule}/${severity}`] ?? 0);
      },
    });
    new Gauge({
      name: "cmk_compliance_scan_duration_seconds",
      help: "How long the scan of the latest compliance report took (its last attempt).",
      registers: [registry],
      async collect() {
        this.reset();
        const latest = await stats();
        if (latest) this.set(latest.durationMs / 1000);
      },
    });
    new Gauge({
      name: "cmk_compliance_last_success_timestamp_seconds",
      help: "When the latest compliance report's scan finished (Unix seconds): alert when it is older than the schedule.",
      registers: [registry],
      async collect() {
        this.reset();
        const latest = await stats();
        if (latest) this.set(Date.parse(latest.scannedDateTime) / 1000);
      },
    });

    fastify.addHook("onResponse", async (request, reply) => {
      // The route pattern, not the URL: job ids and FHIR service names would make unbounded label sets.
      const route = request.routeOptions.url ?? "unmatched";
      requests.inc({ method: request.method, route, status: String(reply.statusCode) });
      const reason = REFUSAL_REASONS[problemCodeOf(request) ?? ""];
      if (reason) refused.inc({ reason, route });
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
  { name: "metrics", dependencies: ["redis", "jobs"] },
);
