import t from "tap";
import { seed } from "../../../src/sandbox/index.js";
import { startWorker } from "../../../src/runtime.js";
import { generateWebhookSecret } from "../../../src/worker/webhook-delivery.js";
import { waitForJob } from "../../helpers/app.js";
import { as, GOVERNANCE_API_KEYS, monitorOf, post, startReceiver } from "../../helpers/governance.js";
import { sandboxRequest } from "../../helpers/sandbox.js";
import { lastSeq, sandboxRequests, sandboxState, type LoggedRequest } from "../../helpers/sandbox-admin.js";
import { startStack } from "../../helpers/stack.js";
import { until } from "../../helpers/until.js";

/**
 * api-contract v1.1 "Change governance" for fleet rotations (POST /v1/key-rotations), through the HTTP
 * API against the sandbox: a fleet is approved once, as a whole, on its parent (its children never wait
 * for an approval of their own); its `schedule` holds the parent, and its children stop at the window's
 * end without writing.
 */

const KEY = "https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048";
const KEY_V1 = `${KEY}/${seed.VERSION_1}`;
const V2 = "00000000000000000000000000000002";
const KEY_V2 = `${KEY}/${V2}`;
/** Seed services already on cmk-rsa-2048 v1 besides a fleet's. */
const SEED_ON_KEY = 2;
/** No role-propagation wait (the emulator's role assignments are old on its clock). */
const FAST = { CMK_ROLE_PROPAGATION_WINDOW_MS: "0", CMK_API_KEYS: GOVERNANCE_API_KEYS };

type Stack = Awaited<ReturnType<typeof startStack>>;
type Monitor = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const inMs = (ms: number) => new Date(Date.now() + ms).toISOString();

async function createFleet(stack: Stack, count: number): Promise<string[]> {
  const answer = await sandboxRequest(stack.sandbox, { method: "POST", path: "/_sandbox/scenarios", body: { action: "createFleet", keyUrl: KEY_V1, count } });
  if (answer.status !== 200) throw new Error(`createFleet: ${answer.text}`);
  return (answer.json as { fhirServiceIds: string[] }).fhirServiceIds;
}

async function childrenOf(stack: Stack, parentJobId: string): Promise<Monitor[]> {
  const found: Monitor[] = [];
  let url: string | undefined = `/v1/jobs?parentJobId=${parentJobId}&top=100`;
  while (url) {
    const page: Monitor = (await stack.app.inject({ method: "GET", url, headers: as("reader") })).json();
    found.push(...page.value);
    url = page.nextLink;
  }
  return found;
}

/** Requests a fleet rotation of the key makes before its first child: discovery's lists, the key and its versions. */
const fleetRequests = (requests: LoggedRequest[]) =>
  requests.filter((request) => /\/workspaces|\/fhirservices/i.test(request.path) || request.path.includes("/keys/cmk-rsa-2048"));
const puts = (requests: LoggedRequest[]) => requests.filter((request) => request.method === "PUT" && /\/fhirservices\/[^/?]+$/.test(request.path.split("?")[0]!));

async function keysInSandbox(stack: Stack): Promise<Map<string, string | undefined>> {
  const state = await sandboxState<{ fhirServices: Record<string, { id: string; properties?: { encryption?: { customerManagedKeyEncryption?: { keyEncryptionKeyUrl?: string } } } }> }>(stack.sandbox);
  return new Map(Object.values(state.fhirServices).map((service) => [service.id.toLowerCase(), service.properties?.encryption?.customerManagedKeyEncryption?.keyEncryptionKeyUrl]));
}

t.test("a fleet rotation is approved once, on its parent: it waits with no ARM request and no child, then its children run without approvals", async (t) => {
  const secret = generateWebhookSecret();
  const receiver = await startReceiver(t);
  const stack = await startStack(t, {
    env: { ...FAST, CMK_APPROVALS: "required", CMK_WEBHOOK_SECRET: secret, CMK_CALLBACK_ALLOWED_HOSTS: receiver.host },
  });
  const ids = await createFleet(stack, 4);
  const since = await lastSeq(stack.sandbox);
  const ticket = { system: "servicenow", id: "CHG-FLEET-APPROVE" };

  const accepted = await post(stack.app, "/v1/key-rotations", "cab", { keyUrl: KEY, targetVersion: V2, ticket, callbackUrl: receiver.url });
  t.equal(accepted.statusCode, 202, accepted.body);
  const parentId = accepted.json().id as string;
  t.match(accepted.json(), { operation: "RotateFleet", status: "NotStarted", currentStep: "AwaitingApproval", approval: { state: "Pending", expiresDateTime: String } });
  t.match((await post(stack.app, "/v1/key-rotations", "operator", { keyUrl: KEY, targetVersion: V2 })).json(), { code: "ChangeInProgress" }, "the key is held while its rotation waits");

  await until("the approval_requested webhook", () => receiver.received.length >= 1, 15_000);
  t.equal(receiver.received[0]!.headers["webhook-id"], `msg_${parentId}_approval_requested`, "job.approval_requested for the parent");
  const queue = (await stack.app.inject({ method: "GET", url: "/v1/jobs?approvalState=Pending", headers: as("approver") })).json().value as Monitor[];
  t.same(queue.map((job) => job.id), [parentId], "the approvers' queue holds the parent alone");
  t.match(await monitorOf(stack.app, parentId), { status: "NotStarted", currentStep: "AwaitingApproval", attempts: 0 });
  t.same(fleetRequests(await sandboxRequests(stack.sandbox, since)), [], "nothing about the fleet reached the emulator while it waits");
  t.same(await childrenOf(stack, parentId), [], "no child while it waits");

  const self = await post(stack.app, `/v1/jobs/${parentId}/approve`, "cab");
  t.equal(self.statusCode, 403);
  t.match(self.json(), { code: "SelfApprovalForbidden" });
  const approved = await post(stack.app, `/v1/jobs/${parentId}/approve`, "approver", { comment: "CAB 2026-11-29" });
  t.equal(approved.statusCode, 200, approved.body);
  t.match(approved.json(), { approval: { state: "Approved", decidedBy: "test-approver", comment: "CAB 2026-11-29" } });

  const { monitor } = await waitForJob(stack.app, parentId, 60_000);
  t.equal(monitor.status, "Succeeded", JSON.stringify(monitor.error ?? monitor.steps));
  const total = ids.length + SEED_ON_KEY;
  t.match(monitor.result.services, { total, succeeded: total, failed: 0, canceled: 0 });
  const children = await childrenOf(stack, parentId);
  t.equal(children.length, total);
  t.ok(children.every((child) => child.status === "Succeeded" && child.approval === undefined && child.ticket?.id === ticket.id), "children carry no approval of their own");
  t.ok(children.every((child) => child.steps[0].startedDateTime !== undefined && child.steps.every((step: Monitor) => step.name !== "AwaitingApproval")));
  const pending = (await stack.app.inject({ method: "GET", url: "/v1/jobs?approvalState=Pending", headers: as("approver") })).json().value as Monitor[];
  t.same(pending, [], "nothing awaits approval");
  const keys = await keysInSandbox(stack);
  t.ok(ids.every((id) => keys.get(id.toLowerCase()) === KEY_V2), "every fleet service on the target");

  await until("the parent's end webhook", () => receiver.received.length >= 2, 15_000);
  const approvalRequests = receiver.received.filter((delivery) => String(delivery.headers["webhook-id"]).endsWith("_approval_requested"));
  t.equal(approvalRequests.length, 1, "job.approval_requested went out once, for the parent");
  t.equal(receiver.received.length, 2, "and the parent's end: the children have no callbackUrl");
});

t.test("a rejected fleet rotation ends Canceled/Rejected with no child and nothing sent", async (t) => {
  const stack = await startStack(t, { env: { ...FAST, CMK_APPROVALS: "required" } });
  const ids = await createFleet(stack, 3);
  const since = await lastSeq(stack.sandbox);
  const parentId = (await post(stack.app, "/v1/key-rotations", "operator", { keyUrl: KEY, targetVersion: V2 })).json().id as string;
  const rejected = await post(stack.app, `/v1/jobs/${parentId}/reject`, "approver", { comment: "not this week" });
  t.equal(rejected.statusCode, 200, rejected.body);
  t.match(rejected.json(), { status: "Canceled", approval: { state: "Rejected", decidedBy: "test-approver" }, error: { code: "Rejected", target: KEY } });
  const { monitor } = await waitForJob(stack.app, parentId);
  t.match(monitor, { status: "Canceled", currentStep: "AwaitingApproval", error: { code: "Rejected", message: /not this week/ } });
  t.same(await childrenOf(stack, parentId), [], "no child");
  // A dry run never waits: it runs to its end, and the key is free again.
  const dry = await post(stack.app, "/v1/key-rotations", "operator", { keyUrl: KEY, targetVersion: V2, dryRun: true });
  t.equal(dry.statusCode, 202, dry.body);
  t.equal((await waitForJob(stack.app, dry.json().id, 60_000)).monitor.status, "Succeeded");
  t.same(puts(await sandboxRequests(stack.sandbox, since)), [], "nothing was written");
  const keys = await keysInSandbox(stack);
  t.ok(ids.every((id) => keys.get(id.toLowerCase()) === KEY_V1), "every service kept its key");
});

t.test("a fleet's window: the parent waits for notBefore, children that cannot begin writing before notAfter stop without writing", async (t) => {
  // Two worker slots for children (the parent holds a third), each child at least 1.5 s (the emulator's
  // operation): of 12 children at most 6 can begin in the 3.5 s the window stays open.
  const stack = await startStack(t, { lroMs: 1500, env: { ...FAST, CMK_WORKER_CONCURRENCY: "3" } });
  const ids = await createFleet(stack, 10);
  const since = await lastSeq(stack.sandbox);
  const schedule = { notBefore: inMs(1500), notAfter: inMs(5000) };
  const accepted = await post(stack.app, "/v1/key-rotations", "operator", { keyUrl: KEY, targetVersion: V2, schedule });
  t.equal(accepted.statusCode, 202, accepted.body);
  const parentId = accepted.json().id as string;
  t.match(accepted.json(), { status: "NotStarted", currentStep: "AwaitingChangeWindow", schedule });

  let checks = 0;
  while ((await monitorOf(stack.app, parentId)).currentStep === "AwaitingChangeWindow") {
    t.same(fleetRequests(await sandboxRequests(stack.sandbox, since)), [], "nothing about the fleet before notBefore");
    checks += 1;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  t.ok(checks > 0, "the parent was seen waiting");

  const { monitor } = await waitForJob(stack.app, parentId, 90_000);
  t.ok(Date.parse(monitor.steps[0].startedDateTime) >= Date.parse(schedule.notBefore), "the parent's first step started within the window");
  const counts = monitor.result.services;
  const total = ids.length + SEED_ON_KEY;
  t.equal(monitor.status, "Succeeded", "a child that missed the window is canceled, not failed");
  t.match(counts, { total, failed: 0, skipped: 0 });
  t.ok(counts.canceled > 0, `${counts.canceled} child(ren) missed the window`);
  t.equal(counts.succeeded + counts.canceled, total);

  const children = await childrenOf(stack, parentId);
  t.ok(children.every((child) => child.schedule?.notAfter === schedule.notAfter && child.schedule?.notBefore === undefined), "children carry the window's end");
  const missed = children.filter((child) => child.status === "Canceled");
  t.equal(missed.length, counts.canceled);
  t.ok(missed.every((child) => child.error?.code === "ChangeWindowMissed"), "each with ChangeWindowMissed");
  const written = puts(await sandboxRequests(stack.sandbox, since));
  t.equal(written.length, counts.succeeded, "one PUT per child that succeeded, none else");
  const keys = await keysInSandbox(stack);
  t.ok(missed.every((child) => keys.get(child.fhirServiceId.toLowerCase()) === KEY_V1), "the services of the missed children kept their key");
  t.ok(
    missed.every((child) => !written.some((request) => request.path.split("?")[0]!.toLowerCase() === new URL(child.fhirServiceId, "https://x").pathname.toLowerCase())),
    "and got no PUT",
  );
});

t.test("a fleet whose window passes before it starts ends ChangeWindowMissed with no child", async (t) => {
  const stack = await startStack(t, { worker: false, env: FAST });
  await createFleet(stack, 2);
  const since = await lastSeq(stack.sandbox);
  const schedule = { notAfter: inMs(800) };
  const parentId = (await post(stack.app, "/v1/key-rotations", "operator", { keyUrl: KEY, targetVersion: V2, schedule })).json().id as string;
  await until("the window closed", () => Date.now() > Date.parse(schedule.notAfter), 5_000);
  const worker = startWorker(stack.config, stack.azure, stack.app.log);
  t.teardown(() => worker.close());
  const { monitor } = await waitForJob(stack.app, parentId);
  t.match(monitor, { status: "Canceled", operation: "RotateFleet", error: { code: "ChangeWindowMissed", message: /before the change could start/ } });
  t.same(await childrenOf(stack, parentId), []);
  t.same(fleetRequests(await sandboxRequests(stack.sandbox, since)), [], "nothing was sent");
});

t.test("rollback of a fleet parent: a new parent, approved once, with one SetKey child per child that moved a service", async (t) => {
  const stack = await startStack(t, { env: { ...FAST, CMK_APPROVALS: "required" } });
  const ids = await createFleet(stack, 4);
  const ticket = { system: "servicenow", id: "CHG-FLEET-BACKOUT" };
  // The first subscription only: a single SetKey's pre-flight lists role assignments in its FHIR service's
  // subscription, so it cannot see fhir-other's (second subscription) grant at the vault in the first.
  const rotationId = (await post(stack.app, "/v1/key-rotations", "operator", { keyUrl: KEY, targetVersion: V2, ticket, subscriptions: [seed.SUBSCRIPTION_ID] })).json().id as string;

  const early = await post(stack.app, `/v1/jobs/${rotationId}/rollback`, "operator");
  t.equal(early.statusCode, 409, "a fleet that has not ended");
  t.match(early.json(), { code: "NotRollbackable", reasonCode: "NotSucceeded" });

  t.equal((await post(stack.app, `/v1/jobs/${rotationId}/approve`, "approver")).statusCode, 200);
  const { monitor: rotation } = await waitForJob(stack.app, rotationId, 60_000);
  t.equal(rotation.status, "Succeeded", JSON.stringify(rotation.error ?? rotation.steps));
  const total = ids.length + 1; // and fhir-uami
  t.match(rotation, { subscriptions: [seed.SUBSCRIPTION_ID] });
  const rotated = await childrenOf(stack, rotationId);
  t.equal(rotated.length, total);
  let keys = await keysInSandbox(stack);
  t.ok(rotated.every((child) => keys.get(child.fhirServiceId.toLowerCase()) === KEY_V2), "every service on the target");
  const since = await lastSeq(stack.sandbox);

  const accepted = await post(stack.app, `/v1/jobs/${rotationId}/rollback`, "operator", { ticket: { system: "servicenow", id: "CHG-FLEET-BACKOUT-2" } });
  t.equal(accepted.statusCode, 202, accepted.body);
  const rollbackId = accepted.json().id as string;
  t.equal(accepted.headers["operation-location"], `/v1/jobs/${rollbackId}`);
  t.match(accepted.json(), { operation: "RotateFleet", rollbackOf: rotationId, keyUrl: KEY, subscriptions: [seed.SUBSCRIPTION_ID], status: "NotStarted", currentStep: "AwaitingApproval", approval: { state: "Pending" } });
  t.match((await post(stack.app, "/v1/key-rotations", "operator", { keyUrl: KEY, targetVersion: V2 })).json(), { code: "ChangeInProgress" }, "the rollback holds the key");
  t.same(puts(await sandboxRequests(stack.sandbox, since)), [], "nothing written before its approval");
  t.same(await childrenOf(stack, rollbackId), []);
  t.equal((await post(stack.app, `/v1/jobs/${rollbackId}/approve`, "operator")).statusCode, 403, "four eyes on the rollback too");
  t.equal((await post(stack.app, `/v1/jobs/${rollbackId}/approve`, "approver")).statusCode, 200);

  const { monitor } = await waitForJob(stack.app, rollbackId, 60_000);
  t.equal(monitor.status, "Succeeded", JSON.stringify(monitor.error ?? monitor.steps));
  t.match(monitor.result, { targetKeyEncryptionKeyUrl: KEY_V1, services: { total, succeeded: total, failed: 0, skipped: 0, canceled: 0 } });
  t.same(monitor.steps.map((step: Monitor) => [step.name, step.status]), [["Discover", "Succeeded"], ["ResolveTarget", "Skipped"], ["Preflight", "Skipped"], ["FanOut", "Succeeded"], ["Aggregate", "Succeeded"]]);
  t.match(monitor.steps[0].message, new RegExp(`${total} child job\\(s\\) of fleet rotation ${rotationId} read: ${total} moved a service`));

  const children = await childrenOf(stack, rollbackId);
  t.equal(children.length, total, "one rollback child per child that moved a service");
  const originalOf = new Map(rotated.map((child) => [child.id, child]));
  t.ok(
    children.every(
      (child) =>
        child.operation === "SetKey" && child.status === "Succeeded" && child.approval === undefined && child.ticket?.id === "CHG-FLEET-BACKOUT-2" &&
        originalOf.get(child.rollbackOf)?.fhirServiceId === child.fhirServiceId,
    ),
    "each a SetKey undoing one original child, with no approval of its own",
  );
  keys = await keysInSandbox(stack);
  t.ok(rotated.every((child) => keys.get(child.fhirServiceId.toLowerCase()) === KEY_V1), "every service back on the version it had");
  const written = puts(await sandboxRequests(stack.sandbox, since));
  t.equal(written.length, total, "one write per service");
  t.equal(new Set(written.map((request) => request.path.split("?")[0]!.toLowerCase())).size, total);

  // Rolling the rollback back again would move them to V2: allowed, it changed something. Nothing to restore:
  const none = (await post(stack.app, "/v1/key-rotations", "operator", { keyUrl: KEY, targetVersion: seed.VERSION_1, subscriptions: [seed.SUBSCRIPTION_ID] })).json().id as string;
  t.equal((await post(stack.app, `/v1/jobs/${none}/approve`, "approver")).statusCode, 200);
  t.match((await waitForJob(stack.app, none, 60_000)).monitor, { status: "Succeeded", result: { services: { total, succeeded: 0, skipped: total } } });
  const nothing = await post(stack.app, `/v1/jobs/${none}/rollback`, "operator");
  t.equal(nothing.statusCode, 409);
  t.match(nothing.json(), { code: "NotRollbackable", reasonCode: "NoWrite", reason: /No child of fleet rotation/ });
});

t.test("rollback of a dry-run or rejected fleet is 409 NotRollbackable/NoWrite", async (t) => {
  const stack = await startStack(t, { env: { ...FAST, CMK_APPROVALS: "required" } });
  await createFleet(stack, 1);
  const dry = (await post(stack.app, "/v1/key-rotations", "operator", { keyUrl: KEY, targetVersion: V2, dryRun: true })).json().id as string;
  await waitForJob(stack.app, dry, 60_000);
  t.match((await post(stack.app, `/v1/jobs/${dry}/rollback`, "operator")).json(), { code: "NotRollbackable", reasonCode: "NoWrite", reason: /dry run/ });
  const rejected = (await post(stack.app, "/v1/key-rotations", "operator", { keyUrl: KEY, targetVersion: V2 })).json().id as string;
  t.equal((await post(stack.app, `/v1/jobs/${rejected}/reject`, "approver", { comment: "no" })).statusCode, 200);
  const answer = await post(stack.app, `/v1/jobs/${rejected}/rollback`, "operator");
  t.equal(answer.statusCode, 409);
  t.match(answer.json(), { code: "NotRollbackable", reasonCode: "NoWrite", reason: /Canceled, Rejected/ });
});
