import fp from "fastify-plugin";
import type { FastifyInstance } from "fastify";
import { createRedisConnection, type RedisTarget } from "../../job-store/redis-connection.js";
import { createJobsService, type JobsService } from "../../services/jobs.js";

declare module "fastify" {
  interface FastifyInstance {
    jobs: JobsService;
  }
}

export interface JobsOptions {
  redis: RedisTarget;
  heartbeatMs: number;
  maxStreamsPerCredential: number;
  maxStreams: number;
}

/** Attaches the jobs service (src/services/jobs.ts): status, list, cancel, live events. */
export default fp<JobsOptions>(
  async function jobs(fastify: FastifyInstance, options) {
    const service = createJobsService({
      store: fastify.jobStore,
      withRedis: fastify.withRedis,
      subscriber: () => createRedisConnection(options.redis, "subscriber", { log: { logger: fastify.log, what: "job events subscription error" } }),
      heartbeatMs: options.heartbeatMs,
      maxStreamsPerCredential: options.maxStreamsPerCredential,
      maxStreams: options.maxStreams,
      logger: fastify.log,
    });
    fastify.decorate("jobs", service);
    // Open event streams would hold the server open: end them before it closes.
    fastify.addHook("preClose", async () => {
      await service.close();
    });
  },
  { name: "jobs", dependencies: ["redis"] },
);
