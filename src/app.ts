import Fastify, { type FastifyBaseLogger, type FastifyInstance } from "fastify";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { Config } from "./config.js";
import type { ApiKeyEntry } from "./config.js";
import type { AzureCloud } from "./azure/cloud.js";
import type { AzureAdapters } from "./azure/adapters.js";
import type { HttpClient } from "@azure/core-rest-pipeline";
import { sharedSchemas } from "./schemas/common.js";
import { changeRequestSchemas } from "./schemas/change-requests.js";
import { jobSchemas } from "./schemas/jobs.js";
import { validationSchemas } from "./schemas/validations.js";
import { auditSchemas } from "./schemas/audit.js";
import { templateSchemas } from "./schemas/templates.js";
import { encryptionSchemas } from "./schemas/encryption.js";
import swagger from "./plugins/external/swagger.js";
import helmet from "./plugins/external/helmet.js";
import errorHandler, { sendProblem } from "./plugins/app/error-handler.js";
import authentication from "./plugins/app/authentication.js";
import redis from "./plugins/app/redis.js";
import metrics from "./plugins/app/metrics.js";
import rateLimit from "./plugins/app/rate-limit.js";
import requestPolicy from "./plugins/app/request-policy.js";
import audit from "./plugins/app/audit.js";
import changes from "./plugins/app/changes.js";
import jobs from "./plugins/app/jobs.js";
import { callerTokenVerifier, type TokenVerifier } from "./security/token-verifier.js";
import { callbackUrlPolicy } from "./security/callback-url.js";
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
  /** Fetches the token issuer's OpenID metadata and JWKS; in sandbox mode the sandbox routing client. */
  httpClient?: HttpClient;
  /** Checks callers' bearer tokens; default: from CMK_AUTH_ISSUER/AUDIENCE through `httpClient`. */
  tokenVerifier?: TokenVerifier;
}

/** Log redaction: credentials, secrets and tokens never reach a log line, however they are nested. */
export const REDACTED_PATHS = [
  "req.headers.authorization",
  "req.headers['x-api-key']",
  "req.headers.cookie",
  "req.headers['proxy-authorization']",
  "res.headers['set-cookie']",
  "headers.authorization",
  "headers['x-api-key']",
  "*.headers.authorization",
  "*.headers['x-api-key']",
  "*.authorization",
  "*.token",
  "*.accessToken",
  "*.access_token",
  "*.clientSecret",
  "*.client_secret",
  "*.secret",
  "*.password",
  "*.apiKey",
];

/**
 * Builds the API: third-party plugins, then the service's own, then routes. Used by the entry point and
 * by tests (with `inject`); it does not listen.
 */
export async function buildApp(config: Config, options: AppOptions): Promise<FastifyInstance> {
  // Behind an ingress the client address is in X-Forwarded-For; trust only the configured hops.
  const hops = config.CMK_TRUST_PROXY_HOPS;
  const trustProxy = hops > 0 ? (_address: string, hop: number) => hop < hops : false;
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: { level: config.LOG_LEVEL, redact: REDACTED_PATHS } }),
    bodyLimit: 64 * 1024,
    ajv: { customOptions: { allErrors: true, discriminator: true, keywords: ["example", "x-examples"], coerceTypes: "array", removeAdditional: false, useDefaults: true } },
    requestIdHeader: "x-request-id",
    trustProxy,
    // Malformed URLs are answered like every other error: problem+json with a code.
    frameworkErrors: (error, request, reply) => void sendProblem(error, request, reply),
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.decorate("cloud", options.azure.cloud);
  app.decorate("azure", options.azure);
  app.decorate("config", config);
  app.decorate("statusRetryAfterSeconds", config.CMK_MODE === "sandbox" ? 1 : 5);
  for (const schema of [...sharedSchemas, ...changeRequestSchemas, ...jobSchemas, ...validationSchemas, ...auditSchemas, ...templateSchemas, ...encryptionSchemas]) app.addSchema(schema);

  const tokenVerifier =
    options.tokenVerifier ?? callerTokenVerifier(config, options.httpClient, (error) => app.log.warn({ err: error.message }, "token issuer keys could not be fetched"));
  await app.register(helmet);
  await app.register(swagger);
  await app.register(errorHandler);
  await app.register(redis, { url: config.REDIS_URL });
  await app.register(authentication, { apiKeys: options.apiKeys, tokenVerifier, tokenSubscriptions: config.tokenSubscriptions });
  await app.register(rateLimit, { perMinute: config.CMK_RATE_LIMIT_PER_MINUTE, prefix: config.CMK_QUEUE_PREFIX });
  await app.register(requestPolicy, { callbackUrls: callbackUrlPolicy(config) });
  await app.register(audit, { prefix: config.CMK_QUEUE_PREFIX });
  await app.register(changes, { prefix: config.CMK_QUEUE_PREFIX, retentionHours: config.CMK_JOB_RETENTION_HOURS });
  await app.register(jobs, {
    redisUrl: config.REDIS_URL,
    prefix: config.CMK_QUEUE_PREFIX,
    retentionHours: config.CMK_JOB_RETENTION_HOURS,
    heartbeatMs: config.CMK_SSE_HEARTBEAT_MS,
    webhookBackoffMs: config.CMK_WEBHOOK_BACKOFF_MS,
  });

  await app.register(metrics);
  await app.register(healthRoutes);
  await app.register(v1Routes, { prefix: "/v1" });
  return app;
}
