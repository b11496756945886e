import fp from "fastify-plugin";
import { Redis } from "ioredis";
import type { FastifyInstance } from "fastify";
import { ApiError, QueueUnavailableError } from "../../errors.js";
import { redisOutageLog } from "../../job-store/outage-log.js";

declare module "fastify" {
  interface FastifyInstance {
    /** The API's one Redis connection: BullMQ's queue, idempotency, job indexes, audit, rate limits. */
    redis: Redis;
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

/**
 * The API's Redis connection. Nothing is queued while Redis is away and nothing is resent on reconnect
 * (an answered 503 must not happen later); commands fail at once instead, so a rate-limit lookup never
 * delays an answer. Start waits briefly for the first connection, so the first requests are counted too.
 */
export default fp<{ url: string; timeoutMs?: number }>(
  async function redis(fastify: FastifyInstance, options) {
    const connection = new Redis(options.url, {
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      commandTimeout: 5000,
      connectTimeout: 2000,
      retryStrategy: (times) => Math.min(times * 250, 2000),
    });
    redisOutageLog.watch(connection, fastify.log, "redis connection error");
    fastify.decorate("redis", connection);
    fastify.decorate("withRedis", redisGuard(connection, options.timeoutMs ?? 2500, fastify.log));
    fastify.addHook("onClose", async () => {
      connection.disconnect();
    });
    // Not ready within a second: the outage log has said so (or will, when the connect attempt fails).
    await whenReady(connection, 1000).catch(() => undefined);
  },
  { name: "redis" },
);
