import t from "tap";
import { startWorker } from "../../../src/runtime.js";
import { waitForJob } from "../../helpers/app.js";
import { as, GOVERNANCE_API_KEYS, monitorOf, post } from "../../helpers/governance.js";
import { KEY_V2, setKey } from "../../helpers/requests.js";
import { fhirPuts, lastSeq, sandboxRequests } from "../../helpers/sandbox-admin.js";
import { startStack } from "../../helpers/stack.js";
import { until } from "../../helpers/until.js";

/**
 * api-contract v1.1 "Change governance", change windows (`schedule.notBefore` / `notAfter`), through the
 * HTTP API against the sandbox: a window in the future holds the change (a BullMQ delayed job, the
 * service locked); one that closes before the change could start ends it Canceled/ChangeWindowMissed
 * with nothing written. Windows here are a second or two long: the service reads the wall clock.
 */

const inMs = (ms: number) => new Date(Date.now() + ms).toISOString();
const DAY_MS = 24 * 3_600_000;

t.test("bad windows are 400 naming the field", async (t) => {
  const { app } = await startStack(t, { worker: false, env: { CMK_API_KEYS: GOVERNANCE_API_KEYS } });
  const inAnHour = inMs(3_600_000);
  const cases: Array<[string, object, string]> = [
    ["notAfter before notBefore", { notBefore: inMs(2 * 3_600_000), notAfter: inMs(3_600_000) }, "/body/schedule/notAfter"],
    ["notAfter equal to notBefore", { notBefore: inAnHour, notAfter: inAnHour }, "/body/schedule/notAfter"],
    ["a window in the past", { notBefore: inMs(-2 * 3_600_000), notAfter: inMs(-3_600_000) }, "/body/schedule/notAfter"],
    ["notBefore more than 90 days ahead", { notBefore: inMs(91 * DAY_MS) }, "/body/schedule/notBefore"],
    ["notAfter more than 90 days ahead", { notAfter: inMs(91 * DAY_MS) }, "/body/schedule/notAfter"],
    ["not a date-time", { notBefore: "tomorrow" }, "/body/schedule/notBefore"],
    ["an unknown member", { notBefore: inMs(3_600_000), timeZone: "UTC" }, "/body/schedule"],
  ];
  for (const [name, schedule, path] of cases) {
    const response = await post(app, "/v1/change-requests", "operator", setKey("fhir-sys", KEY_V2, { type: "SystemAssigned" }, { schedule }));
    t.equal(response.statusCode, 400, name);
    t.match(response.json(), { code: "ValidationFailed", errors: [{ path }] }, name);
  }
  const open = await post(app, "/v1/change-requests", "operator", setKey("fhir-sys", KEY_V2, { type: "SystemAssigned" }, { schedule: { notBefore: inMs(-60_000), notAfter: inMs(89 * DAY_MS) } }));
  t.equal(open.statusCode, 202, "a window open now is fine (notBefore in the past)");
  t.match(open.json(), { status: "NotStarted", schedule: { notBefore: String, notAfter: String } });
  t.equal(open.json().currentStep, undefined, "it does not wait");
});

t.test("a window in the future: the change waits (service locked, nothing sent) and starts within it", async (t) => {
  const { app, sandbox } = await startStack(t, { env: { CMK_API_KEYS: GOVERNANCE_API_KEYS } });
  const since = await lastSeq(sandbox);
  const schedule = { notBefore: inMs(1500), notAfter: inMs(120_000) };
  const accepted = await post(app, "/v1/change-requests", "operator", setKey("fhir-sys", KEY_V2, { type: "SystemAssigned" }, { schedule }));
  t.equal(accepted.statusCode, 202);
  const jobId = accepted.json().id as string;
  t.match(accepted.json(), { status: "NotStarted", currentStep: "AwaitingChangeWindow", schedule });
  t.notOk(accepted.json().approval, "approvals are not required here");
  t.match((await post(app, "/v1/change-requests", "operator", setKey("fhir-sys"))).json(), { code: "ChangeInProgress", activeJobId: jobId });
  const listed = (await app.inject({ method: "GET", url: "/v1/jobs?status=NotStarted", headers: as("reader") })).json().value;
  t.match(listed, [{ id: jobId, schedule }], "the list shows the window");

  // While it shows AwaitingChangeWindow, nothing about fhir-sys reaches the emulator.
  let checks = 0;
  for (;;) {
    const monitor = await monitorOf(app, jobId);
    if (monitor.currentStep !== "AwaitingChangeWindow") break;
    t.same(
      (await sandboxRequests(sandbox, since)).filter((request) => request.path.includes("/fhirservices/fhir-sys")),
      [],
      "no request about the service while it waits",
    );
    checks += 1;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  t.ok(checks > 0, "it was seen waiting");
  const { monitor } = await waitForJob(app, jobId);
  t.equal(monitor.status, "Succeeded");
  const firstStep = monitor.steps.find((step: { startedDateTime?: string }) => step.startedDateTime);
  t.ok(Date.parse(firstStep.startedDateTime) >= Date.parse(schedule.notBefore), `the first step started (${firstStep.startedDateTime}) at or after notBefore (${schedule.notBefore})`);
  t.equal(fhirPuts(await sandboxRequests(sandbox, since), "fhir-sys").length, 1, "one write");
});

t.test("approval and window combine: approved early, it still waits for notBefore", async (t) => {
  const { app } = await startStack(t, { env: { CMK_APPROVALS: "required", CMK_API_KEYS: GOVERNANCE_API_KEYS } });
  const schedule = { notBefore: inMs(1500), notAfter: inMs(120_000) };
  const jobId = (await post(app, "/v1/change-requests", "operator", setKey("fhir-sys", KEY_V2, { type: "SystemAssigned" }, { schedule }))).json().id as string;
  t.match(await monitorOf(app, jobId), { currentStep: "AwaitingApproval", approval: { state: "Pending" } }, "approval first");
  const approved = await post(app, `/v1/jobs/${jobId}/approve`, "approver");
  t.match(approved.json(), { status: "NotStarted", currentStep: "AwaitingChangeWindow", approval: { state: "Approved" } }, "then the window");
  const { monitor } = await waitForJob(app, jobId);
  t.equal(monitor.status, "Succeeded");
  t.ok(Date.parse(monitor.steps[0].startedDateTime) >= Date.parse(schedule.notBefore), "not before the window");
});

t.test("a window that closes while the change awaits approval ends it Canceled/ChangeWindowMissed", async (t) => {
  const { app, sandbox } = await startStack(t, { env: { CMK_APPROVALS: "required", CMK_API_KEYS: GOVERNANCE_API_KEYS } });
  const since = await lastSeq(sandbox);
  const ticket = { system: "servicenow", id: "CHG-WINDOW-1" };
  const jobId = (await post(app, "/v1/change-requests", "operator", setKey("fhir-sys", KEY_V2, { type: "SystemAssigned" }, { ticket, schedule: { notAfter: inMs(800) } }))).json().id as string;
  const { monitor } = await waitForJob(app, jobId);
  t.match(monitor, { status: "Canceled", currentStep: "AwaitingApproval", error: { code: "ChangeWindowMissed", message: /still awaiting approval/ } });
  t.equal((await post(app, `/v1/jobs/${jobId}/approve`, "approver")).statusCode, 409, "too late to approve");
  t.same((await sandboxRequests(sandbox, since)).filter((request) => request.path.includes("/fhirservices/fhir-sys")), [], "nothing was sent");
  t.equal((await post(app, "/v1/change-requests", "operator", setKey("fhir-sys", KEY_V2, { type: "SystemAssigned" }, { dryRun: true }))).statusCode, 202, "the service is free");
  const entries = (await app.inject({ method: "GET", url: `/v1/audit?ticketId=${ticket.id}`, headers: as("admin") })).json().value;
  t.match(entries[0], { outcome: "Canceled", code: "ChangeWindowMissed", jobId }, "the missed window is in the audit trail");
});

t.test("no worker free before notAfter: the change ends ChangeWindowMissed when one comes, writing nothing", async (t) => {
  const { app, sandbox, config, azure } = await startStack(t, { worker: false, env: { CMK_API_KEYS: GOVERNANCE_API_KEYS } });
  const since = await lastSeq(sandbox);
  const schedule = { notBefore: inMs(200), notAfter: inMs(900) };
  const jobId = (await post(app, "/v1/change-requests", "operator", setKey("fhir-sys", KEY_V2, { type: "SystemAssigned" }, { schedule }))).json().id as string;
  await until("the window closed", () => Date.now() > Date.parse(schedule.notAfter), 5_000);
  const worker = startWorker(config, azure, app.log);
  t.teardown(() => worker.close());
  const { monitor } = await waitForJob(app, jobId);
  t.match(monitor, { status: "Canceled", currentStep: "AwaitingChangeWindow", error: { code: "ChangeWindowMissed", message: /before the change could start/ } });
  t.same((await sandboxRequests(sandbox, since)).filter((request) => request.path.includes("/fhirservices/fhir-sys")), [], "nothing was sent");
});
