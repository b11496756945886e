import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { rootCertificates, type ConnectionOptions } from "node:tls";
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from "ioredis";
import { ConfigError, type Config } from "../config.js";
import { redisOutageLog } from "./outage-log.js";
import type { RedisEntraAuth } from "./redis-entra-auth.js";

/**
 * Every Redis connection the service opens is made here, so how the service reaches Redis is decided in
 * one place: the URL, TLS with verification (rediss://), Microsoft Entra ID tokens (CMK_REDIS_AUTH=entra)
 * and Redis Cluster (CMK_REDIS_CLUSTER). BullMQ's own connections are duplicates of these (a Worker
 * duplicates its connection for its blocking reads), so they carry the same settings; with Entra ID the
 * duplicates are tracked too, so a refreshed token reaches them.
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

/** How to reach Redis: made once per process from the configuration (`redisTarget`). */
export interface RedisTarget {
  /** REDIS_URL: `redis://` or `rediss://` (TLS); user and password in it for password authentication. */
  url: string;
  /** The URL names one node of a Redis Cluster; the others are discovered from it. */
  cluster: boolean;
  /** TLS for rediss://: the server's certificate is verified against the URL's host. */
  tls?: ConnectionOptions;
  /** CMK_REDIS_AUTH=entra: tokens as passwords, kept current on every connection. */
  entra?: RedisEntraAuth;
}

/**
 * The target the configuration names. TLS verification is never turned off: the certificate must chain to
 * a system CA or one in CMK_REDIS_CA_FILE and name the URL's host (SNI and the identity check use it, also
 * for cluster nodes announced by address).
 */
export function redisTarget(config: Pick<Config, "REDIS_URL" | "CMK_REDIS_CLUSTER" | "CMK_REDIS_CA_FILE">, entra?: RedisEntraAuth): RedisTarget {
  const url = new URL(config.REDIS_URL);
  const target: RedisTarget = { url: config.REDIS_URL, cluster: config.CMK_REDIS_CLUSTER, ...(entra ? { entra } : {}) };
  if (url.protocol !== "rediss:") return target;
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const tls: ConnectionOptions = { rejectUnauthorized: true };
  // RFC 6066: no SNI with an address; the identity check then looks for the address in the certificate.
  if (isIP(host) === 0) tls.servername = host;
  if (config.CMK_REDIS_CA_FILE) tls.ca = [...rootCertificates, readCaFile(config.CMK_REDIS_CA_FILE)];
  return { ...target, tls };
}

function readCaFile(file: string): string {
  let pem: string;
  try {
    pem = readFileSync(file, "utf8");
  } catch (error) {
    throw new ConfigError("CMK_REDIS_CA_FILE", `cannot read ${file} (${(error as Error).message})`);
  }
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) throw new ConfigError("CMK_REDIS_CA_FILE", `${file} holds no PEM certificate`);
  return pem;
}

/** A bare URL (tests, scripts) is a standalone Redis without TLS settings of its own. */
export function asRedisTarget(target: RedisTarget | string): RedisTarget {
  return typeof target === "string" ? { url: target, cluster: false } : target;
}

/** REDIS_URL as it may be shown: without its password. */
export function redactRedisUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, "//***@");
}

export interface RedisConnectionOptions {
  /** Errors and reconnects go to the process's outage log as this (not for probes, which report their own). */
  log?: { logger: Parameters<typeof redisOutageLog.watch>[1]; what: string };
}

/**
 * A connection for `role`. With CMK_REDIS_CLUSTER it is an ioredis Cluster: it runs every command the
 * store uses (all of a deployment's keys share the prefix's hash tag, so scripts, MULTI and pipelines stay
 * in one slot), so it is typed as the `Redis` it stands in for.
 */
export function createRedisConnection(target: RedisTarget | string, role: RedisConnectionRole, options: RedisConnectionOptions = {}): Redis {
  const resolved = asRedisTarget(target);
  const connection = resolved.cluster ? clusterConnection(resolved, role) : standaloneConnection(resolved, role);
  if (options.log) redisOutageLog.watch(connection, options.log.logger, options.log.what, { where: redactRedisUrl(resolved.url), auth: () => describeRedisAuth(resolved) });
  resolved.entra?.track(connection, { subscriber: role === "subscriber" });
  return connection;
}

/** The options every connection to `target` shares: TLS, who it is (Entra ID), its name. */
function connectionOptions(target: RedisTarget, role: RedisConnectionRole): RedisOptions {
  return {
    connectionName: `cmk-service:${role}`,
    ...(target.tls ? { tls: target.tls } : {}),
    ...(target.entra ? target.entra.credentials() : {}),
  };
}

function standaloneConnection(target: RedisTarget, role: RedisConnectionRole): Redis {
  return new Redis(target.url, { ...ROLE_OPTIONS[role], ...connectionOptions(target, role) });
}

function clusterConnection(target: RedisTarget, role: RedisConnectionRole): Redis {
  const url = new URL(target.url);
  const { retryStrategy, enableOfflineQueue, lazyConnect, ...nodeOptions } = ROLE_OPTIONS[role];
  const redisOptions: RedisOptions = {
    ...nodeOptions,
    ...connectionOptions(target, role),
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password && !target.entra ? { password: decodeURIComponent(url.password) } : {}),
  };
  const clusterOptions: ClusterOptions = {
    redisOptions,
    ...(enableOfflineQueue === false ? { enableOfflineQueue: false } : {}),
    ...(lazyConnect ? { lazyConnect: true } : {}),
    // Reconnecting to the whole cluster follows the role's pace (ioredis' own for workers); single nodes are followed by slot refreshes.
    ...(retryStrategy ? { clusterRetryStrategy: (times: number) => retryStrategy(times) ?? null } : {}),
    // Nodes are reached as the cluster announces them; TLS still checks the certificate against REDIS_URL's host.
    ...(target.tls ? { dnsLookup: (address: string, callback: (error: null, address: string) => void) => callback(null, address) } : {}),
  };
  const port = Number(url.port || 6379);
  // An ioredis Cluster has every command the store uses; it stands in for a Redis everywhere (see above).
  return new Cluster([{ host: url.hostname.replace(/^\[|\]$/g, ""), port }], clusterOptions) as unknown as Redis;
}

/** Who the service is to Redis, for messages about refused credentials (never a secret). */
export function describeRedisAuth(target: RedisTarget): string {
  if (target.entra) return target.entra.describe();
  const url = new URL(target.url);
  if (url.password) return `the user and password in REDIS_URL (user ${url.username ? decodeURIComponent(url.username) : "default"})`;
  return "no password (REDIS_URL has none; CMK_REDIS_AUTH=password)";
}
