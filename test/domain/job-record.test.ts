import t from "tap";
import { endStep, newProgress, percentComplete, startStep, toStatusMonitor, updateStep, type JobSnapshot } from "../../src/domain/job-record.js";

const plan = [
  { name: "A", weight: 20 },
  { name: "B", weight: 80 },
];
const now = new Date("2026-11-28T10:00:00.000Z");
const request = {
  operation: "SetKey" as const,
  fhirServiceId: "/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg-sandbox/providers/Microsoft.HealthcareApis/workspaces/wssandbox/fhirservices/fhir-sys",
  keyEncryptionKeyUrl: "https://kvsandbox.vault.azure.net/keys/k/00000000000000000000000000000002",
  identity: { type: "SystemAssigned" as const },
  ticket: { system: "servicenow", id: "CHG1" },
};
const snapshot = (over: Partial<JobSnapshot>): JobSnapshot => ({
  id: "j1",
  data: { request, createdBy: "alice", createdDateTime: now.toISOString() },
  progress: undefined,
  state: "waiting",
  attemptsStarted: 0,
  finishedOn: undefined,
  ...over,
});

t.test("percentComplete rises with steps and with a long step's fraction", async (t) => {
  let progress = newProgress(plan, now);
  t.equal(percentComplete(progress), 0);
  progress = endStep(startStep(progress, "A", now), "A", { status: "Succeeded" }, now);
  t.equal(percentComplete(progress), 20);
  progress = startStep(progress, "B", now);
  const half = updateStep(progress, "B", { fraction: 0.5 }, now);
  t.equal(percentComplete(half), 60);
  t.equal(percentComplete(updateStep(progress, "B", { fraction: 1 }, now)), 99, "never 100 before the step ends");
  t.equal(percentComplete(endStep(progress, "B", { status: "Skipped" }, now)), 100);
});

t.test("maps BullMQ states to contract statuses", async (t) => {
  t.equal(toStatusMonitor(snapshot({})).status, "NotStarted");
  t.equal(toStatusMonitor(snapshot({ state: "delayed", attemptsStarted: 1 })).status, "Running", "waiting for a retry is still running");
  t.equal(toStatusMonitor(snapshot({ state: "active", attemptsStarted: 1 })).status, "Running");
  const done = toStatusMonitor(snapshot({ state: "completed", attemptsStarted: 1 }));
  t.equal(done.status, "Succeeded");
  t.equal(done.percentComplete, 100);
});

t.test("a failed job always carries a typed error", async (t) => {
  const withError = toStatusMonitor(
    snapshot({ state: "failed", progress: { ...newProgress(plan, now), error: { code: "FhirServiceNotFound", message: "gone", target: "x" } } }),
  );
  t.same(withError.error, { code: "FhirServiceNotFound", message: "gone", target: "x" });
  const unexpected = toStatusMonitor(snapshot({ state: "failed" }));
  t.equal(unexpected.error?.code, "InternalError");
});

t.test("the monitor echoes who asked and for which ticket", async (t) => {
  const monitor = toStatusMonitor(snapshot({ progress: newProgress(plan, now) }));
  t.equal(monitor.createdBy, "alice");
  t.same(monitor.ticket, { system: "servicenow", id: "CHG1" });
  t.same(monitor.steps.map((s) => [s.name, s.status]), [["A", "NotStarted"], ["B", "NotStarted"]]);
  t.equal(monitor.fhirServiceId, request.fhirServiceId);
});
