import t from "tap";
import { seed } from "../../src/sandbox/index.js";
import { KEYS, waitForJob } from "../helpers/app.js";
import { startStack } from "../helpers/stack.js";
import { sandboxRequest } from "../helpers/sandbox.js";
import { lastSeq, sandboxRequests } from "../helpers/sandbox-admin.js";
import { fhirId } from "../helpers/requests.js";

/** Compliance scans (POST /v1/compliance-scans, GET /v1/compliance) end to end: real Redis, the SDK clients, the sandbox. */

const KEY = "https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048";
const KEY_V1 = `${KEY}/${seed.VERSION_1}`;
type Stack = Awaited<ReturnType<typeof startStack>>;
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const scan = (stack: Stack, body?: object, key: string = KEYS.operator) =>
  stack.app.inject({ method: "POST", url: "/v1/compliance-scans", ...(body ? { payload: body } : {}), headers: { "x-api-key": key } });
const report = (stack: Stack, query = "", headers: Record<string, string> = {}) =>
  stack.app.inject({ method: "GET", url: `/v1/compliance${query}`, headers: { "x-api-key": KEYS.reader, ...headers } });
const createFleet = async (stack: Stack, body: object): Promise<string[]> => {
  const answer = await sandboxRequest(stack.sandbox, { method: "POST", path: "/_sandbox/scenarios", body: { action: "createFleet", keyUrl: KEY_V1, ...body } });
  if (answer.status !== 200) throw new Error(`createFleet: ${answer.text}`);
  return (answer.json as { fhirServiceIds: string[] }).fhirServiceIds;
};
const rulesOf = (row: Json | undefined) => (row?.findings ?? []).map((finding: Json) => finding.rule).sort();

/** The fleet issue 16 asks a scan to cover beside the seed. */
const FLEET = 500;

t.test("a scan of the seed and a 500-service fleet: every service with its findings, each distinct key read once, the CSV one row per service", async (t) => {
  const stack = await startStack(t, { lroMs: 300, env: { CMK_WORKER_CONCURRENCY: "4" } });
  const fleet = await createFleet(stack, { count: FLEET, workspaces: 5 });

  const before = await report(stack);
  t.equal(before.statusCode, 404, "no report before the first scan");
  t.equal(before.json().code, "NotFound");

  const since = await lastSeq(stack.sandbox);
  const accepted = await scan(stack);
  t.equal(accepted.statusCode, 202, accepted.body);
  t.equal(accepted.headers["operation-location"], `/v1/jobs/${accepted.json().id}`);
  t.match(accepted.json(), { operation: "ComplianceScan", status: "NotStarted" });
  t.notOk(accepted.json().approval, "a scan writes nothing: no approval");

  const { monitor } = await waitForJob(stack.app, accepted.json().id, 120_000);
  t.equal(monitor.status, "Succeeded", JSON.stringify(monitor.error ?? monitor.steps));
  t.same(
    monitor.steps.map((step: Json) => [step.name, step.status]),
    [
      ["Discover", "Succeeded"],
      ["ReadKeys", "Succeeded"],
      ["Evaluate", "Succeeded"],
      ["Store", "Succeeded"],
      ["Follow", "Skipped"],
    ],
  );
  const services = FLEET + 4;
  t.match(monitor.result, { scannedServices: services, keysRead: 1 });

  const answer = await report(stack);
  t.equal(answer.statusCode, 200, answer.body);
  t.match(answer.headers["content-type"], /^application\/json/);
  const body = answer.json();
  t.equal(body.scanId, accepted.json().id);
  t.match(body.summary, { services, customerManaged: FLEET + 2, microsoftManaged: 2 });
  const row = (name: string) => body.services.find((service: Json) => service.fhirServiceId.toLowerCase().endsWith(`/fhirservices/${name}`));

  // fhir-sys and fhir-norole: Microsoft-managed (Low without CMK_REQUIRE_CUSTOMER_MANAGED_KEY), a SetKey on the key the region's services use.
  for (const name of [seed.FHIR_SYS, seed.FHIR_NOROLE]) {
    t.same(rulesOf(row(name)), ["MicrosoftManagedKey"], name);
    t.match(row(name), { encryption: "MicrosoftManaged", health: "Healthy", findings: [{ severity: "Low" }] }, name);
  }
  t.match(row(seed.FHIR_SYS).findings[0].recommendedChange, {
    operation: "SetKey",
    fhirServiceId: fhirId(seed.FHIR_SYS),
    keyEncryptionKeyUrl: `${KEY}/${seed.VERSION_2}`,
    identity: { type: "SystemAssigned" },
  });
  // fhir-uami (user-assigned) and fhir-other (second subscription): on …01 while …02 exists, created 2025-01-01 (older than 365 days).
  for (const name of [seed.FHIR_UAMI, seed.FHIR_OTHER]) {
    t.same(rulesOf(row(name)), ["KeyVersionBehindLatest", "KeyVersionTooOld"], name);
    t.match(row(name), { encryption: "CustomerManaged", keyEncryptionKeyUrl: KEY_V1, latestKeyVersion: seed.VERSION_2, health: "Healthy", keyVersionCreatedDateTime: "2025-01-01T00:00:00.000Z" }, name);
    const behind = row(name).findings.find((finding: Json) => finding.rule === "KeyVersionBehindLatest");
    t.match(behind, { severity: "Low", message: new RegExp(`uses version ${seed.VERSION_1} of key cmk-rsa-2048 in kvsandbox, but version ${seed.VERSION_2}`) }, name);
    t.match(behind.recommendedChange, { operation: "RotateKey", fhirServiceId: row(name).fhirServiceId, useLatestExistingVersion: true });
  }
  // Every fleet service is in the report, on v1 with the same findings.
  const ids = new Set(body.services.map((service: Json) => service.fhirServiceId.toLowerCase()));
  t.equal(fleet.filter((id) => ids.has(id.toLowerCase())).length, FLEET, "every fleet service reported");
  t.ok(body.services.every((service: Json) => service.encryption === "MicrosoftManaged" || rulesOf(service).includes("KeyVersionBehindLatest")));

  // Key Vault saw each distinct key once: one versions list and one read of the version in use, however many services use it.
  const requests = await sandboxRequests(stack.sandbox, since);
  // Answered reads (Key Vault's challenge authentication answers a client's first request 401 before the token is sent).
  const vault = requests.filter((request) => request.host === "kvsandbox.vault.azure.net" && request.method === "GET" && request.status === 200);
  const lists = vault.filter((request) => /^\/keys\/cmk-rsa-2048\/versions/.test(request.path));
  const reads = vault.filter((request) => request.path.split("?")[0] === `/keys/cmk-rsa-2048/${seed.VERSION_1}`);
  t.equal(lists.length, 1, "one versions list");
  t.equal(reads.length, 1, "one read of the version in use");
  t.comment(`Key Vault requests: ${vault.length} (versions list pages ${lists.length}); ARM requests: ${requests.filter((request) => request.host === "management.azure.com").length} for ${services} services`);

  // Filters and the CSV.
  const low = (await report(stack, "?rule=MicrosoftManagedKey")).json();
  t.equal(low.summary.services, 2);
  t.same(low.summary.findings, { High: 0, Medium: 0, Low: 2 });
  const other = (await report(stack, `?subscriptionId=${seed.OTHER_SUBSCRIPTION_ID}`)).json();
  t.same(other.services.map((service: Json) => service.fhirServiceId.toLowerCase()), [seed.FHIR_OTHER_ID.toLowerCase()]);
  const high = (await report(stack, "?severity=High")).json();
  t.equal(high.summary.services, 0, JSON.stringify(high.services[0]));
  t.equal((await report(stack, "?rule=Nope")).statusCode, 400, "an unknown rule is 400");

  const csv = await report(stack, "", { accept: "text/csv" });
  t.equal(csv.statusCode, 200);
  t.equal(csv.headers["content-type"], "text/csv; charset=utf-8");
  const lines = csv.body.split("\r\n");
  t.equal(lines.at(-1), "", "CRLF after the last row");
  t.match(lines[0], /^fhirServiceId,subscriptionId,encryption,/);
  const records = csv.body.match(/^\/subscriptions\//gm) ?? [];
  t.equal(records.length, services, "one row per service");
  t.equal((await report(stack, "", { accept: "application/json, text/csv;q=0.5" })).headers["content-type"], "application/json; charset=utf-8", "JSON when preferred");

  // Metrics: the report's counts, bounded labels.
  const metrics = (await stack.app.inject({ method: "GET", url: "/metrics" })).body;
  t.match(metrics, new RegExp(`cmk_compliance_services\\{encryption="CustomerManaged"\\} ${FLEET + 2}\n`));
  t.match(metrics, /cmk_compliance_services\{encryption="MicrosoftManaged"\} 2/);
  t.match(metrics, /cmk_compliance_findings\{rule="MicrosoftManagedKey",severity="Low"\} 2/);
  t.match(metrics, new RegExp(`cmk_compliance_findings\\{rule="KeyVersionBehindLatest",severity="Low"\\} ${FLEET + 2}\n`));
  t.match(metrics, /cmk_compliance_findings\{rule="KeyExpired",severity="High"\} 0/);
  t.equal(metrics.match(/^cmk_compliance_findings\{/gm)?.length, 18, "six rules by three severities");
  t.match(metrics, /cmk_compliance_scan_duration_seconds \d/);
  t.match(metrics, new RegExp(`cmk_compliance_last_success_timestamp_seconds ${Math.floor(Date.parse(body.scannedDateTime) / 1000)}`));
});

t.test("one scan at a time: a second request while one is unfinished is 409 ChangeInProgress naming it; readers may not scan", async (t) => {
  const stack = await startStack(t, { worker: false });
  const first = await scan(stack, {});
  t.equal(first.statusCode, 202, first.body);
  const second = await scan(stack);
  t.equal(second.statusCode, 409, second.body);
  t.match(second.json(), { code: "ChangeInProgress", activeJobId: first.json().id });
  t.equal((await scan(stack, undefined, KEYS.reader)).statusCode, 403);
  t.equal((await scan(stack, { subscriptions: ["nope"] })).statusCode, 400);
  const listed = (await stack.app.inject({ method: "GET", url: "/v1/jobs?operation=ComplianceScan", headers: { "x-api-key": KEYS.reader } })).json();
  t.same(listed.value.map((job: Json) => job.id), [first.json().id]);
});
