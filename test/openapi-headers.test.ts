import { readFile } from "node:fs/promises";
import t, { type Test } from "tap";
import type { FastifyInstance, InjectOptions } from "fastify";
import { buildTestApp, KEYS, testConfig, waitForJob } from "./helpers/app.js";
import { skipArmOperation, startStack } from "./helpers/stack.js";
import { setFaults } from "./helpers/sandbox-admin.js";
import { fhirId, KEY_V1, KEY_V2, SUB, uamiId } from "./helpers/requests.js";
import { GOVERNANCE_API_KEYS, GOVERNANCE_KEYS } from "./helpers/governance.js";
import { fingerprint } from "../src/job-store/idempotency.js";
import { CHANGE_REQUEST_EXAMPLES, TEMPLATE_REQUEST_EXAMPLES } from "../src/schemas/examples.js";

/**
 * The document against real answers: every header it declares for a status is in an answer with that
 * status, every header that matters to a client (below) in an answer is declared for its status, each
 * answer's media type is declared, and each problem is one of the status's named examples.
 */

interface ResponseObject {
  headers?: Record<string, unknown>;
  content?: Record<string, { examples?: Record<string, { value: { code: string; title: string; type: string } }> }>;
}
const document = JSON.parse(await readFile(new URL("../openapi/openapi.json", import.meta.url), "utf8")) as {
  paths: Record<string, Record<string, { requestBody?: unknown; responses: Record<string, ResponseObject> }>>;
};

/** What a client acts on: where to poll, when to retry, whether a retry was replayed, how to authenticate, its rate limit. */
const MATTERS = /^(operation-location|location|retry-after|idempotent-replayed|www-authenticate|x-ratelimit-.*|ratelimit.*)$/;

const JOB = "00000000-0000-4000-8000-000000000000";
const PARAMS: Record<string, string> = { jobId: JOB, subscriptionId: SUB, resourceGroup: "rg-sandbox", workspace: "wssandbox", fhirService: "fhir-sys" };
const urlOf = (path: string, params: Record<string, string> = {}) => path.replace(/\{(\w+)\}/g, (_match, name: string) => params[name] ?? PARAMS[name]!);
const operations = Object.entries(document.paths).flatMap(([path, methods]) => Object.keys(methods).map((method) => ({ path, method })));

interface Answer {
  status: number;
  headers: Record<string, unknown>;
  body: string;
}
const answers = new Map<string, Answer[]>();

/** Sends a request to the operation `method path` (a path of the document) and keeps the answer. */
async function call(app: FastifyInstance, method: string, path: string, options: Omit<InjectOptions, "method" | "url"> & { params?: Record<string, string>; query?: string } = {}) {
  const { params, query, ...rest } = options;
  const response = await app.inject({ ...rest, method: method.toUpperCase() as "GET", url: urlOf(path, params) + (query ?? "") });
  const key = `${method} ${path} ${response.statusCode}`;
  answers.set(key, [...(answers.get(key) ?? []), { status: response.statusCode, headers: response.headers, body: response.body }]);
  return response;
}

const as = (key: string) => ({ "x-api-key": key });

t.test("the headers, media types and problem examples the document declares are what the API answers", async (t) => {
  const { app, sandbox } = await startStack(t, { lroMs: 1000, env: { CMK_API_KEYS: GOVERNANCE_API_KEYS } });
  const exampleSetKey = CHANGE_REQUEST_EXAMPLES.SetKey.value;

  // Every /v1 operation without a credential; every POST with a body too large, and not JSON.
  for (const { path, method } of operations) {
    if (path.startsWith("/v1/")) await call(app, method, path);
    if (method !== "post") continue;
    const operator = as(KEYS.admin);
    await call(app, method, path, { headers: { ...operator, "content-type": "application/json" }, payload: JSON.stringify({ padding: "x".repeat(70 * 1024) }) });
    await call(app, method, path, { headers: { ...operator, "content-type": "application/xml" }, payload: "<change/>" });
  }

  // Change requests: accepted, replayed, busy, in progress, key reused, refused.
  const submit = (payload: object, headers: Record<string, string> = {}, key: string = KEYS.operator) => call(app, "post", "/v1/change-requests", { payload, headers: { ...as(key), ...headers } });
  const accepted = await submit(exampleSetKey, { "idempotency-key": "first" });
  t.equal(accepted.statusCode, 202, accepted.body);
  const jobId = accepted.json().id as string;
  t.equal((await submit(exampleSetKey, { "idempotency-key": "first" })).headers["idempotent-replayed"], "true");
  // Problems keep their extension members through the problem+json serializer.
  t.match((await submit({ ...exampleSetKey, keyEncryptionKeyUrl: KEY_V1 })).json(), { code: "ChangeInProgress", activeJobId: jobId, fhirServiceId: exampleSetKey.fhirServiceId, instance: "/v1/change-requests" });
  t.equal((await submit({ ...exampleSetKey, keyEncryptionKeyUrl: KEY_V1 }, { "idempotency-key": "first" })).json().code, "IdempotencyKeyReused");
  // Defaults spelled out: the fingerprint is of the body as the route sees it.
  const pending = { operation: "SetKey", fhirServiceId: fhirId("fhir-norole"), keyEncryptionKeyUrl: KEY_V1, identity: { type: "SystemAssigned" }, dryRun: false, acknowledgeIdentityTypeChange: false };
  // Another request holds the key and has not added its job yet.
  await app.jobStore.idempotency.reserve("test-operator", "pending", fingerprint(pending), "00000000-0000-4000-8000-000000000001");
  t.equal((await submit(pending, { "idempotency-key": "pending" })).json().code, "RequestInProgress");
  t.match((await submit({ operation: "SetKey", fhirServiceId: fhirId("fhir-sys"), identity: { type: "System" } })).json(), {
    code: "ValidationFailed",
    errors: [{ path: "/body/keyEncryptionKeyUrl" }, { path: "/body/identity/type" }],
  });
  t.match((await submit(exampleSetKey, {}, KEYS.reader)).json(), { code: "Forbidden", requiredRole: "operator" });

  // Jobs: a monitor while running and once ended, the list, the event stream, cancels.
  const monitor = (id: string) => call(app, "get", "/v1/jobs/{jobId}", { params: { jobId: id }, headers: as(KEYS.reader) });
  t.ok((await monitor(jobId)).headers["retry-after"], "Retry-After while running");
  await skipArmOperation(app, sandbox, jobId, 1);
  await waitForJob(app, jobId, 60_000);
  t.notOk((await monitor(jobId)).headers["retry-after"], "none once ended");
  t.equal((await monitor("not-a-job")).statusCode, 400);
  t.equal((await monitor(JOB)).statusCode, 404);
  t.equal((await call(app, "get", "/v1/jobs", { headers: as(KEYS.reader) })).statusCode, 200);
  t.equal((await call(app, "get", "/v1/jobs", { headers: as(KEYS.reader), query: "?top=500" })).statusCode, 400);
  const stream = await call(app, "get", "/v1/jobs/{jobId}/events", { params: { jobId }, headers: as(KEYS.reader) });
  t.equal(stream.statusCode, 200);
  const lastEventId = [...stream.body.matchAll(/^id: (.+)$/gm)].at(-1)?.[1];
  t.ok(lastEventId, "the stream names its events");
  t.equal((await call(app, "get", "/v1/jobs/{jobId}/events", { params: { jobId }, headers: { ...as(KEYS.reader), "last-event-id": lastEventId! } })).statusCode, 204);

  const cancel = (id: string) => call(app, "post", "/v1/jobs/{jobId}/cancel", { params: { jobId: id }, headers: as(KEYS.operator) });
  t.match((await cancel(jobId)).json(), { code: "NotCancellable", jobId, jobStatus: "Succeeded" }, "an ended job");
  t.equal((await cancel(JOB)).statusCode, 404);
  // Key Vault slow twice: the worker holds the job in Preflight, where a cancel is requested (202).
  await setFaults(sandbox, { rules: [{ service: "keyvault", method: "GET", status: 503, probability: 1, times: 2, retryAfterSeconds: 1 }] });
  const slow = (await submit({ ...exampleSetKey, keyEncryptionKeyUrl: KEY_V1 })).json().id as string;
  const deadline = Date.now() + 15_000;
  while ((await app.inject({ method: "GET", url: `/v1/jobs/${slow}`, headers: as(KEYS.reader) })).json().currentStep !== "Preflight" && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
  t.equal((await cancel(slow)).statusCode, 202);
  await waitForJob(app, slow, 60_000);
  await setFaults(sandbox, { rules: [] });
  t.equal((await cancel(slow)).statusCode, 200, "a Canceled job");

  // Governance: a rollback refused (fhir-sys had a Microsoft-managed key) and one accepted; approve and
  // reject against an API that requires approvals (no worker: nothing runs).
  const rollback = (id: string) => call(app, "post", "/v1/jobs/{jobId}/rollback", { params: { jobId: id }, headers: as(KEYS.operator), payload: {} });
  t.match((await rollback(jobId)).json(), { code: "NotRollbackable", reasonCode: "MicrosoftManagedKey" });
  const uami = (await submit({ operation: "SetKey", fhirServiceId: fhirId("fhir-uami"), keyEncryptionKeyUrl: KEY_V2, identity: { type: "UserAssigned", userAssignedIdentityId: uamiId("uami-sandbox") } })).json().id as string;
  await skipArmOperation(app, sandbox, uami, 1);
  t.equal((await waitForJob(app, uami, 60_000)).monitor.status, "Succeeded");
  const undo = await rollback(uami);
  t.equal(undo.statusCode, 202, undo.body);
  await cancel(undo.json().id);
  const governed = await buildTestApp(t, testConfig(t, { CMK_APPROVALS: "required", CMK_API_KEYS: GOVERNANCE_API_KEYS }));
  const decide = async (action: "approve" | "reject", key: string, payload: object) => {
    const waiting = (await call(governed, "post", "/v1/change-requests", { payload: exampleSetKey, headers: as(KEYS.operator) })).json().id as string;
    t.equal((await call(governed, "post", `/v1/jobs/{jobId}/${action}`, { params: { jobId: waiting }, headers: as(key), payload })).statusCode, 200, action);
    t.match((await call(governed, "post", `/v1/jobs/{jobId}/${action}`, { params: { jobId: waiting }, headers: as(key), payload })).json(), { code: "NotAwaitingApproval" });
    await call(governed, "post", "/v1/jobs/{jobId}/cancel", { params: { jobId: waiting }, headers: as(KEYS.operator) });
  };
  await decide("approve", GOVERNANCE_KEYS.approver, { comment: "ok" });
  await decide("reject", GOVERNANCE_KEYS.approver, { comment: "no" });
  const mine = (await call(governed, "post", "/v1/change-requests", { payload: exampleSetKey, headers: as(GOVERNANCE_KEYS.cab) })).json().id as string;
  t.match((await call(governed, "post", "/v1/jobs/{jobId}/approve", { params: { jobId: mine }, headers: as(GOVERNANCE_KEYS.cab), payload: {} })).json(), { code: "SelfApprovalForbidden" });
  // A fleet rotation: accepted (a dry run: nothing to wait for), then one per key.
  const rotation = (payload: object, headers: Record<string, string> = {}) => call(app, "post", "/v1/key-rotations", { payload, headers: { ...as(KEYS.operator), ...headers } });
  t.equal((await rotation({ keyUrl: "https://kvsandbox.vault.azure.net/keys/cmk-rsa-3072", dryRun: true }, { "idempotency-key": "fleet" })).statusCode, 202);
  t.equal((await rotation({ keyUrl: "https://kvsandbox.vault.azure.net/keys/cmk-rsa-3072", dryRun: true }, { "idempotency-key": "fleet" })).headers["idempotent-replayed"], "true");
  t.equal((await rotation({ keyUrl: "https://kvsandbox.vault.azure.net/keys/cmk-rsa-3072/00000000000000000000000000000001" })).json().code, "ValidationFailed");

  // Compliance: no report before the first scan, a scan, then the report as JSON and CSV.
  const compliance = (query = "", headers: Record<string, string> = {}) => call(app, "get", "/v1/compliance", { headers: { ...as(KEYS.reader), ...headers }, query });
  t.equal((await compliance()).statusCode, 404);
  const scan = await call(app, "post", "/v1/compliance-scans", { headers: as(KEYS.operator) });
  t.equal(scan.statusCode, 202, scan.body);
  t.equal((await waitForJob(app, scan.json().id, 60_000)).monitor.status, "Succeeded");
  t.equal((await compliance()).statusCode, 200);
  t.equal((await compliance("", { accept: "text/csv" })).headers["content-type"], "text/csv; charset=utf-8");
  t.equal((await compliance("?severity=Critical")).statusCode, 400);

  // Reads of Azure through the sandbox.
  const post = (path: string, payload: object) => call(app, "post", path, { payload, headers: as(KEYS.reader) });
  t.equal((await post("/v1/validations", exampleSetKey)).statusCode, 200);
  t.equal((await post("/v1/validations", { operation: "SetKey" })).statusCode, 400);
  t.equal((await post("/v1/templates", TEMPLATE_REQUEST_EXAMPLES.SetKey.value)).statusCode, 200);
  t.equal((await post("/v1/templates", { operation: "RotateKey", fhirServiceId: fhirId("fhir-new") })).json().code, "FhirServiceNotFound");
  t.equal((await post("/v1/templates", { ...TEMPLATE_REQUEST_EXAMPLES.CreateService.value, fhirServiceId: fhirId("fhir-sys") })).json().code, "FhirServiceExists");
  t.equal((await post("/v1/templates", { operation: "RotateKey", fhirServiceId: fhirId("fhir-norole"), useLatestExistingVersion: true })).json().code, "TemplateNotPossible");
  for (const path of Object.keys(document.paths).filter((path) => path.includes("{fhirService}"))) {
    t.equal((await call(app, "get", path, { headers: as(KEYS.reader) })).statusCode, 200, path);
    t.equal((await call(app, "get", path, { headers: as(KEYS.reader), params: { fhirService: "fhir-new" } })).statusCode, 404, path);
    t.equal((await call(app, "get", path, { headers: as(KEYS.reader), params: { subscriptionId: "not-a-guid" } })).statusCode, 400, path);
  }
  t.equal((await call(app, "get", "/v1/audit", { headers: as(KEYS.admin) })).statusCode, 200);
  t.equal((await call(app, "get", "/v1/self-check", { headers: as(KEYS.admin) })).statusCode, 200);
  t.equal((await call(app, "get", "/v1/audit", { headers: as(KEYS.admin), query: "?top=500" })).statusCode, 400);
  t.equal((await call(app, "get", "/v1/audit", { headers: as(KEYS.operator) })).statusCode, 403);
  for (const path of ["/metrics", "/healthz", "/readyz"]) t.equal((await call(app, "get", path)).statusCode, 200, path);

  // Event Grid's webhook: the handshake of each schema, and a delivery.
  const events = "/v1/events/key-vault";
  const validation = { id: "v", subject: "", data: { validationCode: "c0de" }, eventType: "Microsoft.EventGrid.SubscriptionValidationEvent", eventTime: "2026-11-29T10:00:00Z", dataVersion: "1" };
  t.same((await call(app, "post", events, { payload: [validation], headers: as(KEYS.operator) })).json(), { validationResponse: "c0de" });
  t.equal((await call(app, "post", events, { payload: [{ ...validation, eventType: "Microsoft.Storage.BlobCreated" }], headers: as(KEYS.operator) })).statusCode, 200);
  t.equal((await call(app, "options", events, { headers: { ...as(KEYS.operator), "webhook-request-origin": "eventgrid.azure.net" } })).statusCode, 200);
  t.equal((await call(app, "options", events, { headers: as(KEYS.operator) })).statusCode, 400);

  // One request a minute: every operation but the probes answers 429 after the first.
  const limited = await buildTestApp(t, testConfig(t, { CMK_RATE_LIMIT_PER_MINUTE: "1" }));
  for (const { path, method } of operations) {
    if (path === "/healthz" || path === "/readyz") continue;
    for (let attempt = 0; attempt < 2; attempt++) await call(limited, method, path, { headers: as(KEYS.admin), ...(method === "post" ? { payload: exampleSetKey } : {}) });
  }
  // Its Azure does not answer: 503 (another credential, another allowance).
  t.equal((await call(limited, "post", "/v1/validations", { payload: exampleSetKey, headers: as(KEYS.reader) })).statusCode, 503);

  checkAnswers(t);
});

function checkAnswers(t: Test) {
  for (const [key, group] of answers) {
    const [method, path, status] = key.split(" ") as [string, string, string];
    const response = document.paths[path]?.[method]?.responses[status];
    if (!response) {
      t.fail(`${key}: answered, not declared`, { body: group[0]!.body });
      continue;
    }
    const declared = Object.keys(response.headers ?? {}).map((name) => name.toLowerCase());
    const sent = new Set(group.flatMap((answer) => Object.keys(answer.headers)));
    for (const header of declared) t.ok(sent.has(header), `${key}: declared ${header} is sent`);
    for (const header of [...sent].filter((name) => MATTERS.test(name))) t.ok(declared.includes(header), `${key}: sent ${header} is declared`);

    for (const answer of group) {
      const mediaType = String(answer.headers["content-type"] ?? "").split(";")[0]!;
      if (response.content) t.ok(Object.keys(response.content).includes(mediaType), `${key}: ${mediaType} is declared`);
      else t.equal(answer.body, "", `${key}: no body, none declared`);
      const examples = Object.values(response.content?.["application/problem+json"]?.examples ?? {}).map((example) => example.value);
      if (mediaType !== "application/problem+json") continue;
      const { code, title, type } = JSON.parse(answer.body) as { code: string; title: string; type: string };
      t.ok(
        examples.some((example) => example.code === code && example.title === title && example.type === type),
        `${key}: ${code} is one of its examples`,
        { title, examples: examples.map((example) => example.code) },
      );
    }
  }

  // Nothing vacuous: every success the document declares was answered, and every kind of problem.
  const answered = new Set(answers.keys());
  for (const { path, method } of operations) {
    for (const status of Object.keys(document.paths[path]![method]!.responses)) {
      if (status.startsWith("2")) t.ok(answered.has(`${method} ${path} ${status}`), `${method} ${path} ${status} was exercised`);
    }
  }
  const statuses = new Set([...answered].map((key) => key.split(" ")[2]));
  for (const status of ["400", "401", "403", "404", "409", "413", "415", "422", "429", "503"]) t.ok(statuses.has(status), `a ${status} was exercised`);
}
