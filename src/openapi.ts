import { buildApp } from "./app.js";
import { loadConfig } from "./config.js";
import { createAzureContext } from "./azure/azure-context.js";
import { createAzureAdapters } from "./azure/adapters.js";

/**
 * The OpenAPI document as the app serves it at /docs/json. Built from an app that never listens; its
 * Redis connection is closed before anything is sent.
 */
export async function buildOpenApiDocument(): Promise<unknown> {
  const config = loadConfig({ LOG_LEVEL: "silent", REDIS_URL: process.env.REDIS_URL ?? "redis://127.0.0.1:6379" });
  // Adapters are built, never called: the document comes from the route schemas alone.
  const app = await buildApp(config, { apiKeys: [], azure: createAzureAdapters(createAzureContext(), { pollIntervalMs: 5000 }) });
  try {
    await app.ready();
    return app.swagger();
  } finally {
    await app.close();
  }
}
