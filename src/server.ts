import closeWithGrace from "close-with-grace";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import pino from "pino";
import { buildApp } from "./app.js";
import { loggerOptions } from "./logging.js";
import { ConfigError, listenError, loadConfig, type Config } from "./config.js";
import { RedisNotInstalledError, resolveRedis, type RedisEndpoint } from "./redis/local-redis.js";
import { RedisSignInError } from "./job-store/redis-entra-auth.js";
import {
  connectRedis,
  connectSandbox,
  createAdapters,
  createContext,
  resolveApiKeys,
  resolveWebhookSecret,
  startWorker,
  warnAboutRedisDurability,
  type RunningWorker,
  type SandboxHandle,
} from "./runtime.js";

/** Entry point: configuration, Redis, then the API and/or the worker (CMK_ROLE), then graceful shutdown. */
async function main() {
  const config = loadConfig();
  const logger = pino(loggerOptions(config.LOG_LEVEL));
  // Everything started so far, stopped in reverse order on shutdown or when a later step fails.
  let redis: RedisEndpoint | undefined;
  let redisSignIn: { close(): void } | undefined;
  let sandbox: SandboxHandle | undefined;
  let worker: RunningWorker | undefined;
  let app: Awaited<ReturnType<typeof buildApp>> | undefined;
  const stop = async () => {
    await app?.close();
    await worker?.close(25_000);
    redisSignIn?.close();
    await sandbox?.close();
    await redis?.close();
  };

  try {
    redis = await resolveRedis({
      url: config.REDIS_URL,
      urlSet: config.redisUrlSet,
      production: config.production,
      dataDir: join(dirname(config.CMK_SANDBOX_CA_FILE), "redis"),
    });
    if (redis.started) console.log(redis.started);
    const running: Config = { ...config, REDIS_URL: redis.url };

    if (running.CMK_MODE === "sandbox") sandbox = await connectSandbox(running, logger);
    const context = createContext(running, sandbox, logger);
    // With CMK_REDIS_AUTH=entra the credential signs in to Redis too: after the sandbox, before the first connection.
    const redisConnection = await connectRedis(running, context, logger);
    redisSignIn = redisConnection;
    await warnAboutRedisDurability(redisConnection.target, logger);
    const azure = createAdapters(running, context);
    const runApi = running.CMK_ROLE !== "worker";
    const runWorker = running.CMK_ROLE !== "api";

    // The secret matters where webhooks are signed (the worker); a generated one is printed below.
    const { webhookSecret, generatedWebhookSecret } = runWorker ? resolveWebhookSecret(running) : {};
    if (runWorker) worker = startWorker(running, azure, logger, { webhookSecret, redis: redisConnection.target });

    if (runApi) {
      const { apiKeys, generatedKey } = resolveApiKeys(running);
      app = await buildApp(running, { apiKeys, azure, logger, httpClient: context.clientOptions.httpClient, redis: redisConnection.target });
      await app.listen({ port: running.PORT, host: running.HOST }).catch((error: Error) => {
        throw listenError(error, { port: running.PORT, portVariable: "PORT", host: running.HOST, hostVariable: "HOST" });
      });
      const shown = running.HOST === "0.0.0.0" ? "localhost" : running.HOST;
      // The bound port, which PORT=0 leaves to the system.
      const { port } = app.server.address() as AddressInfo;
      const base = `http://${shown}:${port}`;
      const lines = [`cmk-service (${running.CMK_MODE} mode, role ${running.CMK_ROLE}) listening on ${base}`, `  Swagger UI: ${base}/docs`];
      if (sandbox) lines.push(`  Sandbox:    ${sandbox.url} (admin API: ${sandbox.url}/_sandbox/state)`);
      if (generatedKey) lines.push(`  Admin API key (sandbox, generated at start): ${generatedKey}`);
      if (generatedWebhookSecret) lines.push(`  Webhook signing secret (sandbox, generated at start): ${generatedWebhookSecret}`);
      console.log(lines.join("\n"));
    } else {
      const lines = [`cmk-service worker (${running.CMK_MODE} mode) started`];
      if (generatedWebhookSecret) lines.push(`  Webhook signing secret (sandbox, generated at start): ${generatedWebhookSecret}`);
      console.log(lines.join("\n"));
    }
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }

  // SIGTERM/SIGINT: stop accepting, let running steps reach a safe point, hand the rest back.
  closeWithGrace({ delay: 35_000 }, async ({ signal, err }) => {
    if (err) logger.error({ err }, "shutting down after an error");
    else logger.info({ signal }, "shutting down");
    await stop();
  });
}

try {
  await main();
} catch (error) {
  // Start-up problems the operator can fix get one clear message and exit code 2; anything else is a bug.
  if (error instanceof ConfigError) console.error(`Configuration error: ${error.message}`);
  else if (error instanceof RedisNotInstalledError || error instanceof RedisSignInError) console.error(error.message);
  else throw error;
  process.exit(2);
}
