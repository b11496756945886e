import type { FastifyInstance } from "fastify";
import type { Test } from "tap";
import { createSandboxContext } from "../../src/azure/azure-context.js";
import { createAdapters, startWorker } from "../../src/runtime.js";
import type { RunningSandbox } from "../../src/sandbox/index.js";
import { buildTestApp, KEYS, testConfig } from "./app.js";
import { startTestSandbox } from "./sandbox.js";
import { advanceClock } from "./sandbox-admin.js";

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


const AFTER_THE_WRITE = ["FollowOperation", "Verify", "CheckPreviousVersion", "CheckFhirDataPlane"];

/**
 * Once a job has had its ARM write accepted (its step is FollowOperation or later), moves the emulator's
 * clock past the operation's duration so the job need not wait for it; a job that ends without a write
 * is left alone. Keep `seconds` to the operation's length: every second also ages the tokens the service
 * holds, which expire on the emulator's clock after an hour.
 */
export async function skipArmOperation(app: FastifyInstance, sandbox: RunningSandbox, jobId: string, seconds: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const monitor = (await app.inject({ method: "GET", url: `/v1/jobs/${jobId}`, headers: { "x-api-key": KEYS.reader } })).json() as { status: string; currentStep?: string };
    if (["Succeeded", "Failed", "Canceled"].includes(monitor.status)) return;
    if (AFTER_THE_WRITE.includes(monitor.currentStep ?? "")) break;
    if (Date.now() > deadline) throw new Error(`job ${jobId} never reached its ARM operation: ${JSON.stringify(monitor)}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  await advanceClock(sandbox, seconds);
}
