import { Redis, type RedisOptions } from "ioredis";
import { redisOutageLog } from "./outage-log.js";

/**
 * Every Redis connection the service opens is made here, so how the service reaches Redis (the URL
 * today; TLS, Entra ID tokens and Cluster next) is decided in one place. BullMQ's own connections are
 * duplicates of these (a Worker duplicates its connection for its blocking reads), so they carry the
 * same settings.
 */

export type RedisConnectionRole =
  /**
   * The API's one connection: nothing is queued while Redis is away and nothing is resent on reconnect
   * (an answered 503 must not happen later); commands fail at once instead.
   */
  | "api"
  /** A worker's: BullMQ blocks on it, so commands wait for a reconnect rather than fail. */
  | "worker"
  /** The API's one pub/sub subscription (job events). */
  | "subscriber"
  /** A single look at Redis at start-up (its settings): one try, connected on demand. */
  | "probe";

const ROLE_OPTIONS: Record<RedisConnectionRole, RedisOptions> = {
  api: {
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    commandTimeout: 5000,
    connectTimeout: 2000,
    retryStrategy: (times) => Math.min(times * 250, 2000),
  },
  worker: { maxRetriesPerRequest: null },
  subscriber: { maxRetriesPerRequest: null, retryStrategy: (times) => Math.min(times * 250, 2000) },
  probe: { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null, connectTimeout: 2000 },
};

export interface RedisConnectionOptions {
  /** Errors and reconnects go to the process's outage log as this (not for probes, which report their own). */
  log?: { logger: Parameters<typeof redisOutageLog.watch>[1]; what: string };
}

export function createRedisConnection(url: string, role: RedisConnectionRole, options: RedisConnectionOptions = {}): Redis {
  const connection = new Redis(url, ROLE_OPTIONS[role]);
  if (options.log) redisOutageLog.watch(connection, options.log.logger, options.log.what);
  return connection;
}
