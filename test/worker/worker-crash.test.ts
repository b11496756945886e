import t from "tap";
import { KEYS, waitForJob } from "../helpers/app.js";
import { startStack } from "../helpers/stack.js";
import { advanceClock, fhirPuts, lastSeq, sandboxRequests } from "../helpers/sandbox-admin.js";
import { setKey } from "../helpers/requests.js";
import { startServerProcess, type ServerProcess } from "../helpers/server-process.js";

/** Waits until the job's monitor satisfies `ready` (e.g. its ARM write has been accepted). */
async function waitUntil(app: Awaited<ReturnType<typeof startStack>>["app"], jobId: string, ready: (monitor: { currentStep?: string; steps: Array<{ name: string; status: string }> }) => boolean) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const monitor = (await app.inject({ method: "GET", url: `/v1/jobs/${jobId}`, headers: { "x-api-key": KEYS.reader } })).json();
    if (ready(monitor)) return monitor;
    if (Date.now() > deadline) throw new Error(`job never reached the expected state: ${JSON.stringify(monitor)}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A worker as operators run one: its own process, so a test can kill it (SIGKILL) or stop it (SIGTERM) mid-job. */
const startWorkerProcess = (env: Record<string, string>) => startServerProcess({ CMK_ROLE: "worker", LOG_LEVEL: "warn", ...env });

const writeAccepted = (monitor: { steps: Array<{ name: string; status: string }> }) => monitor.steps.some((step) => step.name === "StartArmUpdate" && step.status === "Succeeded");

t.test("a worker killed mid-operation: another takes the job over and finishes it with exactly one PUT", async (t) => {
  // No in-process worker: the job runs in child processes only. The ARM operation lasts until the
  // emulator's clock is moved on, so the first worker is surely killed while it follows it.
  const { app, sandbox, config } = await startStack(t, { lroMs: 600_000, worker: false });
  const env = {
    REDIS_URL: config.REDIS_URL,
    CMK_QUEUE_PREFIX: config.CMK_QUEUE_PREFIX,
    CMK_SANDBOX_URL: sandbox.url,
    CMK_SANDBOX_CA_FILE: sandbox.caFile,
    CMK_WORKER_LOCK_MS: "1500",
    CMK_ARM_POLL_INTERVAL_MS: "100",
  };
  const workers: ServerProcess[] = [];
  t.teardown(() => workers.forEach((worker) => worker.child.kill("SIGKILL")));

  const since = await lastSeq(sandbox);
  workers.push(startWorkerProcess(env));
  const accepted = await app.inject({ method: "POST", url: "/v1/change-requests", payload: setKey("fhir-sys"), headers: { "x-api-key": KEYS.operator } });
  const jobId = accepted.json().id;
  await waitUntil(app, jobId, writeAccepted);

  workers[0]!.child.kill("SIGKILL");
  t.equal(await workers[0]!.exited, "SIGKILL");
  workers.push(startWorkerProcess(env));
  await advanceClock(sandbox, 600);

  const { monitor } = await waitForJob(app, jobId, 60_000);
  t.equal(monitor.status, "Succeeded", JSON.stringify(monitor.error ?? {}) + workers[1]!.output());
  t.equal(monitor.attempts, 2, "the second worker took it over");
  t.equal(fhirPuts(await sandboxRequests(sandbox, since), "fhir-sys").length, 1, "exactly one PUT");
});

t.test("SIGTERM: the worker lets its running job finish within the deadline, then exits", async (t) => {
  const { app, sandbox, config } = await startStack(t, { lroMs: 600_000, worker: false });
  const worker = startWorkerProcess({
    REDIS_URL: config.REDIS_URL,
    CMK_QUEUE_PREFIX: config.CMK_QUEUE_PREFIX,
    CMK_SANDBOX_URL: sandbox.url,
    CMK_SANDBOX_CA_FILE: sandbox.caFile,
    CMK_ARM_POLL_INTERVAL_MS: "100",
  });
  t.teardown(() => worker.child.kill("SIGKILL"));
  const accepted = await app.inject({ method: "POST", url: "/v1/change-requests", payload: setKey("fhir-uami", undefined, { type: "UserAssigned", userAssignedIdentityId: "/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg-sandbox/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uami-sandbox" }), headers: { "x-api-key": KEYS.operator } });
  const jobId = accepted.json().id;
  await waitUntil(app, jobId, writeAccepted);
  worker.child.kill("SIGTERM");
  await advanceClock(sandbox, 600); // the ARM operation ends after the signal, while the worker drains
  t.equal(await worker.exited, 0, "a clean exit");
  const monitor = (await app.inject({ method: "GET", url: `/v1/jobs/${jobId}`, headers: { "x-api-key": KEYS.reader } })).json();
  t.equal(monitor.status, "Succeeded", "the running job reached its end before the process stopped");
});

t.test("a job taken over again and again starts its stall count anew once it saves progress (BullMQ fails it past 5 takeovers otherwise)", async (t) => {
  // Regression (npm run chaos -- --fleet): a fleet parent lives as long as its fleet; BullMQ counted every
  // worker that died under it over its whole life and failed it after the fifth, although each one had
  // resumed it and moved it on.
  const { app, config } = await startStack(t, { worker: false });
  const accepted = await app.inject({ method: "POST", url: "/v1/change-requests", payload: setKey("fhir-sys"), headers: { "x-api-key": KEYS.operator } });
  const jobId = accepted.json().id as string;
  const jobKey = app.jobStore.changes.toKey(jobId);
  // What BullMQ's stalled-job check leaves on a job whose workers died five times (the most it allows).
  await app.redis.hset(jobKey, "stc", "5");
  const { startWorker } = await import("../../src/runtime.js");
  const worker = startWorker(config, app.azure, app.log);
  t.teardown(() => worker.close());
  const { monitor } = await waitForJob(app, jobId, 60_000);
  t.equal(monitor.status, "Succeeded");
  t.equal(await app.redis.hget(jobKey, "stc"), "0", "the takeovers before its progress no longer count against it");
});
