import type { Test } from "tap";
import { createSandboxContext } from "../../src/azure/azure-context.js";
import { createAdapters, startWorker } from "../../src/runtime.js";
import { buildTestApp, testConfig } from "./app.js";
import { startTestSandbox } from "./sandbox.js";

/** API + worker + sandbox, wired as `npm start` wires them, torn down after the test. */
export async function startStack(t: Test, options: { lroMs?: number; env?: Record<string, string>; worker?: boolean } = {}) {
  const sandbox = await startTestSandbox(t, { lroMs: options.lroMs ?? 300 });
  const config = testConfig(t, { CMK_SANDBOX_URL: sandbox.url, CMK_SANDBOX_CA_FILE: sandbox.caFile, ...options.env });
  const context = createSandboxContext({ url: sandbox.url, caPem: sandbox.caPem });
  const azure = createAdapters(config, context);
  // The routing client also reaches the emulator's Entra ID, so callers may use sandbox tokens.
  const app = await buildTestApp(t, config, azure, { httpClient: context.clientOptions.httpClient });
  const worker = options.worker === false ? undefined : startWorker(config, azure, app.log);
  if (worker) t.teardown(() => worker.close());
  return { app, config, sandbox, worker, azure };
}

