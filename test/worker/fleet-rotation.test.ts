import t from "tap";
import { KeyClient } from "@azure/keyvault-keys";
import { seed } from "../../src/sandbox/index.js";
import { sha256Hex } from "../../src/plugins/app/authentication.js";
import { API_KEYS, KEYS, waitForJob } from "../helpers/app.js";
import { startStack } from "../helpers/stack.js";
import { listAll, sandboxCredential, sandboxHttpClient, sandboxRequest } from "../helpers/sandbox.js";
import { lastSeq, sandboxRequests, sandboxState, type LoggedRequest } from "../helpers/sandbox-admin.js";
import { startServerProcess, type ServerProcess } from "../helpers/server-process.js";
import { until } from "../helpers/until.js";
import { fhirId } from "../helpers/requests.js";

/** Fleet rotation (POST /v1/key-rotations) end to end: real Redis, the real SDK clients, the sandbox. */

const KEY = "https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048";
const KEY_V1 = `${KEY}/${seed.VERSION_1}`;
const KEY_V2 = `${KEY}/00000000000000000000000000000002`;
const SUB_A = seed.SUBSCRIPTION_ID;
const SUB_B = seed.OTHER_SUBSCRIPTION_ID;
/** Seed services already on cmk-rsa-2048 v1 besides a fleet: fhir-uami (user-assigned) and fhir-other (second subscription). */
const SEED_ON_KEY = 2;
const SCOPED_KEY = "test-scoped-operator-key";

type Stack = Awaited<ReturnType<typeof startStack>>;
type Monitor = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Fast children: no role-propagation wait (the fleet's role assignments are minutes old on the emulator's clock). */
const FAST = { CMK_ROLE_PROPAGATION_WINDOW_MS: "0", CMK_WORKER_CONCURRENCY: "20" };

const post = (stack: Stack, body: object, key: string = KEYS.operator, headers: Record<string, string> = {}) =>
  stack.app.inject({ method: "POST", url: "/v1/key-rotations", payload: body, headers: { "x-api-key": key, ...headers } });
const get = async (stack: Stack, url: string): Promise<Monitor> => (await stack.app.inject({ method: "GET", url, headers: { "x-api-key": KEYS.reader } })).json();
const createFleet = async (stack: Stack, body: object): Promise<string[]> => {
  const answer = await sandboxRequest(stack.sandbox, { method: "POST", path: "/_sandbox/scenarios", body: { action: "createFleet", keyUrl: KEY_V1, ...body } });
  if (answer.status !== 200) throw new Error(`createFleet: ${answer.text}`);
  return (answer.json as { fhirServiceIds: string[] }).fhirServiceIds;
};
async function rotate(stack: Stack, body: object, timeoutMs = 120_000): Promise<Monitor> {
  const accepted = await post(stack, body);
  if (accepted.statusCode !== 202) throw new Error(`not accepted: ${accepted.body}`);
  return (await waitForJob(stack.app, accepted.json().id, timeoutMs)).monitor;
}
async function children(stack: Stack, parentJobId: string, filters = ""): Promise<Monitor[]> {
  const found: Monitor[] = [];
  let url: string | undefined = `/v1/jobs?parentJobId=${parentJobId}&top=100${filters}`;
  while (url) {
    const page = await get(stack, url);
    found.push(...page.value);
    url = page.nextLink;
  }
  return found;
}
/** Every FHIR service's key URL as the emulator holds it, by lower-case id. */
async function keysInSandbox(stack: Stack): Promise<Map<string, string | undefined>> {
  const state = await sandboxState<{ fhirServices: Record<string, { id: string; properties?: { encryption?: { customerManagedKeyEncryption?: { keyEncryptionKeyUrl?: string } } } }> }>(stack.sandbox);
  return new Map(Object.values(state.fhirServices).map((service) => [service.id.toLowerCase(), service.properties?.encryption?.customerManagedKeyEncryption?.keyEncryptionKeyUrl]));
}
const arm = (requests: LoggedRequest[]) => requests.filter((request) => request.host === "management.azure.com");
const puts = (requests: LoggedRequest[]) => arm(requests).filter((request) => request.method === "PUT" && /\/fhirservices\/[^/?]+$/.test(request.path.split("?")[0]!));
const keyVersions = async (stack: Stack) =>
  listAll(new KeyClient("https://kvsandbox.vault.azure.net", sandboxCredential(stack.sandbox), { httpClient: sandboxHttpClient(stack.sandbox) }).listPropertiesOfKeyVersions("cmk-rsa-2048"));

t.test("a fleet over two subscriptions, more services than one ARM page: one PUT per service, at most 4 ARM reads per service, a new version made once", async (t) => {
  const stack = await startStack(t, { lroMs: 300, env: FAST });
  // 150 services in one workspace of the first subscription (two pages of ARM's list) and 30 in the second.
  await createFleet(stack, { count: 150, workspaces: 1 });
  await createFleet(stack, { count: 30, subscriptions: [SUB_B], workspaces: 1 });
  const versionsBefore = (await keyVersions(stack)).length;
  const since = await lastSeq(stack.sandbox);

  const accepted = await post(stack, { keyUrl: KEY, createNewVersion: true, ticket: { system: "servicenow", id: "CHG-FLEET-1" } });
  t.equal(accepted.statusCode, 202, accepted.body);
  t.equal(accepted.headers["operation-location"], `/v1/jobs/${accepted.json().id}`);
  t.match(accepted.json(), { operation: "RotateFleet", status: "NotStarted", keyUrl: KEY, ticket: { id: "CHG-FLEET-1" } });
  t.notOk(accepted.json().fhirServiceId, "a fleet names no one service");

  const { monitor, seen } = await waitForJob(stack.app, accepted.json().id, 120_000);
  t.equal(monitor.status, "Succeeded", JSON.stringify(monitor.error ?? monitor.steps));
  const total = 180 + SEED_ON_KEY;
  t.match(monitor.result, { services: { total, succeeded: total, failed: 0, skipped: 0, canceled: 0 } });
  const target = monitor.result.targetKeyEncryptionKeyUrl as string;
  t.match(target, new RegExp(`^${KEY}/[0-9a-f]{32}$`));
  t.same(monitor.steps.map((step: { name: string }) => step.name), ["Discover", "ResolveTarget", "Preflight", "FanOut", "Aggregate"]);
  t.match(monitor.steps[0].message, /Subscriptions 2 of 2 scanned, \d+ workspace\(s\), \d+ FHIR service\(s\) listed, 182 on cmk-rsa-2048/);
  const percents = seen.map((entry) => entry.percentComplete as number);
  t.same(percents, [...percents].sort((a, b) => a - b), "percentComplete only rises");
  t.ok(percents.some((percent) => percent > 20 && percent < 100), "and follows the children in between");
  t.equal((await keyVersions(stack)).length, versionsBefore + 1, "exactly one new key version");

  const keys = await keysInSandbox(stack);
  const fleetKeys = [...keys].filter(([id]) => id.includes("/fhirservices/fleet-"));
  t.equal(fleetKeys.length, 180);
  t.ok(fleetKeys.every(([, url]) => url === target), "every fleet service is on the target");
  t.equal(keys.get(fhirId("fhir-uami").toLowerCase()), target, "the user-assigned one too");

  const listed = await children(stack, monitor.id);
  t.equal(listed.length, total, "GET /v1/jobs?parentJobId= lists every child");
  t.ok(listed.every((child) => child.operation === "RotateKey" && child.parentJobId === monitor.id && child.status === "Succeeded" && child.ticket?.id === "CHG-FLEET-1"));
  t.equal((await children(stack, monitor.id, "&status=Failed")).length, 0, "with the other filters");

  const requests = await sandboxRequests(stack.sandbox, since);
  const written = puts(requests);
  t.equal(written.length, total, "one PUT per service");
  t.equal(new Set(written.map((request) => request.path.split("?")[0]!.toLowerCase())).size, total, "never two on one service");
  const reads = arm(requests).filter((request) => request.method === "GET");
  t.ok(reads.length / total <= 4, `ARM reads per service ${(reads.length / total).toFixed(2)} (≤ 4, discovery and polls included)`);
  const fleetLists = reads.filter((request) => request.path.startsWith(`/subscriptions/${SUB_A}/`) && /\/workspaces\/wsfleet0\/fhirservices$/.test(request.path));
  t.equal(fleetLists.length, 2, "the workspace's 150 services came in two pages");
  const vaultRoleLists = reads.filter((request) => request.path.includes("/vaults/kvsandbox/providers/Microsoft.Authorization/roleAssignments"));
  t.equal(vaultRoleLists.length, 2, "the vault's role assignments listed once for the fleet (every page)");

  // Everything on the target now: a second rotation to it skips them all and starts no child.
  const again = await rotate(stack, { keyUrl: KEY, targetVersion: target.split("/").pop() });
  t.equal(again.status, "Succeeded");
  t.match(again.result, { services: { total, succeeded: 0, skipped: total, failed: 0, canceled: 0 } });
  t.equal((await children(stack, again.id)).length, 0);
});

t.test("dry run: discovers and checks, lists what it would change, writes nothing", async (t) => {
  const stack = await startStack(t, { lroMs: 300, env: FAST });
  const ids = await createFleet(stack, { count: 12, subscriptions: [SUB_A, SUB_B] });
  const versionsBefore = (await keyVersions(stack)).length;
  const since = await lastSeq(stack.sandbox);
  const monitor = await rotate(stack, { keyUrl: KEY, createNewVersion: true, dryRun: true });
  t.equal(monitor.status, "Succeeded", JSON.stringify(monitor.error ?? {}));
  t.equal(monitor.dryRun, true);
  t.match(monitor.result, { dryRun: true, armWrites: 0, services: { total: 12 + SEED_ON_KEY, succeeded: 0, skipped: 0 } });
  t.same([...monitor.result.wouldChange].sort(), [...ids, fhirId("fhir-uami"), fhirId("fhir-other").replace(SUB_A, SUB_B).replace("rg-sandbox", "rg-other").replace("wssandbox", "wsother")].sort());
  t.same(monitor.steps.filter((step: { status: string }) => step.status === "Skipped").map((step: { name: string }) => step.name), ["FanOut", "Aggregate"]);
  const requests = await sandboxRequests(stack.sandbox, since);
  t.equal(requests.filter((request) => request.method !== "GET" && request.host !== "login.microsoftonline.com").length, 0, "no write anywhere (ARM or Key Vault)");
  t.equal((await keyVersions(stack)).length, versionsBefore, "no key version made");
  t.equal((await children(stack, monitor.id)).length, 0);
});

t.test("a child whose service has another change running waits its turn", async (t) => {
  const stack = await startStack(t, { lroMs: 2500, env: FAST });
  const ids = await createFleet(stack, { count: 6 });
  // fleet-1 gets its own change first (its key re-applied), still running when the rotation starts.
  const running = await stack.app.inject({ method: "POST", url: "/v1/change-requests", payload: { operation: "RecoverKeyAccess", fhirServiceId: ids[1] }, headers: { "x-api-key": KEYS.operator } });
  t.equal(running.statusCode, 202, running.body);
  await until("the SetKey is writing", async () => (await get(stack, `/v1/jobs/${running.json().id}`)).currentStep === "FollowOperation", 20_000);

  const accepted = await post(stack, { keyUrl: KEY, targetVersion: "00000000000000000000000000000002" });
  const parentId = accepted.json().id as string;
  let sawWaiting = false;
  await until("the rotation ends", async () => {
    const monitor = await get(stack, `/v1/jobs/${parentId}`);
    sawWaiting ||= /wait for another change on their service/.test(monitor.steps?.find((step: { name: string }) => step.name === "Aggregate")?.message ?? "") ||
      /wait for another change/.test(monitor.steps?.find((step: { name: string }) => step.name === "FanOut")?.message ?? "");
    return ["Succeeded", "Failed", "Canceled"].includes(monitor.status);
  }, 60_000);
  const monitor = await get(stack, `/v1/jobs/${parentId}`);
  t.ok(sawWaiting, "the parent said a child waits for another change");
  t.equal((await get(stack, `/v1/jobs/${running.json().id}`)).status, "Succeeded", "the running change was not disturbed");
  t.equal(monitor.status, "Succeeded", JSON.stringify(monitor.error ?? monitor.steps));
  t.match(monitor.result.services, { total: 6 + SEED_ON_KEY, succeeded: 6 + SEED_ON_KEY, failed: 0, skipped: 0 });
  const keys = await keysInSandbox(stack);
  t.ok(ids.every((id) => keys.get(id.toLowerCase()) === KEY_V2), "every fleet service on the target");
});

t.test("cancel of the parent cancels every child that has not written; counts equal the emulator's state", async (t) => {
  // Two writes a second: most children wait for their slot in the write budget when the cancel comes.
  const stack = await startStack(t, { lroMs: 300, env: { ...FAST, CMK_ARM_WRITES_PER_SECOND: "2", CMK_ARM_WRITE_BURST: "2" } });
  const ids = await createFleet(stack, { count: 30 });
  const since = await lastSeq(stack.sandbox);
  const accepted = await post(stack, { keyUrl: KEY, targetVersion: "00000000000000000000000000000002" });
  const parentId = accepted.json().id as string;
  await until("children started", async () => (await get(stack, `/v1/jobs/${parentId}`)).currentStep === "Aggregate", 30_000);
  const cancel = await stack.app.inject({ method: "POST", url: `/v1/jobs/${parentId}/cancel`, headers: { "x-api-key": KEYS.operator } });
  t.equal(cancel.statusCode, 202, cancel.body);
  const { monitor } = await waitForJob(stack.app, parentId, 60_000);
  t.equal(monitor.status, "Canceled", JSON.stringify(monitor.steps));
  t.match(monitor.error, { code: "Canceled", message: /had not written were canceled/ });
  const counts = monitor.result.services;
  t.equal(counts.total, 30 + SEED_ON_KEY);
  t.equal(counts.failed, 0);
  t.ok(counts.canceled > 0, `${counts.canceled} canceled`);
  t.equal(counts.succeeded + counts.canceled, counts.total);
  const keys = await keysInSandbox(stack);
  const moved = [...ids, fhirId("fhir-uami")].filter((id) => keys.get(id.toLowerCase()) === KEY_V2).length + (keys.get(fhirId("fhir-other").replace(SUB_A, SUB_B).replace("rg-sandbox", "rg-other").replace("wssandbox", "wsother").toLowerCase()) === KEY_V2 ? 1 : 0);
  t.equal(moved, counts.succeeded, "succeeded children are exactly the services on the target");
  t.equal(puts(await sandboxRequests(stack.sandbox, since)).length, counts.succeeded, "and exactly the PUTs sent");
  const listed = await children(stack, parentId);
  t.ok(listed.every((child) => child.status === "Succeeded" || child.status === "Canceled"));
});

t.test("throttling: a tight emulated write budget with 429s, and no child fails", async (t) => {
  // The emulator allows 3 writes then 2 a second; the service is told 4 a second, so ARM answers 429s.
  const stack = await startStack(t, { lroMs: 200, env: { ...FAST, CMK_ARM_WRITES_PER_SECOND: "4", CMK_ARM_WRITE_BURST: "4" } });
  await sandboxRequest(stack.sandbox, { method: "PUT", path: "/_sandbox/throttling", body: { writes: { capacity: 3, refillPerSecond: 2 } } });
  await createFleet(stack, { count: 20 });
  const since = await lastSeq(stack.sandbox);
  const monitor = await rotate(stack, { keyUrl: KEY, targetVersion: "00000000000000000000000000000002" });
  const requests = await sandboxRequests(stack.sandbox, since);
  t.ok(arm(requests).filter((request) => request.status === 429).length > 0, "ARM throttled some writes");
  t.equal(monitor.status, "Succeeded", JSON.stringify(monitor.error ?? {}));
  t.match(monitor.result.services, { total: 20 + SEED_ON_KEY, succeeded: 20 + SEED_ON_KEY, failed: 0 });
  t.equal(puts(requests).filter((request) => request.status < 300).length, 20 + SEED_ON_KEY, "one accepted PUT per service");
});

t.test("a scoped caller's rotation never touches a service outside its allow-list", async (t) => {
  const scoped = { name: "scoped-operator", sha256: sha256Hex(SCOPED_KEY), roles: ["operator"], subscriptions: [SUB_A] };
  const stack = await startStack(t, { lroMs: 200, env: { ...FAST, CMK_API_KEYS: JSON.stringify([...API_KEYS, scoped]) } });
  const ids = await createFleet(stack, { count: 10, subscriptions: [SUB_A, SUB_B] });
  t.match((await post(stack, { keyUrl: KEY, subscriptions: [SUB_B] }, SCOPED_KEY)).json(), { status: 403, code: "Forbidden", subscriptionId: SUB_B });
  const since = await lastSeq(stack.sandbox);
  const accepted = await post(stack, { keyUrl: KEY, targetVersion: "00000000000000000000000000000002" }, SCOPED_KEY);
  t.equal(accepted.statusCode, 202, accepted.body);
  t.same(accepted.json().subscriptions, [SUB_A], "limited to its allow-list when it names none");
  const { monitor } = await waitForJob(stack.app, accepted.json().id, 60_000);
  t.equal(monitor.status, "Succeeded", JSON.stringify(monitor.error ?? {}));
  t.equal(monitor.result.services.total, 5 + 1, "the five fleet services and fhir-uami of its subscription");
  const requests = await sandboxRequests(stack.sandbox, since);
  t.equal(requests.filter((request) => request.path.toLowerCase().includes(`/subscriptions/${SUB_B}`)).length, 0, "nothing of the other subscription was read or written");
  const keys = await keysInSandbox(stack);
  t.ok(ids.filter((id) => id.includes(SUB_B)).every((id) => keys.get(id.toLowerCase()) === KEY_V1), "its services are untouched");
  const visible = await stack.app.inject({ method: "GET", url: `/v1/jobs/${monitor.id}`, headers: { "x-api-key": SCOPED_KEY } });
  t.equal(visible.statusCode, 200, "the scoped caller sees its rotation");
});

t.test("RBAC and validation", async (t) => {
  const stack = await startStack(t, { worker: false });
  t.match((await post(stack, { keyUrl: KEY }, KEYS.reader)).json(), { status: 403, code: "Forbidden" }, "reader: 403");
  t.equal((await stack.app.inject({ method: "POST", url: "/v1/key-rotations", payload: { keyUrl: KEY } })).statusCode, 401);
  t.match((await post(stack, { keyUrl: KEY_V1 })).json(), { status: 400, code: "ValidationFailed", errors: [{ path: "/body/keyUrl", message: /versionless.*targetVersion/ }] });
  t.match((await post(stack, { keyUrl: KEY, targetVersion: "00000000000000000000000000000002", createNewVersion: true })).json(), { status: 400, errors: [{ path: "/body/createNewVersion" }] });
  t.match((await post(stack, { keyUrl: "https://evil.example.com/keys/cmk-rsa-2048" })).json(), { status: 400, errors: [{ path: "/body/keyUrl", message: /KeyHostAllowed/ }] });
  t.match((await post(stack, { keyUrl: KEY, subscriptions: ["nope"] })).json(), { status: 400, errors: [{ path: "/body/subscriptions/0" }] });
  t.match((await post(stack, { keyUrl: KEY, extra: true })).json(), { status: 400, code: "ValidationFailed" });
  t.match((await post(stack, { keyUrl: KEY, callbackUrl: "https://not-allowed.example.com/hook" })).json(), { status: 400, errors: [{ path: "/body/callbackUrl" }] });

  const first = await post(stack, { keyUrl: KEY }, KEYS.operator, { "idempotency-key": "fleet-1" });
  t.equal(first.statusCode, 202);
  const replay = await post(stack, { keyUrl: KEY }, KEYS.operator, { "idempotency-key": "fleet-1" });
  t.equal(replay.json().id, first.json().id, "Idempotency-Key: the first answer again");
  t.equal(replay.headers["idempotent-replayed"], "true");
  t.equal((await post(stack, { keyUrl: KEY, dryRun: true }, KEYS.operator, { "idempotency-key": "fleet-1" })).statusCode, 422);
  t.match((await post(stack, { keyUrl: KEY })).json(), { status: 409, code: "ChangeInProgress", activeJobId: first.json().id }, "one unfinished rotation per key");
  const cancel = await stack.app.inject({ method: "POST", url: `/v1/jobs/${first.json().id}/cancel`, headers: { "x-api-key": KEYS.operator } });
  t.equal(cancel.statusCode, 200, "a rotation no worker started is canceled at once");
  const audit = await stack.app.inject({ method: "GET", url: "/v1/audit?top=20", headers: { "x-api-key": KEYS.admin } });
  t.ok(audit.json().value.some((entry: Monitor) => entry.outcome === "Accepted" && entry.operation === "RotateFleet" && entry.keyEncryptionKeyUrl === KEY), "the accepted rotation is audited");
  t.ok(audit.json().value.some((entry: Monitor) => entry.outcome === "Refused" && entry.operation === "RotateFleet"), "and the refused ones");
});

t.test("createNewVersion: a parent retried after making its version adopts it instead of making another", async (t) => {
  const stack = await startStack(t, { lroMs: 200, env: FAST, worker: false });
  await createFleet(stack, { count: 3 });
  const accepted = await post(stack, { keyUrl: KEY, createNewVersion: true });
  const parentId = accepted.json().id as string;
  // As an earlier attempt would have left it: the intent recorded, the version made, then the worker gone.
  const before = await keyVersions(stack);
  await stack.app.jobStore.fleets.newVersionIntent(parentId, { versionsBefore: before.map((version) => version.id!), dateTime: new Date().toISOString() });
  const made = await new KeyClient("https://kvsandbox.vault.azure.net", sandboxCredential(stack.sandbox), { httpClient: sandboxHttpClient(stack.sandbox) }).rotateKey("cmk-rsa-2048");
  const { startWorker } = await import("../../src/runtime.js");
  const worker = startWorker(stack.config, stack.azure, stack.app.log);
  t.teardown(() => worker.close());
  const { monitor } = await waitForJob(stack.app, parentId, 60_000);
  t.equal(monitor.status, "Succeeded", JSON.stringify(monitor.error ?? {}));
  t.equal(monitor.result.targetKeyEncryptionKeyUrl, made.id, "the version the earlier attempt made");
  t.match(monitor.steps[1].message, /made by an earlier attempt/);
  t.equal((await keyVersions(stack)).length, before.length + 1, "no second version");
});

t.test("a worker killed mid fan-out: another resumes the parent with no duplicate child or PUT", async (t) => {
  const { app, sandbox, config } = await startStack(t, { lroMs: 300, worker: false, env: FAST });
  const stack = { app, sandbox } as Stack;
  await createFleet(stack, { count: 60, subscriptions: [SUB_A, SUB_B] });
  const env = {
    REDIS_URL: config.REDIS_URL,
    CMK_QUEUE_PREFIX: config.CMK_QUEUE_PREFIX,
    CMK_SANDBOX_URL: sandbox.url,
    CMK_SANDBOX_CA_FILE: sandbox.caFile,
    CMK_WORKER_LOCK_MS: "1500",
    CMK_ARM_POLL_INTERVAL_MS: "100",
    CMK_WORKER_CONCURRENCY: "10",
    CMK_ROLE_PROPAGATION_WINDOW_MS: "0",
    // Slow writes: the parent is still fanning out or following its children when it is killed.
    CMK_ARM_WRITES_PER_SECOND: "5",
    CMK_ARM_WRITE_BURST: "5",
  };
  const workers: ServerProcess[] = [];
  t.teardown(() => workers.forEach((worker) => worker.child.kill("SIGKILL")));
  const since = await lastSeq(sandbox);
  workers.push(startServerProcess({ CMK_ROLE: "worker", LOG_LEVEL: "warn", ...env }));
  const accepted = await post(stack, { keyUrl: KEY, createNewVersion: true });
  const parentId = accepted.json().id as string;
  await until("children are running", async () => {
    const monitor = await get(stack, `/v1/jobs/${parentId}`);
    return monitor.currentStep === "Aggregate" && /ended: [1-9]/.test(monitor.steps.at(-1).message ?? "");
  }, 60_000);
  workers[0]!.child.kill("SIGKILL");
  t.equal(await workers[0]!.exited, "SIGKILL");
  workers.push(startServerProcess({ CMK_ROLE: "worker", LOG_LEVEL: "warn", ...env }));
  const { monitor } = await waitForJob(app, parentId, 120_000);
  t.equal(monitor.status, "Succeeded", JSON.stringify(monitor.error ?? monitor.steps) + workers[1]!.output());
  t.ok(monitor.attempts >= 2, "the second worker took the parent over");
  const total = 60 + SEED_ON_KEY;
  t.match(monitor.result.services, { total, succeeded: total, failed: 0 });
  const listed = await children(stack, parentId);
  t.equal(listed.length, total, "no duplicate child");
  t.equal(new Set(listed.map((child) => child.fhirServiceId.toLowerCase())).size, total);
  const requests = await sandboxRequests(sandbox, since);
  const written = puts(requests).filter((request) => request.status < 300);
  t.equal(written.length, total, "exactly one accepted PUT per service");
  t.equal(requests.filter((request) => request.method === "POST" && request.path.includes("/keys/cmk-rsa-2048/rotate")).length, 1, "one new key version");
  const keys = await keysInSandbox(stack);
  t.equal([...keys.values()].filter((url) => url === monitor.result.targetKeyEncryptionKeyUrl).length, total);
});
