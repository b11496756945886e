import t from "tap";
import { awaiting, gateDecision, initialDelayMs, scheduleProblems, type ApprovalDecision } from "../../src/domain/governance.js";
import type { ChangeJobData } from "../../src/domain/job-record.js";
import { jobStatus, toStatusMonitor } from "../../src/domain/job-record.js";
import { fhirId, KEY_V2 } from "../helpers/requests.js";

const NOW = Date.parse("2026-11-30T10:00:00.000Z");
const at = (offsetMs: number) => new Date(NOW + offsetMs).toISOString();
const MIN = 60_000;

function job(options: { approval?: number; notBefore?: number; notAfter?: number; dryRun?: boolean } = {}): ChangeJobData {
  const schedule = {
    ...(options.notBefore !== undefined ? { notBefore: at(options.notBefore) } : {}),
    ...(options.notAfter !== undefined ? { notAfter: at(options.notAfter) } : {}),
  };
  return {
    request: {
      operation: "SetKey",
      fhirServiceId: fhirId("fhir-sys"),
      keyEncryptionKeyUrl: KEY_V2,
      identity: { type: "SystemAssigned" },
      ...(Object.keys(schedule).length ? { schedule } : {}),
      ...(options.dryRun ? { dryRun: true } : {}),
    },
    createdBy: "alice",
    createdById: "apiKey:alice",
    createdDateTime: at(0),
    ...(options.approval !== undefined ? { approval: { expiresDateTime: at(options.approval) } } : {}),
  };
}

const approved: ApprovalDecision = { state: "Approved", decidedBy: "bob", decidedDateTime: at(0) };

t.test("the delay a job is added with", async (t) => {
  t.equal(initialDelayMs(job(), NOW), 0, "nothing to wait for");
  t.equal(initialDelayMs(job({ notBefore: 5 * MIN }), NOW), 5 * MIN, "its window's start");
  t.equal(initialDelayMs(job({ notBefore: -5 * MIN }), NOW), 0, "an open window");
  t.equal(initialDelayMs(job({ approval: 60 * MIN }), NOW), 60 * MIN, "awaiting approval: until it expires");
  t.equal(initialDelayMs(job({ approval: 60 * MIN, notAfter: 10 * MIN }), NOW), 10 * MIN, "or until the window closes, if sooner");
  t.equal(initialDelayMs(job({ approval: 60 * MIN, dryRun: true }), NOW), 0, "dry runs never wait");
});

t.test("the worker's gate", async (t) => {
  t.same(gateDecision(job(), undefined, NOW, false), { kind: "run" });
  t.match(gateDecision(job({ approval: 60 * MIN }), undefined, NOW, false), { kind: "wait", untilMs: NOW + 60 * MIN, step: "AwaitingApproval" }, "woken early: back to wait");
  t.match(gateDecision(job({ approval: 60 * MIN }), undefined, NOW + 60 * MIN, false), { kind: "end", code: "ApprovalExpired", expire: true });
  t.match(gateDecision(job({ approval: 60 * MIN, notAfter: 10 * MIN }), undefined, NOW + 10 * MIN, false), { kind: "end", code: "ChangeWindowMissed" });
  t.match(gateDecision(job({ approval: 60 * MIN }), { ...approved, state: "Rejected", comment: "no" }, NOW, false), { kind: "end", code: "Rejected", message: /bob.*no/ });
  t.match(gateDecision(job({ approval: 60 * MIN }), { ...approved, state: "Expired" }, NOW, false), { kind: "end", code: "ApprovalExpired" });
  t.same(gateDecision(job({ approval: 60 * MIN }), approved, NOW, false), { kind: "run" }, "approved");
  t.match(gateDecision(job({ approval: 60 * MIN, notBefore: 5 * MIN }), approved, NOW, false), { kind: "wait", untilMs: NOW + 5 * MIN, step: "AwaitingChangeWindow" });
  t.match(gateDecision(job({ notBefore: 5 * MIN, notAfter: 10 * MIN }), undefined, NOW + 10 * MIN, false), { kind: "end", code: "ChangeWindowMissed" }, "no worker before notAfter");
  t.same(gateDecision(job({ notAfter: 10 * MIN }), undefined, NOW + 20 * MIN, true), { kind: "run" }, "a change that began writing finishes");
  t.same(gateDecision(job({ approval: 1, dryRun: true }), undefined, NOW + 20 * MIN, false), { kind: "run" }, "dry runs pass");
});

t.test("windows: what is refused, naming the field", async (t) => {
  const now = new Date(NOW);
  t.same(scheduleProblems(undefined, now), []);
  t.same(scheduleProblems({ notBefore: at(-MIN), notAfter: at(MIN) }, now), [], "open now");
  t.match(scheduleProblems({ notBefore: at(2 * MIN), notAfter: at(MIN) }, now), [{ path: "/body/schedule/notAfter", message: /after notBefore/ }]);
  t.match(scheduleProblems({ notAfter: at(-MIN) }, now), [{ path: "/body/schedule/notAfter", message: /past/ }]);
  t.match(scheduleProblems({ notBefore: at(91 * 24 * 60 * MIN) }, now), [{ path: "/body/schedule/notBefore", message: /90 days/ }]);
  t.match(scheduleProblems({ notAfter: at(91 * 24 * 60 * MIN) }, now, "/body/x"), [{ path: "/body/x/notAfter" }]);
});

t.test("the monitor of a waiting job", async (t) => {
  const snapshot = (data: ChangeJobData, decision?: ApprovalDecision) => ({ id: "j", data, progress: undefined, state: "delayed", attemptsStarted: 0, finishedOn: undefined, ...(decision ? { decision } : {}) });
  t.equal(awaiting(job({ approval: MIN }), undefined, NOW), "AwaitingApproval");
  t.equal(awaiting(job({ approval: MIN, notBefore: MIN }), approved, NOW), "AwaitingChangeWindow");
  t.equal(awaiting(job({ notBefore: MIN }), undefined, NOW + 2 * MIN), undefined, "the window opened: waiting for a worker, not the window");
  t.match(toStatusMonitor(snapshot(job({ approval: MIN, notBefore: 2 * MIN })), new Date(NOW)), {
    status: "NotStarted",
    currentStep: "AwaitingApproval",
    approval: { state: "Pending", expiresDateTime: at(MIN) },
    schedule: { notBefore: at(2 * MIN) },
  });
  // A job re-delayed by a worker's gate has an attempt started but ran no step: still NotStarted.
  t.equal(toStatusMonitor({ ...snapshot(job({ approval: MIN })), attemptsStarted: 1 }, new Date(NOW)).status, "NotStarted");
  for (const code of ["Rejected", "ApprovalExpired", "ChangeWindowMissed", "Canceled"]) {
    t.equal(jobStatus({ state: "failed", attemptsStarted: 1, progress: { steps: [], error: { code, message: "" }, lastUpdatedDateTime: at(0) } }), "Canceled", `${code} is Canceled`);
  }
  t.equal(jobStatus({ state: "failed", attemptsStarted: 1, progress: { steps: [], error: { code: "PreflightFailed", message: "" }, lastUpdatedDateTime: at(0) } }), "Failed");
});
