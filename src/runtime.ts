import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { Redis } from "ioredis";
import type { Worker } from "bullmq";
import type { FastifyBaseLogger } from "fastify";
import type { ApiKeyEntry, Config } from "./config.js";
import { createAzureContext, createSandboxContext, type AzureContext } from "./azure/azure-context.js";
import { createAzureAdapters, type AzureAdapters } from "./azure/adapters.js";
import { createChangeWorker } from "./jobs/worker.js";
import { sha256Hex } from "./plugins/app/authentication.js";

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
    caFile: config.CMK_SANDBOX_CA_FILE,
    lroMs: config.CMK_SANDBOX_LRO_MS,
    logger: { info: (message: string) => log.info(message), warn: (message: string) => log.warn(message) },
  });
  return { url: sandbox.url, caPem: sandbox.caPem, close: () => sandbox.close() };
}

export function createContext(config: Config, sandbox: SandboxHandle | undefined): AzureContext {
  if (config.CMK_MODE === "azure") return createAzureContext();
  if (!sandbox) throw new Error("sandbox mode needs a sandbox connection");
  return createSandboxContext(sandbox);
}

export interface RunningWorker {
  worker: Worker;
  close(): Promise<void>;
}

export function createAdapters(config: Config, context: AzureContext): AzureAdapters {
  return createAzureAdapters(context, { pollIntervalMs: config.armPollIntervalMs });
}

export function startWorker(config: Config, adapters: AzureAdapters, logger: FastifyBaseLogger): RunningWorker {
  // Workers block on Redis: BullMQ needs maxRetriesPerRequest null on their connection.
  const connection = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });
  connection.on("error", (error) => logger.warn({ err: error.message }, "worker redis connection error"));
  const worker = createChangeWorker(adapters, { connection, prefix: config.CMK_QUEUE_PREFIX, concurrency: config.CMK_WORKER_CONCURRENCY, logger });
  return {
    worker,
    close: async () => {
      await worker.close();
      connection.disconnect();
    },
  };
}

/** The API keys to accept; in sandbox mode with none configured, one admin key is made up and returned. */
export function resolveApiKeys(config: Config): { apiKeys: ApiKeyEntry[]; generatedKey?: string } {
  if (config.apiKeys) return { apiKeys: config.apiKeys };
  if (config.CMK_MODE !== "sandbox") return { apiKeys: [] };
  const generatedKey = `cmk_sandbox_${randomBytes(24).toString("base64url")}`;
  return { apiKeys: [{ name: "sandbox-admin", sha256: sha256Hex(generatedKey), roles: ["admin"] }], generatedKey };
}
