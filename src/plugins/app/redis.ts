import fp from "fastify-plugin";
import type { Redis } from "ioredis";
import type { FastifyInstance } from "fastify";
import { ApiError, QueueUnavailableError } from "../../errors.js";
import { createJobStore, type JobStore } from "../../job-store/job-store.js";
import { createRedisConnection, type RedisTarget } from "../../job-store/redis-connection.js";

declare module "fastify" {
  interface FastifyInstance {
    /** The API's one Redis connection (the job store's; readiness and tests use it directly). */
    redis: Redis;
    /** Every Redis key the API reads or writes, through one object (src/job-store). */
    jobStore: JobStore;
    /**
     * Runs Redis work with a deadline: Redis trouble becomes 503 QueueUnavailable within the deadline,
     * never a 500 or a hang.
     */
    withRedis<T>(work: () => Promise<T>): Promise<T>;
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
 * The deadline guard. Commands are not queued while Redis is away, so a call first waits (within its
 * deadline) for a connection in progress, and starts its work only once connected: work never starts
 * after its caller got a 503, so an answered 503 never turns into a job.
 */
export function redisGuard(connection: Redis, timeoutMs: number, log: { warn(obj: object, msg: string): void }) {
  // One shared promise per outage, not one listener per waiting request.
  let ready: Promise<void> | undefined;
  const connected = (): Promise<void> => {
    if (connection.status === "ready") return Promise.resolve();
    ready ??= new Promise<void>((resolve) =>
      connection.once("ready", () => {
        ready = undefined;
        resolve();
      }),
    );
    return ready;
  };
  return async <T>(work: () => Promise<T>): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new QueueUnavailableError()), timeoutMs);
    });
    try {
      // The deadline bounds the wait for a connection; once connected, each command has its own timeout
      // (commandTimeout), so a busy event loop does not turn a healthy Redis into a 503.
      await Promise.race([connected(), deadline]);
    } finally {
      clearTimeout(timer);
    }
    try {
      return await work();
    } catch (error) {
      if (error instanceof ApiError) throw error;
      log.warn({ err: (error as Error).message }, "redis call failed");
      throw new QueueUnavailableError();
    }
  };
}

export interface RedisPluginOptions {
  target: RedisTarget;
  prefix: string;
  retentionHours: number;
  webhookBackoffMs: number;
  timeoutMs?: number;
}

/**
 * The API's Redis connection and the job store on it. Nothing is queued while Redis is away and nothing
 * is resent on reconnect (an answered 503 must not happen later); commands fail at once instead. Start
 * waits briefly for the first connection.
 */
export default fp<RedisPluginOptions>(
  async function redis(fastify: FastifyInstance, options) {
    const connection = createRedisConnection(options.target, "api", { log: { logger: fastify.log, what: "redis connection error" } });
    const store = createJobStore({ redis: connection, prefix: options.prefix, retentionHours: options.retentionHours, webhookBackoffMs: options.webhookBackoffMs, logger: fastify.log });
    fastify.decorate("redis", connection);
    fastify.decorate("jobStore", store);
    fastify.decorate("withRedis", redisGuard(connection, options.timeoutMs ?? 2500, fastify.log));
    fastify.addHook("onClose", async () => {
      connection.disconnect();
      await store.close();
    });
    // Not ready within a second: the outage log has said so (or will, when the connect attempt fails).
    await whenReady(connection, 1000).catch(() => undefined);
  },
  { name: "redis" },
);
