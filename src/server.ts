import closeWithGrace from "close-with-grace";
import pino from "pino";
import { buildApp, REDACTED_PATHS } from "./app.js";
import { ConfigError, loadConfig, type Config } from "./config.js";
import {
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

/** Entry point: configuration, then the API and/or the worker (CMK_ROLE), then graceful shutdown. */
async function main() {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`Configuration error: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
  const logger = pino({ level: config.LOG_LEVEL, redact: REDACTED_PATHS });
  await warnAboutRedisDurability(config.REDIS_URL, logger);

  const sandbox: SandboxHandle | undefined = config.CMK_MODE === "sandbox" ? await connectSandbox(config, logger) : undefined;
  const context = createContext(config, sandbox);
  const azure = createAdapters(config, context);
  const runApi = config.CMK_ROLE !== "worker";
  const runWorker = config.CMK_ROLE !== "api";

  // The secret matters where webhooks are signed (the worker); a generated one is printed below.
  const { webhookSecret, generatedWebhookSecret } = runWorker ? resolveWebhookSecret(config) : {};
  let worker: RunningWorker | undefined;
  if (runWorker) worker = startWorker(config, azure, logger, { webhookSecret });

  let app: Awaited<ReturnType<typeof buildApp>> | undefined;
  if (runApi) {
    const { apiKeys, generatedKey } = resolveApiKeys(config);
    app = await buildApp(config, { apiKeys, azure, logger, httpClient: context.clientOptions.httpClient });
    await app.listen({ port: config.PORT, host: config.HOST });
    const shown = config.HOST === "0.0.0.0" ? "localhost" : config.HOST;
    const base = `http://${shown}:${config.PORT}`;
    const lines = [`cmk-service (${config.CMK_MODE} mode, role ${config.CMK_ROLE}) listening on ${base}`, `  Swagger UI: ${base}/docs`];
    if (sandbox) lines.push(`  Sandbox:    ${sandbox.url} (admin API: ${sandbox.url}/_sandbox/state)`);
    if (generatedKey) lines.push(`  Admin API key (sandbox, generated at start): ${generatedKey}`);
    if (generatedWebhookSecret) lines.push(`  Webhook signing secret (sandbox, generated at start): ${generatedWebhookSecret}`);
    console.log(lines.join("\n"));
  } else {
    const lines = [`cmk-service worker (${config.CMK_MODE} mode) started`];
    if (generatedWebhookSecret) lines.push(`  Webhook signing secret (sandbox, generated at start): ${generatedWebhookSecret}`);
    console.log(lines.join("\n"));
  }

  // SIGTERM/SIGINT: stop accepting, let running steps reach a safe point, hand the rest back.
  closeWithGrace({ delay: 35_000 }, async ({ signal, err }) => {
    if (err) logger.error({ err }, "shutting down after an error");
    else logger.info({ signal }, "shutting down");
    await app?.close();
    await worker?.close(25_000);
    await sandbox?.close();
  });
}

await main();
