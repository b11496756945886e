import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import type { Test } from "tap";
import type { FastifyInstance } from "fastify";
import { buildApp, type AppOptions } from "../../src/app.js";
import type { AzureAdapters } from "../../src/azure/adapters.js";
import { createAzureAdapters } from "../../src/azure/adapters.js";
import { createSandboxContext } from "../../src/azure/azure-context.js";
import { loadConfig, type Config } from "../../src/config.js";
import { sha256Hex } from "../../src/plugins/app/authentication.js";

export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

/** One key per role, so tests can show who may do what. */
export const KEYS = {
  reader: "test-reader-key",
  operator: "test-operator-key",
  admin: "test-admin-key",
} as const;

export const API_KEYS = Object.entries(KEYS).map(([role, key]) => ({ name: `test-${role}`, sha256: sha256Hex(key), roles: [role] }));

/**
 * A configuration with a queue prefix of its own, so test files share one Redis without seeing each
 * other's jobs; the prefix's keys are deleted when the test ends.
 */
export function testConfig(t: Test, env: Record<string, string> = {}): Config {
  const prefix = `cmktest-${randomBytes(6).toString("hex")}`;
  const config = loadConfig({
    REDIS_URL,
    CMK_QUEUE_PREFIX: prefix,
    CMK_API_KEYS: JSON.stringify(API_KEYS),
    LOG_LEVEL: "silent",
    CMK_ARM_POLL_INTERVAL_MS: "100",
    // Tests poll fast; the rate limit has tests of its own.
    CMK_RATE_LIMIT_PER_MINUTE: "1000000",
    CMK_AZURE_READ_RATE_LIMIT_PER_MINUTE: "1000000",
    // Tests change the sandbox behind the service's back and read again at once; the cache has tests of its own.
    CMK_READ_CACHE_MS: "0",
    // No scheduled scans (each worker would run a schedule worker too); the schedule has tests of its own.
    CMK_COMPLIANCE_SCAN_CRON: "off",
    ...env,
  });
  t.teardown(() => deletePrefix(config.REDIS_URL, prefix));
  return config;
}

export async function deletePrefix(redisUrl: string, prefix: string): Promise<void> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1, retryStrategy: () => null, lazyConnect: true });
  // A Redis of a test's own (TLS, ACLs) may be gone or refuse this plain connection: nothing to clean then.
  redis.on("error", () => undefined);
  try {
    await redis.connect();
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 500);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== "0");
  } catch {
    // Nothing to clean on a Redis that does not answer (tests of outages use one).
  } finally {
    redis.disconnect();
  }
}

/**
 * The API alone. Without `azure`, its Azure adapters point at a sandbox address where nothing listens:
 * right for tests that must not reach Azure at all.
 */
export async function buildTestApp(t: Test, config: Config, azure?: AzureAdapters, options: Partial<AppOptions> = {}): Promise<FastifyInstance> {
  const adapters = azure ?? createAzureAdapters(createSandboxContext({ url: "https://127.0.0.1:1", caPem: "" }), { pollIntervalMs: 100 });
  const app = await buildApp(config, { apiKeys: config.apiKeys ?? [], azure: adapters, ...options });
  t.teardown(() => app.close());
  await app.ready();
  return app;
}

/** Polls the status monitor until the job is terminal (or the deadline passes). */
export async function waitForJob(app: FastifyInstance, jobId: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  const seen: Array<Record<string, unknown>> = [];
  for (;;) {
    const response = await app.inject({ method: "GET", url: `/v1/jobs/${jobId}`, headers: { "x-api-key": KEYS.reader } });
    const monitor = response.json();
    seen.push(monitor);
    if (["Succeeded", "Failed", "Canceled"].includes(monitor.status)) return { monitor, seen, response };
    if (Date.now() > deadline) throw new Error(`job ${jobId} still ${monitor.status} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
