import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { Worker } from "bullmq";
import type { FastifyBaseLogger } from "fastify";
import { approvalPolicyOf, listenError, type ApiKeyEntry, type Config } from "./config.js";
import { createAzureContext, createSandboxContext, type AzureContext } from "./azure/azure-context.js";
import { azureCloud } from "./azure/cloud.js";
import { createAzureAdapters, type AzureAdapters } from "./azure/adapters.js";
import { createChangeWorker, runningJobCount } from "./worker/worker.js";
import { startComplianceSchedule } from "./worker/compliance-schedule.js";
import { generateWebhookSecret, startWebhookWorker } from "./worker/webhook-delivery.js";
import { sha256Hex } from "./plugins/app/authentication.js";
import { createJobStore } from "./job-store/job-store.js";
import { armBudgetLimits } from "./job-store/arm-budget.js";
import { redisOutageLog, redisProblemOf } from "./job-store/outage-log.js";
import { asRedisTarget, createRedisConnection, describeRedisAuth, redactRedisUrl, redisTarget, type RedisTarget } from "./job-store/redis-connection.js";
import { RedisEntraAuth } from "./job-store/redis-entra-auth.js";

/**
 * The parts of a running process that are not the HTTP API: the Azure connection (through an embedded
 * or external sandbox in sandbox mode) and the worker. Used by server.ts, tests and scripts.
 */

export interface SandboxHandle {
  url: string;
  caPem: string;
  close(): Promise<void>;
}

/** In sandbox mode: the emulator named by CMK_SANDBOX_URL, or an embedded one started now. */
export async function connectSandbox(config: Config, log: Pick<FastifyBaseLogger, "info" | "warn">): Promise<SandboxHandle> {
  if (config.CMK_SANDBOX_URL) {
    const caPem = await readFile(config.CMK_SANDBOX_CA_FILE, "utf8").catch((error: Error) => {
      throw new Error(`CMK_SANDBOX_CA_FILE: cannot read ${config.CMK_SANDBOX_CA_FILE} (${error.message}); start the emulator first (npm run sandbox).`);
    });
    return { url: config.CMK_SANDBOX_URL, caPem, close: async () => undefined };
  }
  // Imported only here, so azure mode never loads the emulator.
  const { startSandbox } = await import("./sandbox/index.js");
  const sandbox = await startSandbox({
    port: config.CMK_SANDBOX_PORT,
    host: config.CMK_SANDBOX_HOST,
    caFile: config.CMK_SANDBOX_CA_FILE,
    lroMs: config.CMK_SANDBOX_LRO_MS,
    logger: { info: (message: string) => log.info(message), warn: (message: string) => log.warn(message) },
  }).catch((error: Error) => {
    throw listenError(error, { port: config.CMK_SANDBOX_PORT, portVariable: "CMK_SANDBOX_PORT", host: config.CMK_SANDBOX_HOST, hostVariable: "CMK_SANDBOX_HOST" });
  });
  return { url: sandbox.url, caPem: sandbox.caPem, close: () => sandbox.close() };
}

/** `logger`: told which credential is configured and, at the first token, which one answered (azure mode). */
export function createContext(config: Config, sandbox: SandboxHandle | undefined, logger?: Pick<FastifyBaseLogger, "info">): AzureContext {
  if (config.CMK_MODE === "azure") return createAzureContext(azureCloud(config.CMK_CLOUD), config.azureCredential, logger ? { logger } : {});
  if (!sandbox) throw new Error("sandbox mode needs a sandbox connection");
  return createSandboxContext(sandbox);
}

export interface RunningWorker {
  worker: Worker;
  /**
   * Stops taking jobs and waits up to `deadlineMs` for running steps to end; jobs still running then are
   * left to BullMQ's stalled-job handling, and another worker resumes them from their last saved step.
   */
  close(deadlineMs?: number): Promise<void>;
}

export function createAdapters(config: Config, context: AzureContext): AzureAdapters {
  return createAzureAdapters(context, { pollIntervalMs: config.armPollIntervalMs, readCacheMs: config.CMK_READ_CACHE_MS });
}

/**
 * How this process reaches Redis, made once: TLS settings and, with CMK_REDIS_AUTH=entra, the first token
 * of the service's credential (kept fresh until `close`). Throws RedisSignInError when no token can be had.
 */
export async function connectRedis(config: Config, context: AzureContext, logger: FastifyBaseLogger): Promise<{ target: RedisTarget; close(): void }> {
  if (config.CMK_REDIS_AUTH !== "entra") return { target: redisTarget(config), close: () => undefined };
  if (!config.REDIS_URL.startsWith("rediss://")) {
    logger.warn("CMK_REDIS_AUTH=entra over redis:// sends tokens unencrypted; Azure Managed Redis and Azure Cache for Redis take Entra ID tokens over TLS only (rediss://)");
  }
  const entra = new RedisEntraAuth(context.credential, { username: config.CMK_REDIS_USERNAME, logger });
  await entra.start();
  logger.info({ user: entra.credentials().username }, "Redis sign-in: Microsoft Entra ID token of the service's credential (CMK_REDIS_AUTH=entra)");
  return { target: redisTarget(config, entra), close: () => entra.close() };
}

export function startWorker(
  config: Config,
  adapters: AzureAdapters,
  logger: FastifyBaseLogger,
  options: { webhookSecret?: string | undefined; redis?: RedisTarget } = {},
): RunningWorker {
  const target = options.redis ?? redisTarget(config);
  const connection = createRedisConnection(target, "worker", { log: { logger, what: "worker redis connection error" } });
  const store = createJobStore({
    redis: connection,
    prefix: config.CMK_QUEUE_PREFIX,
    retentionHours: config.CMK_JOB_RETENTION_HOURS,
    webhookBackoffMs: config.CMK_WEBHOOK_BACKOFF_MS,
    logger,
  });
  // ARM's per-subscription budget, shared with every other worker through this store's Redis.
  adapters.armPacing.use(store.armBudget(armBudgetLimits(config)));
  const worker = createChangeWorker(
    { ...adapters, propagationWindowMs: config.CMK_ROLE_PROPAGATION_WINDOW_MS },
    {
      store,
      concurrency: config.CMK_WORKER_CONCURRENCY,
      lockMs: config.CMK_WORKER_LOCK_MS,
      logger,
      fleetSubscriptions: config.fleetSubscriptions,
      compliance: {
        settings: { requireCustomerManagedKey: config.CMK_REQUIRE_CUSTOMER_MANAGED_KEY, keyMaxAgeDays: config.CMK_KEY_MAX_AGE_DAYS },
        follow: config.CMK_FOLLOW_LATEST_KEY_VERSION,
        approvals: approvalPolicyOf(config),
      },
    },
  );
  // Scheduled compliance scans: every worker registers the same scheduler (or removes it with `off`).
  const schedule = startComplianceSchedule(store, config.CMK_COMPLIANCE_SCAN_CRON, logger);
  // Webhook deliveries run wherever changes run.
  const webhookSecret = options.webhookSecret ?? config.CMK_WEBHOOK_SECRET;
  if (!webhookSecret) logger.warn("CMK_WEBHOOK_SECRET is not set: jobs with a callbackUrl record their webhook as failed.");
  const webhooks = startWebhookWorker({
    redis: target,
    prefix: config.CMK_QUEUE_PREFIX,
    secret: webhookSecret,
    backoffMs: config.CMK_WEBHOOK_BACKOFF_MS,
    timeoutMs: config.CMK_WEBHOOK_TIMEOUT_MS,
    retentionHours: config.CMK_JOB_RETENTION_HOURS,
    logger,
  });
  return {
    worker,
    close: async (deadlineMs = 25_000) => {
      // Nothing to let finish (no job, or no Redis to record its end in): stop at once. BullMQ's polite
      // close would wait for its fetch loop, which keeps retrying while Redis is away.
      const waitForJobs = runningJobCount(worker) > 0 && connection.status === "ready";
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), waitForJobs ? deadlineMs : 2000)));
      const outcome = await Promise.race([worker.close(!waitForJobs).then(() => "closed" as const), deadline]);
      clearTimeout(timer);
      if (outcome === "timeout" && waitForJobs) {
        logger.warn({ deadlineMs, runningJobs: runningJobCount(worker) }, "jobs still running at the shutdown deadline; they will be resumed by another worker");
      }
      // Cutting the connection ends whatever close still waits for; unfinished jobs keep their saved
      // step and are taken over once their lock expires. A delivery cut short is retried (webhook-id
      // stays the same, so receivers see it once).
      await schedule.close().catch(() => undefined);
      connection.disconnect();
      await store.close();
      await webhooks.close(outcome === "timeout" || !waitForJobs);
    },
  };
}

/**
 * BullMQ loses jobs when Redis evicts keys or forgets them on restart: say so at start; and a cluster
 * node taken for a single Redis. Managed Redis may refuse CONFIG; then nothing is said of it.
 */
export async function warnAboutRedisDurability(to: RedisTarget | string, logger: Pick<FastifyBaseLogger, "warn">): Promise<string[]> {
  const target = asRedisTarget(to);
  const redis = createRedisConnection(target, "probe");
  // connect() rejects with a bare "Connection is closed"; the event carries the cause.
  let cause: Error | undefined;
  redis.on("error", (error: Error) => (cause ??= error));
  const warnings: string[] = [];
  try {
    await redis.connect();
    const policy = await redis.config("GET", "maxmemory-policy").catch(() => undefined);
    const value = Array.isArray(policy) ? String(policy[1]) : undefined;
    if (value !== undefined && value !== "noeviction") warnings.push(`Redis maxmemory-policy is ${value}; BullMQ needs noeviction or jobs can be lost.`);
    const persistence = await redis.info("persistence").catch(() => "");
    const aof = /aof_enabled:1/.test(persistence);
    const saves = await redis.config("GET", "save").catch(() => undefined);
    const rdb = Array.isArray(saves) && String(saves[1] ?? "").trim() !== "";
    if (persistence && !aof && !rdb) warnings.push("Redis persistence is off (no AOF, no RDB snapshots): a Redis restart loses every job. Turn on appendonly yes.");
    // A cluster node answers a plain client only for its own slots: the service would fail on the others' (MOVED).
    const cluster = await redis.info("cluster").catch(() => "");
    if (!target.cluster && /cluster_enabled:1/.test(cluster)) warnings.push("Redis at REDIS_URL is a Redis Cluster node: set CMK_REDIS_CLUSTER=true (the prefix then gets a hash tag).");
  } catch (error) {
    // The first line of the outage; the connections that retry add at most one line per 10 s to it.
    redisOutageLog.error({ warn: (obj, msg) => logger.warn(obj, msg), info: () => undefined }, cause ?? (error as Error), "redis error", {
      where: redactRedisUrl(target.url),
      auth: () => describeRedisAuth(target),
    });
    const problem = redisProblemOf(cause ?? (error as Error));
    const what = problem === "tls" ? "fails the TLS handshake" : problem === "credentials" ? "refuses the service's credentials" : "does not answer";
    warnings.push(`Redis at ${redactRedisUrl(target.url)} ${what} yet.`);
    return warnings;
  } finally {
    redis.disconnect();
  }
  for (const warning of warnings) logger.warn(warning);
  return warnings;
}

/** The API keys to accept; in sandbox mode with none configured, one admin key is made up and returned. */
export function resolveApiKeys(config: Config): { apiKeys: ApiKeyEntry[]; generatedKey?: string } {
  if (config.apiKeys) return { apiKeys: config.apiKeys };
  if (config.CMK_MODE !== "sandbox") return { apiKeys: [] };
  const generatedKey = `cmk_sandbox_${randomBytes(24).toString("base64url")}`;
  return { apiKeys: [{ name: "sandbox-admin", sha256: sha256Hex(generatedKey), roles: ["admin"] }], generatedKey };
}

/** The webhook signing secret; in sandbox mode with none configured, one is made up and returned. */
export function resolveWebhookSecret(config: Config): { webhookSecret?: string; generatedWebhookSecret?: string } {
  if (config.CMK_WEBHOOK_SECRET) return { webhookSecret: config.CMK_WEBHOOK_SECRET };
  if (config.CMK_MODE !== "sandbox") return {};
  const generated = generateWebhookSecret();
  return { webhookSecret: generated, generatedWebhookSecret: generated };
}
