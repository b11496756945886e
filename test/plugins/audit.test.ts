import t from "tap";
import { Redis } from "ioredis";
import { fhirServiceId, FHIR_NOROLE, FHIR_SYS, keyUrl, KV_SANDBOX, KEY_RSA_2048, VERSION_2 } from "../../src/sandbox/seed.js";
import { storeKeys } from "../../src/job-store/keys.js";
import type { AuditEntry, AuditPage } from "../../src/schemas/audit.js";
import { buildTestApp, KEYS, REDIS_URL, testConfig } from "../helpers/app.js";

const setKey = {
  operation: "SetKey",
  fhirServiceId: fhirServiceId(FHIR_SYS),
  keyEncryptionKeyUrl: keyUrl(KV_SANDBOX, KEY_RSA_2048, VERSION_2),
  identity: { type: "SystemAssigned" },
  ticket: { system: "servicenow", id: "CHG0000001" },
};

t.test("the API writes every accepted change request and every one refused to an authenticated caller; admins read them back", async (t) => {
  const config = testConfig(t);
  const app = await buildTestApp(t, config);
  const post = (payload: unknown, headers: Record<string, string>) =>
    app.inject({ method: "POST", url: "/v1/change-requests", payload: payload as object, headers: { "user-agent": "portal/1.0", ...headers } });
  const audit = async (query = "") => {
    const response = await app.inject({ method: "GET", url: `/v1/audit${query}`, headers: { "x-api-key": KEYS.admin } });
    t.equal(response.statusCode, 200, `GET /v1/audit${query}`);
    return response.json() as AuditPage;
  };
  // Entries are written after the answer: wait until they are there.
  const settled = async (count: number) => {
    for (let i = 0; i < 100 && (await audit("?top=100")).value.length < count; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  };

  await post(setKey, {});
  await post(setKey, { "x-api-key": KEYS.reader });
  await post({ ...setKey, keyEncryptionKeyUrl: "https://evil.example.com/keys/a/1", ticket: { system: "x", id: "y".repeat(5000) } }, { "x-api-key": KEYS.operator });
  const accepted = await post(setKey, { "x-api-key": KEYS.operator, "idempotency-key": "once" });
  await post(setKey, { "x-api-key": KEYS.operator, "idempotency-key": "once" });
  await post({ ...setKey, fhirServiceId: fhirServiceId(FHIR_NOROLE), dryRun: true }, { "x-api-key": KEYS.admin });
  t.equal(accepted.statusCode, 202);
  await settled(5);

  const { value } = await audit("?top=100");
  t.equal(value.length, 5, "the anonymous request has no entry of its own (see the flood test)");
  const [dry, replay, first, invalid, forbidden] = value as [AuditEntry, AuditEntry, AuditEntry, AuditEntry, AuditEntry];
  t.match(forbidden, { outcome: "Refused", code: "Forbidden", httpStatus: 403, principal: { name: "test-reader", kind: "apiKey" }, client: { ip: String, userAgent: "portal/1.0" } });
  t.notOk(forbidden.fhirServiceId, "bodies of callers refused at authentication are never parsed");
  t.match(invalid, { outcome: "Refused", code: "ValidationFailed", principal: { name: "test-operator" }, keyEncryptionKeyUrl: "https://evil.example.com/keys/a/1" });
  t.equal(invalid.ticket?.id?.length, 100, "untrusted input is cut to the schema's bounds");
  t.match(first, {
    outcome: "Accepted",
    httpStatus: 202,
    jobId: accepted.json().id,
    principal: { name: "test-operator", kind: "apiKey" },
    operation: "SetKey",
    fhirServiceId: setKey.fhirServiceId,
    keyEncryptionKeyUrl: setKey.keyEncryptionKeyUrl,
    identityType: "SystemAssigned",
    ticket: { system: "servicenow", id: "CHG0000001" },
  });
  t.match(replay, { outcome: "Accepted", replayed: true, jobId: accepted.json().id });
  t.match(dry, { outcome: "Accepted", dryRun: true, principal: { name: "test-admin" } });
  const position = (id: string) => id.split("-").map(BigInt) as [bigint, bigint];
  const older = (a: string, b: string) => position(a)[0] < position(b)[0] || (position(a)[0] === position(b)[0] && position(a)[1] < position(b)[1]);
  t.ok(value.every((entry, index) => index === 0 || older(entry.id, value[index - 1]!.id)), "newest first");

  t.test("filters", async (t) => {
    t.equal((await audit("?outcome=Refused")).value.length, 2);
    t.same((await audit("?principal=OPERATOR")).value.map((entry) => entry.principal.name), ["test-operator", "test-operator", "test-operator"]);
    t.equal((await audit("?ticketId=CHG0000001")).value.length, 3);
    t.equal((await audit(`?fhirServiceId=${encodeURIComponent(fhirServiceId(FHIR_NOROLE).toUpperCase().replace("/SUBSCRIPTIONS/", "/subscriptions/").replace("/RESOURCEGROUPS/", "/resourceGroups/").replace("/PROVIDERS/", "/providers/"))}`)).value.length, 1);
    const future = new Date(Date.now() + 3_600_000).toISOString();
    t.equal((await audit(`?from=${future}`)).value.length, 0);
    t.equal((await audit(`?to=${future}&from=2020-01-01T00:00:00Z`)).value.length, 5);
  });

  t.test("paging with nextLink", async (t) => {
    const seen: string[] = [];
    let link: string | undefined = "/v1/audit?top=4";
    while (link) {
      const response = await app.inject({ method: "GET", url: link, headers: { "x-api-key": KEYS.admin } });
      const page = response.json() as AuditPage;
      t.ok(page.value.length <= 4);
      seen.push(...page.value.map((entry) => entry.id));
      link = page.nextLink;
    }
    t.same(seen, value.map((entry) => entry.id), "all entries, each once, in order");
    const filtered = await audit("?outcome=Accepted&top=2");
    t.match(filtered.nextLink, /outcome=Accepted/, "filters are kept in nextLink");
  });

  t.test("bad queries are 400; the audit trail is admin-only", async (t) => {
    for (const query of ["?top=0", "?top=101", "?outcome=Deleted", "?colour=blue", "?continuationToken=abc", "?continuationToken=99999999999999999999-0", "?from=2025-01-02T00:00:00Z&to=2025-01-01T00:00:00Z", "?fhirServiceId=/subscriptions/x"]) {
      const response = await app.inject({ method: "GET", url: `/v1/audit${query}`, headers: { "x-api-key": KEYS.admin } });
      t.equal(response.statusCode, 400, query);
      t.equal(response.json().code, "ValidationFailed");
    }
    t.equal((await app.inject({ method: "GET", url: "/v1/audit", headers: { "x-api-key": KEYS.operator } })).statusCode, 403);
  });

  t.test("the stream is trimmed by length and age", async (t) => {
    const redis = new Redis(REDIS_URL);
    t.teardown(() => redis.disconnect());
    t.equal(await redis.xlen(storeKeys(config.CMK_QUEUE_PREFIX).audit), 5);
  });
});

t.test("floods of anonymous and rate-limited change requests cannot evict entries: metrics count them, one summary a minute stands for them", async (t) => {
  const config = testConfig(t, { CMK_RATE_LIMIT_PER_MINUTE: "25" });
  const app = await buildTestApp(t, config);
  const redis = new Redis(REDIS_URL);
  t.teardown(() => redis.disconnect());
  const stream = storeKeys(config.CMK_QUEUE_PREFIX).audit;
  const post = (payload: object, headers: Record<string, string>, remoteAddress = "127.0.0.1") =>
    app.inject({ method: "POST", url: "/v1/change-requests", payload, headers, remoteAddress });
  const entries = async (query: string) => (await app.inject({ method: "GET", url: `/v1/audit${query}`, headers: { "x-api-key": KEYS.admin } })).json().value as AuditEntry[];

  const accepted = await post(setKey, { "x-api-key": KEYS.operator });
  t.equal(accepted.statusCode, 202);
  for (let i = 0; i < 100 && (await redis.xlen(stream)) < 1; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  t.equal(await redis.xlen(stream), 1);

  // Anonymous callers from two addresses (one of them far over its limit), and an operator over its own.
  const statuses: Record<string, number> = {};
  const count = (status: number) => (statuses[status] = (statuses[status] ?? 0) + 1);
  for (let i = 0; i < 40; i++) count((await post(setKey, {}, "10.0.0.1")).statusCode);
  for (let i = 0; i < 10; i++) count((await post(setKey, { "x-api-key": "a-guessed-key" }, "10.0.0.2")).statusCode);
  for (let i = 0; i < 30; i++) count((await post({ operation: "SetKey" }, { "x-api-key": KEYS.operator })).statusCode);
  t.same(statuses, { 400: 24, 401: 35, 429: 21 });

  // Entries are written after the answers; the operator's 24 validation refusals are real entries.
  for (let i = 0; i < 100 && (await redis.xlen(stream)) < 25; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.equal(await redis.xlen(stream), 25, "the audit stream grew by the authenticated caller's refusals only");
  t.match(await entries("?outcome=Accepted"), [{ jobId: accepted.json().id, principal: { name: "test-operator" } }], "the real entry is still there");
  t.notOk((await entries("?top=100")).some((entry) => entry.principal.kind === "anonymous" || entry.code === "TooManyRequests"), "no entry per anonymous or rate-limited request");

  const metrics = (await app.inject({ method: "GET", url: "/metrics", remoteAddress: "10.0.0.9" })).body;
  t.match(metrics, /cmk_refused_requests_total\{reason="unauthenticated",route="\/v1\/change-requests"\} 35/);
  t.match(metrics, /cmk_refused_requests_total\{reason="rate_limited",route="\/v1\/change-requests"\} 21/);

  // The summaries are written once a minute, and when the process stops; they have a stream of their own.
  await app.close();
  const reader = await buildTestApp(t, config);
  const summaries = (await reader.inject({ method: "GET", url: "/v1/audit?outcome=RefusedSummary", headers: { "x-api-key": KEYS.admin } })).json().value as AuditEntry[];
  t.equal(summaries.length, 2, "one summary per principal and minute");
  const anonymous = summaries.find((entry) => entry.principal.kind === "anonymous");
  t.match(anonymous, {
    outcome: "RefusedSummary",
    principal: { name: "anonymous", kind: "anonymous" },
    summary: { count: 50, unauthenticated: 35, rateLimited: 15, since: String, clients: [{ ip: "10.0.0.1", count: 40 }, { ip: "10.0.0.2", count: 10 }] },
  });
  t.match(
    summaries.find((entry) => entry.principal.kind === "apiKey"),
    { outcome: "RefusedSummary", principal: { name: "test-operator", kind: "apiKey" }, summary: { count: 6, unauthenticated: 0, rateLimited: 6 } },
  );
  t.equal(await redis.xlen(stream), 25, "summaries never enter the capped stream of real entries");
  t.equal((await reader.inject({ method: "GET", url: "/v1/audit?top=100", headers: { "x-api-key": KEYS.admin } })).json().value.length, 25, "the default listing shows real entries");
});
