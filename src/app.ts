import Fastify, { type FastifyBaseLogger, type FastifyInstance } from "fastify";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { Config } from "./config.js";
import type { ApiKeyEntry } from "./config.js";
import type { AzureCloud } from "./azure/cloud.js";
import type { AzureAdapters } from "./azure/adapters.js";
import { sharedSchemas } from "./schemas/common.js";
import { jobSchemas } from "./schemas/jobs.js";
import { validationSchemas } from "./schemas/validations.js";
import swagger from "./plugins/external/swagger.js";
import errorHandler from "./plugins/app/error-handler.js";
import authentication from "./plugins/app/authentication.js";
import changes from "./plugins/app/changes.js";
import healthRoutes from "./routes/health/index.js";
import v1Routes from "./routes/v1/index.js";

declare module "fastify" {
  interface FastifyInstance {
    cloud: AzureCloud;
    azure: AzureAdapters;
    config: Config;
    /** Seconds a poller should wait before asking for a running job again. */
    statusRetryAfterSeconds: number;
  }
}

export interface AppOptions {
  /** The API keys to accept (config's, or the generated sandbox key). */
  apiKeys: readonly ApiKeyEntry[];
  /** Azure access for the routes that read Azure now (validations). */
  azure: AzureAdapters;
  /** A logger to share (server.ts passes its pino instance); default: a new one at LOG_LEVEL. */
  logger?: FastifyBaseLogger;
}

/** Log redaction: credentials never reach a log line. */
export const REDACTED_PATHS = ["req.headers.authorization", "req.headers['x-api-key']", "req.headers.cookie"];

/**
 * Builds the API: third-party plugins, then the service's own, then routes. Used by the entry point and
 * by tests (with `inject`); it does not listen.
 */
export async function buildApp(config: Config, options: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: { level: config.LOG_LEVEL, redact: REDACTED_PATHS } }),
    bodyLimit: 64 * 1024,
    ajv: { customOptions: { allErrors: true, discriminator: true, keywords: ["example"], coerceTypes: "array", removeAdditional: false, useDefaults: true } },
    requestIdHeader: "x-request-id",
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.decorate("cloud", options.azure.cloud);
  app.decorate("azure", options.azure);
  app.decorate("config", config);
  app.decorate("statusRetryAfterSeconds", config.CMK_MODE === "sandbox" ? 1 : 5);
  for (const schema of [...sharedSchemas, ...jobSchemas, ...validationSchemas]) app.addSchema(schema);

  await app.register(swagger);
  await app.register(errorHandler);
  await app.register(authentication, { apiKeys: options.apiKeys });
  await app.register(changes, { redisUrl: config.REDIS_URL, prefix: config.CMK_QUEUE_PREFIX, retentionHours: config.CMK_JOB_RETENTION_HOURS });

  await app.register(healthRoutes);
  await app.register(v1Routes, { prefix: "/v1" });
  return app;
}
