import t from "tap";
import { KEYS, waitForJob } from "../helpers/app.js";
import { skipArmOperation, startStack } from "../helpers/stack.js";
import { fhirPuts, lastSeq, sandboxRequests, setFaults } from "../helpers/sandbox-admin.js";
import { KEY_V1, KEY_V2, setKey } from "../helpers/requests.js";
import { startWorker } from "../../src/runtime.js";
import { SET_KEY_STEPS } from "../../src/domain/operation-plans.js";

const LRO_SECONDS = 2.5;

type Monitor = { id: string; status: string; currentStep?: string; steps: Array<{ name: string; status: string; message?: string }>; error?: { code: string; message: string } };

const until = async (what: string, check: () => Promise<boolean>, timeoutMs = 15_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
};

t.test("cancel a waiting job (no worker running): Canceled at once, the service is free again, nothing is written", async (t) => {
  const { app, config, azure, sandbox } = await startStack(t, { lroMs: 300, worker: false });
  const since = await lastSeq(sandbox);
  const submit = (body: object) => app.inject({ method: "POST", url: "/v1/change-requests", payload: body, headers: { "x-api-key": KEYS.operator } });
  const cancel = (jobId: string, key: string = KEYS.operator) => app.inject({ method: "POST", url: `/v1/jobs/${jobId}/cancel`, headers: { "x-api-key": key } });

  const first = (await submit(setKey("fhir-sys"))).json() as Monitor;
  t.equal((await submit(setKey("fhir-sys"))).statusCode, 409, "the service is busy while the job waits");

  t.equal((await cancel(first.id, KEYS.reader)).statusCode, 403, "readers may not cancel");
  t.equal((await cancel("00000000-0000-4000-8000-000000000000")).statusCode, 404);

  const canceled = await cancel(first.id);
  t.equal(canceled.statusCode, 200);
  const monitor = canceled.json() as Monitor;
  t.equal(monitor.status, "Canceled");
  t.equal(monitor.error?.code, "Canceled");
  t.match(monitor.error?.message, /test-operator/, "says who canceled");
  t.same(monitor.steps.map((step) => [step.name, step.status]), SET_KEY_STEPS.map((step) => [step.name, "Skipped"]), "every step Skipped");
  t.match((await app.inject({ method: "GET", url: `/v1/jobs/${first.id}`, headers: { "x-api-key": KEYS.reader } })).json(), { status: "Canceled", error: { code: "Canceled" } });
  t.equal((await cancel(first.id)).statusCode, 200, "canceling again answers the same");

  const second = await submit(setKey("fhir-sys", KEY_V2));
  t.equal(second.statusCode, 202, "the FHIR service accepts a new change at once");

  // A worker now runs only the second job; the canceled one stays canceled and writes nothing.
  const worker = startWorker(config, azure, app.log);
  t.teardown(() => worker.close());
  const { monitor: done } = await waitForJob(app, second.json().id);
  t.equal(done.status, "Succeeded");
  t.equal(fhirPuts(await sandboxRequests(sandbox, since), "fhir-sys").length, 1, "one PUT: the second job's");
  t.equal((await waitForJob(app, first.id)).monitor.status, "Canceled");
});

t.test("cancel a running job before its write: it ends Canceled and sends no PUT; after the write: 409 NotCancellable", async (t) => {
  // Long enough for a cancel to land while the operation runs; the tests end it early with the emulator's clock.
  const { app, sandbox } = await startStack(t, { lroMs: LRO_SECONDS * 1000 });
  const submit = (body: object) => app.inject({ method: "POST", url: "/v1/change-requests", payload: body, headers: { "x-api-key": KEYS.operator } });
  const cancel = (jobId: string) => app.inject({ method: "POST", url: `/v1/jobs/${jobId}/cancel`, headers: { "x-api-key": KEYS.operator } });
  const status = async (jobId: string) => (await app.inject({ method: "GET", url: `/v1/jobs/${jobId}`, headers: { "x-api-key": KEYS.reader } })).json() as Monitor;

  t.test("during a slow pre-flight (Key Vault answers 503 with Retry-After twice)", async (t) => {
    const since = await lastSeq(sandbox);
    await setFaults(sandbox, { rules: [{ service: "keyvault", method: "GET", status: 503, probability: 1, times: 2, retryAfterSeconds: 1 }] });
    const job = (await submit(setKey("fhir-sys"))).json() as Monitor;
    await until("Preflight running", async () => (await status(job.id)).currentStep === "Preflight");
    const answer = await cancel(job.id);
    t.equal(answer.statusCode, 202, "the worker holds the job: cancel requested");
    t.match(answer.headers["operation-location"], `/v1/jobs/${job.id}`);
    const { monitor } = await waitForJob(app, job.id);
    await setFaults(sandbox, { rules: [] });
    t.equal(monitor.status, "Canceled");
    t.equal(monitor.error.code, "Canceled");
    for (const step of monitor.steps as Monitor["steps"]) {
      if (step.name !== "Preflight") t.equal(step.status, "Skipped", `${step.name} Skipped`);
    }
    t.equal(fhirPuts(await sandboxRequests(sandbox, since), "fhir-sys").length, 0, "no PUT");
    const again = await submit(setKey("fhir-sys", KEY_V2));
    t.equal(again.statusCode, 202, "the service accepts new changes");
    await skipArmOperation(app, sandbox, again.json().id, LRO_SECONDS);
    t.equal((await waitForJob(app, again.json().id)).monitor.status, "Succeeded");
  });

  t.test("once StartArmUpdate has sent its PUT", async (t) => {
    const since = await lastSeq(sandbox);
    const job = (await submit(setKey("fhir-sys", KEY_V1))).json() as Monitor;
    await until("FollowOperation", async () => (await status(job.id)).currentStep === "FollowOperation");
    const answer = await cancel(job.id);
    t.equal(answer.statusCode, 409);
    t.match(answer.json(), { code: "NotCancellable", step: "StartArmUpdate", detail: /StartArmUpdate.*ARM is changing the FHIR service/ });
    await skipArmOperation(app, sandbox, job.id, LRO_SECONDS);
    const { monitor } = await waitForJob(app, job.id);
    t.equal(monitor.status, "Succeeded", "the job goes on to its end");
    t.equal(fhirPuts(await sandboxRequests(sandbox, since), "fhir-sys").length, 1);
    const ended = await cancel(job.id);
    t.equal(ended.statusCode, 409);
    t.match(ended.json().detail, /ending|already ended/);
  });

  t.test("cancels at random moments never let a write through", async (t) => {
    const outcomes = { canceled: 0, refused: 0 };
    for (let round = 0; round < 6; round += 1) {
      const since = await lastSeq(sandbox);
      const accepted = await submit(setKey("fhir-sys", round % 2 === 0 ? KEY_V2 : KEY_V1));
      t.equal(accepted.statusCode, 202);
      const jobId = accepted.json().id;
      // Early (likely before the write) and later (likely after it), at random within each.
      await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * (round % 2 === 0 ? 60 : 500))));
      const answer = await cancel(jobId);
      await skipArmOperation(app, sandbox, jobId, LRO_SECONDS);
      const { monitor } = await waitForJob(app, jobId, 30_000);
      const puts = fhirPuts(await sandboxRequests(sandbox, since), "fhir-sys").length;
      if (answer.statusCode === 200 || answer.statusCode === 202) {
        outcomes.canceled += 1;
        t.equal(monitor.status, "Canceled", `round ${round}: an accepted cancel ends Canceled`);
        t.equal(puts, 0, `round ${round}: and sends no PUT`);
      } else {
        outcomes.refused += 1;
        t.equal(answer.statusCode, 409, `round ${round}: otherwise 409`);
        t.not(monitor.status, "Canceled");
        t.ok(puts <= 1, `round ${round}: at most the one PUT`);
      }
    }
    t.comment(`canceled ${outcomes.canceled}, refused ${outcomes.refused}`);
  });
});
