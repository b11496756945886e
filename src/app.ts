import { randomUUID } from "node:crypto";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { Config } from "./config.js";
import { loggerOptions } from "./logging.js";
import type { ApiKeyEntry } from "./config.js";
import type { AzureCloud } from "./azure/cloud.js";
import type { AzureAdapters } from "./azure/adapters.js";
import type { HttpClient } from "@azure/core-rest-pipeline";
import { sharedSchemas } from "./schemas/common.js";
import { changeRequestSchemas } from "./schemas/change-requests.js";
import { jobSchemas } from "./schemas/jobs.js";
import { keyRotationSchemas } from "./schemas/key-rotations.js";
import { validationSchemas } from "./schemas/validations.js";
import { auditSchemas } from "./schemas/audit.js";
import { templateSchemas } from "./schemas/templates.js";
import { encryptionSchemas } from "./schemas/encryption.js";
import { complianceReportSchemas, complianceSchemas } from "./schemas/compliance.js";
import { selfCheckSchemas } from "./schemas/self-check.js";
import swagger from "./plugins/external/swagger.js";
import helmet, { apiSecurityHeaders } from "./plugins/external/helmet.js";
import errorHandler, { clientErrorAnswer, pathOf, sendProblem } from "./plugins/app/error-handler.js";
import authentication from "./plugins/app/authentication.js";
import redis from "./plugins/app/redis.js";
import metrics from "./plugins/app/metrics.js";
import rateLimit from "./plugins/app/rate-limit.js";
import requestPolicy from "./plugins/app/request-policy.js";
import audit from "./plugins/app/audit.js";
import changes from "./plugins/app/changes.js";
import jobs from "./plugins/app/jobs.js";
import templates from "./plugins/app/templates.js";
import validations from "./plugins/app/validations.js";
import keyVaultEvents from "./plugins/app/key-vault-events.js";
import compliance from "./plugins/app/compliance.js";
import selfCheck from "./plugins/app/self-check.js";
import { callerTokenVerifier, type TokenVerifier } from "./security/token-verifier.js";
import { callbackUrlPolicy } from "./security/callback-url.js";
import { clientRequestIdOf } from "./security/client-request-id.js";
import healthRoutes from "./routes/health/index.js";
import { redisTarget, type RedisTarget } from "./job-store/redis-connection.js";
import { armBudgetLimits } from "./job-store/arm-budget.js";
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
  /** How to reach Redis (server.ts makes it once, with Entra ID tokens when configured); default: from config. */
  redis?: RedisTarget;
}

/**
 * A URL as logged: the path, and of the query only the parameters some route declares (their values are
 * the API's own filters). Any other part, name and value, is `[Redacted]`: a caller may have put a
 * credential there (`?api-key=`, `?code=`, `?access_token=`...), and a refused request is logged too.
 */
export function loggedUrl(url: string, declared: ReadonlySet<string>): string {
  const path = pathOf(url);
  if (path.length === url.length) return url;
  const parts = url.slice(path.length + 1).split("&").filter((part) => part !== "");
  const kept = parts.map((part) => {
    const raw = part.split("=", 1)[0]!;
    let name: string;
    try {
      name = decodeURIComponent(raw.replace(/\+/g, " "));
    } catch {
      return "[Redacted]";
    }
    return declared.has(name) ? part : "[Redacted]";
  });
  return kept.length > 0 ? `${path}?${kept.join("&")}` : path;
}

/** Fastify's request serializer with the URL as `loggedUrl` writes it. */
function requestSerializer(declared: ReadonlySet<string>) {
  return (request: FastifyRequest) => ({
    method: request.method,
    url: loggedUrl(request.url, declared),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort,
  });
}

/**
 * One log line per request, written when it has been answered: its request id, method and (logged) URL,
 * status code and response time. Fastify's own "incoming request" line, which doubles the logging cost of
 * every request, is written only at debug level.
 */
class RequestLog extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    request.log.debug({ req: request }, "incoming request");
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (error) reply.log.error({ req: request, res: reply, err: error, responseTime: reply.elapsedTime }, "request errored");
    else reply.log.info({ req: request, res: reply, responseTime: reply.elapsedTime }, "request completed");
  }
}

/** Answers to /v1 and to any request with a credential are never stored by a cache (problems included). */
function noStore(request: FastifyRequest, reply: FastifyReply): void {
  const path = pathOf(request.url);
  const { headers } = request;
  if (path === "/v1" || path.startsWith("/v1/") || headers.authorization !== undefined || headers["x-api-key"] !== undefined) reply.header("cache-control", "no-store");
}

/**
 * Builds the API: third-party plugins, then the service's own, then routes. Used by the entry point and
 * by tests (with `inject`); it does not listen.
 */
export async function buildApp(config: Config, options: AppOptions): Promise<FastifyInstance> {
  // Behind an ingress the client address is in X-Forwarded-For; trust only the configured hops.
  const hops = config.CMK_TRUST_PROXY_HOPS;
  const trustProxy = hops > 0 ? (_address: string, hop: number) => hop < hops : false;
  // Query parameter names some route declares (filled as routes are added): logged URLs keep only these.
  const queryNames = new Set<string>();
  const serializers = { req: requestSerializer(queryNames) };
  const clientErrorHeaders = { ...apiSecurityHeaders(), "cache-control": "no-store" };
  const app = Fastify({
    ...(options.logger
      ? { loggerInstance: options.logger.child({}, { serializers }) }
      : { logger: { ...loggerOptions(config.LOG_LEVEL), serializers } }),
    logController: new RequestLog(),
    bodyLimit: 64 * 1024,
    ajv: { customOptions: { allErrors: true, discriminator: true, keywords: ["example", "x-examples"], coerceTypes: "array", removeAdditional: false, useDefaults: true } },
    // The request id is always the server's own (unique across processes); a client's X-Request-Id is
    // recorded next to it as clientRequestId when it is safe (security/client-request-id.ts).
    requestIdHeader: false,
    genReqId: () => randomUUID(),
    childLoggerFactory: (logger, bindings, loggerOptions, rawRequest) => {
      const clientRequestId = clientRequestIdOf(rawRequest.headers);
      return logger.child(clientRequestId ? { ...bindings, clientRequestId } : bindings, loggerOptions);
    },
    trustProxy,
    // Malformed URLs are answered like every other error: problem+json with a code.
    frameworkErrors: (error, request, reply) => {
      noStore(request, reply);
      void sendProblem(error, request, reply);
    },
    // Node's own refusals (bad framing, oversized headers) too, with the API's security headers.
    clientErrorHandler: (error: NodeJS.ErrnoException, socket) => {
      const answer = clientErrorAnswer(error, clientErrorHeaders);
      app.log.debug({ code: error.code }, "client error");
      if (answer && socket.writable && socket.bytesWritten === 0) socket.write(answer);
      socket.destroy(error);
    },
  }).withTypeProvider<TypeBoxTypeProvider>();
  app.addHook("onRoute", (route) => {
    const properties = (route.schema?.querystring as { properties?: Record<string, unknown> } | undefined)?.properties;
    for (const name of Object.keys(properties ?? {})) queryNames.add(name);
  });
  app.addHook("onRequest", async (request, reply) => noStore(request, reply));

  app.decorate("cloud", options.azure.cloud);
  app.decorate("azure", options.azure);
  app.decorate("config", config);
  app.decorate("statusRetryAfterSeconds", config.CMK_MODE === "sandbox" ? 1 : 5);
  for (const schema of [...sharedSchemas, ...changeRequestSchemas, ...keyRotationSchemas, ...jobSchemas, ...validationSchemas, ...auditSchemas, ...templateSchemas, ...encryptionSchemas, ...complianceSchemas, ...complianceReportSchemas, ...selfCheckSchemas]) app.addSchema(schema);

  const tokenVerifier =
    options.tokenVerifier ?? callerTokenVerifier(config, options.httpClient, (error) => app.log.warn({ err: error.message }, "token issuer keys could not be fetched"));
  await app.register(helmet);
  await app.register(swagger);
  await app.register(errorHandler);
  const target = options.redis ?? redisTarget(config);
  await app.register(redis, {
    target,
    prefix: config.CMK_QUEUE_PREFIX,
    retentionHours: config.CMK_JOB_RETENTION_HOURS,
    webhookBackoffMs: config.CMK_WEBHOOK_BACKOFF_MS,
  });
  // The API's own ARM requests (pre-flight checks, validations) draw from the budget the workers share;
  // a process that runs both keeps the worker's (the same buckets in the same Redis).
  const armPacing = options.azure.armPacing;
  if (!armPacing.current) {
    const budget = app.jobStore.armBudget(armBudgetLimits(config));
    armPacing.use(budget);
    app.addHook("onClose", async () => {
      if (armPacing.current === budget) armPacing.use(undefined);
    });
  }
  await app.register(authentication, { apiKeys: options.apiKeys, tokenVerifier, tokenSubscriptions: config.tokenSubscriptions });
  await app.register(rateLimit, { perMinute: config.CMK_RATE_LIMIT_PER_MINUTE });
  await app.register(requestPolicy, { callbackUrls: callbackUrlPolicy(config) });
  await app.register(audit);
  await app.register(changes);
  await app.register(jobs, {
    redis: target,
    heartbeatMs: config.CMK_SSE_HEARTBEAT_MS,
    maxStreamsPerCredential: config.CMK_SSE_MAX_STREAMS_PER_CREDENTIAL,
    maxStreams: config.CMK_SSE_MAX_STREAMS,
  });
  await app.register(templates);
  await app.register(validations);
  await app.register(keyVaultEvents);
  await app.register(compliance);
  await app.register(selfCheck);

  await app.register(metrics);
  await app.register(healthRoutes);
  await app.register(v1Routes, { prefix: "/v1" });
  return app;
}
