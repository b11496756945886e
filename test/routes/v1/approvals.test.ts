import t from "tap";
import { Webhook } from "standardwebhooks";
import { APPROVER_APP, OPERATOR_APP } from "../../../src/sandbox/seed.js";
import { generateWebhookSecret } from "../../../src/worker/webhook-delivery.js";
import { waitForJob } from "../../helpers/app.js";
import { as, GOVERNANCE_API_KEYS, monitorOf, post, startReceiver } from "../../helpers/governance.js";
import { fhirId, KEY_V2, setKey, uamiId } from "../../helpers/requests.js";
import { fhirPuts, lastSeq, sandboxRequests } from "../../helpers/sandbox-admin.js";
import { startStack } from "../../helpers/stack.js";
import { callerToken } from "../../helpers/tokens.js";
import { until } from "../../helpers/until.js";

/**
 * api-contract v1.1 "Change governance", approvals, through the HTTP API against the sandbox (real
 * Redis, the real SDK clients, a worker running): with CMK_APPROVALS=required a change waits, holding its
 * FHIR service, and nothing reaches ARM until someone other than its creator approves it.
 */

const armCallsOn = async (sandbox: Parameters<typeof sandboxRequests>[0], since: number, fhirService: string) =>
  (await sandboxRequests(sandbox, since)).filter((request) => request.path.toLowerCase().includes(`/fhirservices/${fhirService}`));

t.test("with approvals required, a change waits for a second principal, then runs", async (t) => {
  const secret = generateWebhookSecret();
  const receiver = await startReceiver(t);
  const { app, sandbox } = await startStack(t, {
    env: { CMK_APPROVALS: "required", CMK_API_KEYS: GOVERNANCE_API_KEYS, CMK_WEBHOOK_SECRET: secret, CMK_CALLBACK_ALLOWED_HOSTS: receiver.host },
  });
  const since = await lastSeq(sandbox);
  const ticket = { system: "servicenow", id: "CHG-APPROVE-1" };

  const accepted = await post(app, "/v1/change-requests", "cab", setKey("fhir-sys", KEY_V2, { type: "SystemAssigned" }, { ticket, callbackUrl: receiver.url }));
  t.equal(accepted.statusCode, 202);
  const jobId = accepted.json().id as string;
  t.match(accepted.json(), { status: "NotStarted", currentStep: "AwaitingApproval", approval: { state: "Pending", expiresDateTime: String }, createdBy: "test-cab" });

  // A dry run never waits: it runs (and ends) while the change waits, so the worker is at work.
  const dry = await post(app, "/v1/change-requests", "operator", setKey("fhir-uami", KEY_V2, { type: "UserAssigned", userAssignedIdentityId: uamiId("uami-sandbox") }, { dryRun: true }));
  t.equal(dry.statusCode, 202);
  t.notOk(dry.json().approval, "a dry run needs no approval");
  t.equal((await waitForJob(app, dry.json().id)).monitor.status, "Succeeded", "the dry run ran to its end");

  await t.test("job.approval_requested: a Standard Webhooks delivery to the callbackUrl when it starts waiting", async (t) => {
    await until("the approval_requested webhook", () => receiver.received.length >= 1, 15_000);
    const [delivery] = receiver.received;
    t.equal(delivery!.headers["webhook-id"], `msg_${jobId}_approval_requested`);
    const payload = new Webhook(secret).verify(delivery!.body, {
      "webhook-id": String(delivery!.headers["webhook-id"]),
      "webhook-timestamp": String(delivery!.headers["webhook-timestamp"]),
      "webhook-signature": String(delivery!.headers["webhook-signature"]),
    }) as { type: string; data: { id: string; approval: { state: string }; ticket: unknown } };
    t.equal(payload.type, "job.approval_requested");
    t.match(payload.data, { id: jobId, status: "NotStarted", currentStep: "AwaitingApproval", approval: { state: "Pending" }, ticket });
    t.match((await monitorOf(app, jobId)).callback, { status: "Pending", deliveries: [{ type: "job.approval_requested", outcome: "Delivered" }] }, "the end's webhook is still to come");
  });

  await t.test("while it waits: NotStarted, the service locked, no ARM request about it", async (t) => {
    t.match(await monitorOf(app, jobId), { status: "NotStarted", currentStep: "AwaitingApproval", attempts: 0, approval: { state: "Pending" } });
    const second = await post(app, "/v1/change-requests", "operator", setKey("fhir-sys"));
    t.equal(second.statusCode, 409);
    t.match(second.json(), { code: "ChangeInProgress", activeJobId: jobId });
    t.same(await armCallsOn(sandbox, since, "fhir-sys"), [], "no request about fhir-sys reached the emulator");
    const pending = await app.inject({ method: "GET", url: "/v1/jobs?approvalState=Pending", headers: as("approver") });
    t.equal(pending.statusCode, 200, "an approver may read the jobs it judges");
    t.same(pending.json().value.map((job: { id: string }) => job.id), [jobId], "the approvers' queue");
  });

  await t.test("the creator may not approve (four eyes), nor may an operator without the approver capability", async (t) => {
    const self = await post(app, `/v1/jobs/${jobId}/approve`, "cab", { comment: "looks fine to me" });
    t.equal(self.statusCode, 403);
    t.match(self.json(), { code: "SelfApprovalForbidden", jobId });
    const operator = await post(app, `/v1/jobs/${jobId}/approve`, "operator");
    t.equal(operator.statusCode, 403);
    t.match(operator.json(), { code: "Forbidden", requiredRole: "approver" });
    const reject = await post(app, `/v1/jobs/${jobId}/reject`, "operator", { comment: "no" });
    t.equal(reject.statusCode, 403, "reject needs the capability too");
    t.equal((await monitorOf(app, jobId)).approval.state, "Pending", "nothing was decided");
  });

  await t.test("another principal approves: the job runs, one ARM write", async (t) => {
    const approved = await post(app, `/v1/jobs/${jobId}/approve`, "approver", { comment: "CAB 2026-11-30 approved" });
    t.equal(approved.statusCode, 200);
    t.match(approved.json(), { id: jobId, approval: { state: "Approved", decidedBy: "test-approver", decidedDateTime: String, comment: "CAB 2026-11-30 approved" } });
    t.notOk(approved.json().approval.expiresDateTime, "a decided approval has no expiry");
    const { monitor } = await waitForJob(app, jobId);
    t.match(monitor, { status: "Succeeded", approval: { state: "Approved", decidedBy: "test-approver" }, result: { keyEncryptionKeyUrl: KEY_V2, armWrites: 1 } });
    t.equal(fhirPuts(await sandboxRequests(sandbox, since), "fhir-sys").length, 1, "exactly one PUT on fhir-sys");
    const again = await post(app, `/v1/jobs/${jobId}/approve`, "admin");
    t.equal(again.statusCode, 409);
    t.match(again.json(), { code: "NotAwaitingApproval", approvalState: "Approved" });

    await until("the end's webhook", () => receiver.received.length >= 2, 15_000);
    t.match(JSON.parse(receiver.received[1]!.body), { id: jobId, status: "Succeeded", approval: { state: "Approved", decidedBy: "test-approver", comment: "CAB 2026-11-30 approved" } }, "the decision is in the job's webhook");
  });

  await t.test("the audit trail: accepted by the creator, approved by the approver, then the outcome", async (t) => {
    const entries = (await app.inject({ method: "GET", url: `/v1/audit?ticketId=${ticket.id}`, headers: as("admin") })).json().value as Array<Record<string, unknown>>;
    t.match(
      entries.map(({ outcome, principal, comment, jobId: id }) => ({ outcome, principal, comment, jobId: id })),
      [
        { outcome: "Succeeded", jobId },
        { outcome: "Approved", principal: { name: "test-approver", kind: "apiKey" }, comment: "CAB 2026-11-30 approved", jobId },
        { outcome: "Accepted", principal: { name: "test-cab" }, jobId },
      ],
    );
  });
});

t.test("two approvers at once: exactly one wins", async (t) => {
  const { app } = await startStack(t, { worker: false, env: { CMK_APPROVALS: "required", CMK_API_KEYS: GOVERNANCE_API_KEYS } });
  for (const [round, fhirService] of ["fhir-sys", "fhir-uami", "fhir-norole"].entries()) {
    const jobId = (await post(app, "/v1/change-requests", "operator", setKey(fhirService))).json().id as string;
    const answers = await Promise.all([
      post(app, `/v1/jobs/${jobId}/approve`, "approver", { comment: "first" }),
      post(app, `/v1/jobs/${jobId}/approve`, "admin", { comment: "second" }),
      post(app, `/v1/jobs/${jobId}/reject`, "cab", { comment: "third" }),
    ]);
    const codes = answers.map((answer) => answer.statusCode).sort();
    t.same(codes, [200, 409, 409], `round ${round}: one decision, two NotAwaitingApproval`);
    const winner = answers.find((answer) => answer.statusCode === 200)!.json().approval;
    t.equal((await monitorOf(app, jobId)).approval.decidedBy, winner.decidedBy, "the monitor shows the winner");
    if (winner.state === "Approved") await post(app, `/v1/jobs/${jobId}/cancel`, "operator");
  }
});

t.test("rejection ends the change Canceled/Rejected and frees the service", async (t) => {
  const secret = generateWebhookSecret();
  const receiver = await startReceiver(t);
  const { app, sandbox } = await startStack(t, {
    env: { CMK_APPROVALS: "required", CMK_API_KEYS: GOVERNANCE_API_KEYS, CMK_WEBHOOK_SECRET: secret, CMK_CALLBACK_ALLOWED_HOSTS: receiver.host },
  });
  const since = await lastSeq(sandbox);
  const ticket = { system: "servicenow", id: "CHG-REJECT-1" };
  const jobId = (await post(app, "/v1/change-requests", "operator", setKey("fhir-sys", KEY_V2, { type: "SystemAssigned" }, { ticket, callbackUrl: receiver.url }))).json().id as string;

  const noComment = await post(app, `/v1/jobs/${jobId}/reject`, "approver", {});
  t.equal(noComment.statusCode, 400, "a rejection says why");
  t.match(noComment.json(), { code: "ValidationFailed", errors: [{ path: "/body/comment" }] });

  const rejected = await post(app, `/v1/jobs/${jobId}/reject`, "approver", { comment: "outside the freeze window" });
  t.equal(rejected.statusCode, 200);
  t.match(rejected.json(), {
    status: "Canceled",
    error: { code: "Rejected", message: /test-approver.*outside the freeze window/ },
    approval: { state: "Rejected", decidedBy: "test-approver", comment: "outside the freeze window" },
  });
  const next = await post(app, "/v1/change-requests", "operator", setKey("fhir-sys", KEY_V2, { type: "SystemAssigned" }, { dryRun: true }));
  t.equal(next.statusCode, 202, "the service is free");
  const after = await post(app, `/v1/jobs/${jobId}/approve`, "admin");
  t.equal(after.statusCode, 409);
  t.match(after.json(), { code: "NotAwaitingApproval", jobStatus: "Canceled" });

  await until("the end's webhook", () => receiver.received.some((delivery) => !JSON.parse(delivery.body).type), 15_000);
  const end = JSON.parse(receiver.received.find((delivery) => !JSON.parse(delivery.body).type)!.body);
  t.match(end, { id: jobId, status: "Canceled", error: { code: "Rejected" }, approval: { state: "Rejected", decidedBy: "test-approver", comment: "outside the freeze window" } });

  const entries = (await app.inject({ method: "GET", url: `/v1/audit?ticketId=${ticket.id}`, headers: as("admin") })).json().value as Array<Record<string, unknown>>;
  t.match(
    entries.map(({ outcome, code, principal, comment }) => ({ outcome, code, principal, comment })),
    [
      { outcome: "Rejected", principal: { name: "test-approver" }, comment: "outside the freeze window" },
      { outcome: "Canceled", code: "Rejected" },
      { outcome: "Accepted", principal: { name: "test-operator" } },
    ],
  );
  await waitForJob(app, next.json().id);
  t.same(fhirPuts(await sandboxRequests(sandbox, since), "fhir-sys"), [], "nothing was written");
});

t.test("an unapproved change expires after CMK_APPROVAL_TTL_HOURS: Canceled/ApprovalExpired, the service freed", async (t) => {
  // 0.0002 h = 720 ms: the delayed job comes due and the worker's gate ends it.
  const { app, sandbox } = await startStack(t, { env: { CMK_APPROVALS: "required", CMK_APPROVAL_TTL_HOURS: "0.0002", CMK_API_KEYS: GOVERNANCE_API_KEYS } });
  const since = await lastSeq(sandbox);
  const ticket = { system: "servicenow", id: "CHG-EXPIRE-1" };
  const jobId = (await post(app, "/v1/change-requests", "operator", setKey("fhir-sys", KEY_V2, { type: "SystemAssigned" }, { ticket }))).json().id as string;
  const { monitor } = await waitForJob(app, jobId);
  t.match(monitor, { status: "Canceled", currentStep: "AwaitingApproval", error: { code: "ApprovalExpired" }, approval: { state: "Expired", decidedDateTime: String } });
  t.ok(monitor.steps.every((step: { status: string }) => step.status === "Skipped"), "no step ran");
  const late = await post(app, `/v1/jobs/${jobId}/approve`, "approver");
  t.equal(late.statusCode, 409, "too late to approve");
  t.same(await armCallsOn(sandbox, since, "fhir-sys"), [], "nothing about fhir-sys reached ARM");
  t.equal((await post(app, "/v1/change-requests", "operator", setKey("fhir-sys", KEY_V2, { type: "SystemAssigned" }, { dryRun: true }))).statusCode, 202, "the service is free");
  const entries = (await app.inject({ method: "GET", url: `/v1/audit?ticketId=${ticket.id}`, headers: as("admin") })).json().value as Array<Record<string, unknown>>;
  t.match(entries[0], { outcome: "Canceled", code: "ApprovalExpired", jobId }, "the expiry is in the audit trail");
});

t.test("Entra ID: portal-approver (CMK.Approver) approves what portal-operator submitted", async (t) => {
  const { app, sandbox } = await startStack(t, { worker: false, env: { CMK_APPROVALS: "required" } });
  const [operator, approver] = await Promise.all([callerToken(sandbox, OPERATOR_APP), callerToken(sandbox, APPROVER_APP)]);
  const submitted = await app.inject({ method: "POST", url: "/v1/change-requests", headers: { authorization: `Bearer ${operator}` }, payload: setKey("fhir-uami", KEY_V2, { type: "UserAssigned", userAssignedIdentityId: uamiId("uami-sandbox") }) });
  t.equal(submitted.statusCode, 202);
  const jobId = submitted.json().id as string;
  const byOperator = await app.inject({ method: "POST", url: `/v1/jobs/${jobId}/approve`, headers: { authorization: `Bearer ${operator}` } });
  t.equal(byOperator.statusCode, 403, "CMK.Operator alone may not approve");
  const approved = await app.inject({ method: "POST", url: `/v1/jobs/${jobId}/approve`, headers: { authorization: `Bearer ${approver}` } });
  t.equal(approved.statusCode, 200, "no body at all is an empty comment");
  t.match(approved.json().approval, { state: "Approved", decidedBy: new RegExp(APPROVER_APP.clientId) });
  t.equal(approved.json().fhirServiceId, fhirId("fhir-uami"));
  await post(app, `/v1/jobs/${jobId}/cancel`, "operator");
});

t.test("approvals not required: nothing waits, and approve answers 409", async (t) => {
  const { app } = await startStack(t, { worker: false, env: { CMK_API_KEYS: GOVERNANCE_API_KEYS } });
  const accepted = await post(app, "/v1/change-requests", "operator", setKey("fhir-sys"));
  t.notOk(accepted.json().approval);
  t.equal(accepted.json().currentStep, undefined);
  const approve = await post(app, `/v1/jobs/${accepted.json().id}/approve`, "approver");
  t.equal(approve.statusCode, 409);
  t.match(approve.json(), { code: "NotAwaitingApproval", approvalState: "None" });
});
