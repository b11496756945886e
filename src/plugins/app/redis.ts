import fp from "fastify-plugin";
import { Redis } from "ioredis";
import type { FastifyInstance } from "fastify";

declare module "fastify" {
  interface FastifyInstance {
    /** The API's connection for its own small reads and writes (audit trail, rate limits); BullMQ's queue has its own. */
    redis: Redis;
  }
}

/**
 * Commands wait for a connection being made (the first requests after start) but never longer than
 * `commandTimeout`, and fail after one reconnect attempt: callers decide whether that is fatal.
 */
export default fp<{ url: string }>(
  async function redis(fastify: FastifyInstance, options) {
    const connection = new Redis(options.url, {
      maxRetriesPerRequest: 1,
      commandTimeout: 2000,
      connectTimeout: 2000,
      retryStrategy: (times) => Math.min(times * 250, 2000),
    });
    connection.on("error", (error) => fastify.log.warn({ err: error.message }, "redis connection error"));
    fastify.decorate("redis", connection);
    fastify.addHook("onClose", async () => {
      connection.disconnect();
    });
  },
  { name: "redis" },
);
