import fp from "fastify-plugin";
import { Redis } from "ioredis";
import type { FastifyInstance } from "fastify";

declare module "fastify" {
  interface FastifyInstance {
    /** The API's connection for its own small reads and writes (audit trail, rate limits); BullMQ's queue has its own. */
    redis: Redis;
  }
}

/** Resolves when `connection` is ready, or rejects after `timeoutMs`. */
export function whenReady(connection: Redis, timeoutMs: number): Promise<void> {
  if (connection.status === "ready") return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      connection.off("ready", onReady);
      reject(new Error(`redis not ready after ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    connection.once("ready", onReady);
  });
}

/**
 * Commands fail at once while Redis is away (no offline queue): a rate-limit lookup must never delay an
 * answer. Start waits briefly for the first connection, so the first requests are counted too.
 */
export default fp<{ url: string }>(
  async function redis(fastify: FastifyInstance, options) {
    const connection = new Redis(options.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: 1000,
      connectTimeout: 2000,
      retryStrategy: (times) => Math.min(times * 250, 2000),
    });
    connection.on("error", (error) => fastify.log.warn({ err: error.message }, "redis connection error"));
    fastify.decorate("redis", connection);
    fastify.addHook("onClose", async () => {
      connection.disconnect();
    });
    await whenReady(connection, 1000).catch(() => fastify.log.warn("redis not reachable at start; rate limits are skipped until it is"));
  },
  { name: "redis" },
);
