import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { NotFoundError } from "../../../errors.js";
import { problemResponses } from "../../../schemas/common.js";
import { JobIdParams, JobStatusMonitor } from "../../../schemas/jobs.js";
import { isTerminal } from "../../../domain/job-record.js";

const jobRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get(
    "/jobs/:jobId",
    {
      config: { role: "reader" },
      schema: {
        tags: ["Jobs"],
        summary: "Job status monitor",
        description: "The job's status, steps, percentComplete, result or typed error. `Retry-After` (seconds) while it is not terminal.",
        security: [{ apiKey: [] }, { bearer: [] }],
        params: JobIdParams,
        response: { 200: Type.Ref(JobStatusMonitor), ...problemResponses(400, 401, 403, 404, 503) },
      },
    },
    async (request, reply) => {
      const monitor = await fastify.changes.status(request.params.jobId);
      if (!monitor) throw new NotFoundError(`Job ${request.params.jobId}`);
      if (!isTerminal(monitor.status)) reply.header("retry-after", String(fastify.statusRetryAfterSeconds));
      return monitor;
    },
  );
};

export default jobRoutes;
