import fc from "fast-check";
import t from "tap";
import type { InjectOptions } from "fastify";
import { createAdapters } from "../../src/runtime.js";
import { parseKeyUrl } from "../../src/domain/key-url.js";
import { createSandboxContext } from "../../src/azure/azure-context.js";
import { fhirServiceId, FHIR_SYS, keyUrl, KV_SANDBOX, KEY_RSA_2048, SUBSCRIPTION_ID, UAMI_SANDBOX, userAssignedIdentityId, VERSION_2 } from "../../src/sandbox/seed.js";
import { buildTestApp, KEYS, testConfig } from "../helpers/app.js";
import { sandboxHttpClient, startTestSandbox } from "../helpers/sandbox.js";
import { callerTokens } from "../helpers/tokens.js";

/**
 * Hostile input, generated: paths, query strings, headers and bodies thrown at the whole app (with an
 * in-process sandbox behind it, so the few valid requests do real work). No answer may be a 5xx, and
 * every error must be problem+json with a code. FUZZ_SEED reproduces a run; FUZZ_RUNS makes it longer.
 */
const RUNS = Number(process.env.FUZZ_RUNS ?? 5000);
// About 30 s alone; more on a busy machine running other test files alongside.
t.setTimeout(Math.max(300_000, RUNS * 60));

const printable = (maxLength = 40) => fc.string({ maxLength });
const anyText = (maxLength = 40) => fc.string({ unit: "binary", maxLength });

/** Characters no free text may carry, and spellings that only become the canonical value after normalization. */
const controlOrBidi = fc.constantFrom("\r\n", "\u0000", "\u007f", "\u0085", "\u202e", "\u2066", "\u200f", "\u061c", "\t");
const withControl = fc.tuple(printable(20), controlOrBidi, printable(20)).map((parts) => parts.join(""));
const canonicalKey = keyUrl(KV_SANDBOX, KEY_RSA_2048, VERSION_2);
const nonCanonicalKeyUrl = fc.oneof(
  fc.constantFrom(
    canonicalKey.replace(".vault", "\uff0evault").replace("https://", "https:/\\"),
    canonicalKey.replace(".net/", ".net:443/"),
    canonicalKey.replace("/keys/", "/secrets/x/../../keys/"),
    canonicalKey.replace("/keys/", "/secrets/%2e%2e/keys/"),
    canonicalKey.replace("kvsandbox", "KVSANDBOX"),
    `${canonicalKey}/`,
    `${canonicalKey}?x=1`,
    canonicalKey.replace("https://", "https://user@"),
  ),
  fc.tuple(controlOrBidi, fc.boolean()).map(([bad, before]) => (before ? bad + canonicalKey : canonicalKey + bad)),
);
const dotSegmentFhirServiceId = fc.constantFrom("..", ".", "%2e%2e", "rg.", "rg x", "rg%20x").map((group) => fhirServiceId(FHIR_SYS).replace("/rg-sandbox/", `/${group}/`));

const segment = fc.oneof(
  fc.constantFrom(
    "v1", "jobs", "audit", "change-requests", "validations", "templates", "subscriptions", SUBSCRIPTION_ID, "resourceGroups", "rg-sandbox",
    "workspaces", "wssandbox", "fhirservices", "fhir-sys", "encryption", "health", "cancel", "events", "docs", "static", "json",
    "meta", "events", "id", "wait", "..", ".", "%2e%2e", "%00", "%zz", "%", "%E0%A4%A", "__proto__", "constructor", "00000000-0000-0000-0000-000000000000", "",
  ),
  printable(30).map(encodeURIComponent),
  anyText(20).map(encodeURIComponent),
  fc.string({ minLength: 90, maxLength: 300 }).map(encodeURIComponent),
);
// Mostly the real routes (so requests get past routing into authentication, validation and handlers).
const path = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom("/v1/change-requests", "/v1/validations", "/v1/audit", "/v1/jobs", "/healthz", "/readyz", "/docs/", "/docs/json", "/docs/static/index.html") },
  { weight: 3, arbitrary: segment.map((jobId) => `/v1/jobs/${jobId}`) },
  { weight: 1, arbitrary: segment.map((jobId) => `/v1/jobs/${jobId}/cancel`) },
  { weight: 1, arbitrary: fc.array(segment, { maxLength: 9 }).map((segments) => `/v1/${segments.join("/")}`) },
  { weight: 1, arbitrary: fc.array(segment, { maxLength: 5 }).map((segments) => `/${segments.join("/")}`) },
);

const queryValue = fc.oneof(
  printable(30).map(encodeURIComponent),
  anyText(10).map(encodeURIComponent),
  withControl.map(encodeURIComponent),
  dotSegmentFhirServiceId.map(encodeURIComponent),
  fc.constantFrom("%zz", "%", "1e400", "-1", "0", "101", "20", "NaN", "true", "[]", "Succeeded", "Refused", "2025-01-01T00:00:00Z", "99999999999999999999-0", "1-1", encodeURIComponent(fhirServiceId(FHIR_SYS))),
);
const queryKey = fc.oneof(fc.constantFrom("top", "outcome", "continuationToken", "fhirServiceId", "principal", "ticketId", "from", "to", "status", "__proto__", "top[]"), printable(10).map(encodeURIComponent));
const query = fc.oneof(
  fc.constant(""),
  fc.array(fc.tuple(queryKey, queryValue), { maxLength: 6 }).map((pairs) => `?${pairs.map(([key, value]) => `${key}=${value}`).join("&")}`),
);

const base64url = (value: unknown) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value) ?? "").toString("base64url");
const jwtLike = fc
  .tuple(
    fc.record({ alg: fc.oneof(fc.constantFrom("RS256", "PS256", "ES256", "HS256", "none", "RS1"), printable(8)), kid: fc.oneof(printable(30), fc.constant(undefined)), typ: fc.oneof(fc.constant("JWT"), printable(5)), crit: fc.option(fc.array(printable(5))) }, { requiredKeys: [] }),
    fc.oneof(fc.jsonValue(), fc.record({ iss: printable(), aud: printable(), exp: fc.integer(), nbf: fc.integer(), roles: fc.array(fc.constantFrom("CMK.Admin", "CMK.Reader", "x")) }, { requiredKeys: [] })),
    fc.oneof(fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes).toString("base64url")), printable(20)),
  )
  .map(([header, claims, signature]) => `${base64url(header)}.${base64url(claims)}.${signature}`);

/** The top-level keyEncryptionKeyUrl of a JSON body, if it has one. */
function keyUrlOf(payload: string): string | undefined {
  try {
    const value = (JSON.parse(payload) as { keyEncryptionKeyUrl?: unknown } | null)?.keyEncryptionKeyUrl;
    return typeof value === "string" ? value : undefined;
  } catch {
    return undefined;
  }
}

const validChange = { operation: "SetKey", fhirServiceId: fhirServiceId(FHIR_SYS), keyEncryptionKeyUrl: keyUrl(KV_SANDBOX, KEY_RSA_2048, VERSION_2), identity: { type: "SystemAssigned" } };
/** A valid change request (often a dry run) with at most one field replaced by something generated. */
const nearlyValid = fc
  .tuple(fc.boolean(), fc.option(fc.tuple(fc.constantFrom(...Object.keys(validChange), "callbackUrl", "ticket", "extra"), fc.jsonValue())))
  .map(([dryRun, change]) => JSON.stringify({ ...validChange, dryRun, ...(change ? { [change[0]]: change[1] } : {}) }));

const body = fc.oneof(
  { weight: 3, arbitrary: nearlyValid },
  fc.json(),
  anyText(200),
  fc.anything().map((value) => JSON.stringify(value) ?? "null"),
  fc
    .record(
      {
        operation: fc.oneof(fc.constantFrom("SetKey", "CreateService", "RotateKey", "RecoverKeyAccess"), printable(20), fc.jsonValue()),
        fhirServiceId: fc.oneof(fc.constant(fhirServiceId(FHIR_SYS)), fc.constant(fhirServiceId(FHIR_SYS).replace(SUBSCRIPTION_ID, "33333333-3333-3333-3333-333333333333")), dotSegmentFhirServiceId, printable(100), fc.jsonValue()),
        keyEncryptionKeyUrl: fc.oneof(
          fc.constant(keyUrl(KV_SANDBOX, KEY_RSA_2048, VERSION_2)),
          fc.constantFrom("https://169.254.169.254/keys/a/00000000000000000000000000000001", "http://kvsandbox.vault.azure.net/keys/a/1", "https://kvsandbox.vault.azure.net.evil.com/keys/a/1", "file:///etc/passwd"),
          nonCanonicalKeyUrl,
          printable(100),
        ),
        identity: fc.oneof(fc.constant({ type: "SystemAssigned" }), fc.constant({ type: "UserAssigned", userAssignedIdentityId: userAssignedIdentityId(UAMI_SANDBOX) }), fc.jsonValue()),
        callbackUrl: fc.oneof(fc.constantFrom("https://hooks.contoso.com/x", "http://localhost:1/cb", "http://169.254.169.254/", "https://user:pw@localhost/"), printable(50)),
        ticket: fc.oneof(fc.record({ system: fc.oneof(printable(60), withControl), id: fc.oneof(printable(110), withControl), url: printable(50) }, { requiredKeys: [] }), fc.jsonValue()),
        dryRun: fc.oneof(fc.boolean(), fc.jsonValue()),
        acknowledgeIdentityTypeChange: fc.boolean(),
        __proto__: fc.jsonValue(),
      },
      { requiredKeys: [] },
    )
    .map((record) => JSON.stringify(record)),
);

t.test(`${RUNS} generated requests: no 5xx, every error problem+json with a code`, async (t) => {
  const sandbox = await startTestSandbox(t);
  const config = testConfig(t, { CMK_SANDBOX_URL: sandbox.url, CMK_SANDBOX_CA_FILE: sandbox.caFile, CMK_CALLBACK_ALLOWED_HOSTS: "hooks.contoso.com" });
  const context = createSandboxContext({ url: sandbox.url, caPem: sandbox.caPem });
  const app = await buildTestApp(t, config, createAdapters(config, context), { httpClient: sandboxHttpClient(sandbox) });
  const callers = await callerTokens(sandbox);
  const tokens = [callers.reader, callers.operator, callers.admin, callers.noRole];

  const credential = fc.oneof(
    fc.constant({}),
    { weight: 3, arbitrary: fc.constantFrom(...Object.values(KEYS)).map((key) => ({ "x-api-key": key })) },
    { weight: 3, arbitrary: fc.constantFrom(...tokens).map((token) => ({ authorization: `Bearer ${token}` })) },
    printable(80).map((key) => ({ "x-api-key": key })),
    jwtLike.map((token) => ({ authorization: `Bearer ${token}` })),
    printable(80).map((value) => ({ authorization: value })),
    fc.constant({ authorization: `Bearer ${tokens[2]}`, "x-api-key": KEYS.admin }),
  );
  const otherHeaders = fc.record(
    {
      "content-type": fc.oneof(
        { weight: 6, arbitrary: fc.constantFrom("application/json", "application/json; charset=utf-8") },
        { weight: 1, arbitrary: fc.constantFrom("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json; charset=latin1") },
        { weight: 1, arbitrary: printable(30) },
      ),
      "idempotency-key": printable(300),
      accept: fc.oneof(fc.constantFrom("application/json", "text/event-stream", "*/*", "text/html"), printable(20)),
      "x-request-id": printable(60),
      "user-agent": printable(60),
      "x-forwarded-for": printable(30),
    },
    { requiredKeys: [] },
  );
  const headers = fc.tuple(credential, otherHeaders).map(([a, b]) => ({ ...b, ...a }));
  const wild = fc.record({
    method: fc.constantFrom("GET", "GET", "POST", "POST", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"),
    url: fc.tuple(path, query).map(([p, q]) => p + q),
    headers,
    body,
  });
  // The operations themselves, with credentials that reach their handlers most of the time.
  const targeted = fc.oneof(
    fc.record({ method: fc.constant("POST"), url: fc.constantFrom("/v1/change-requests", "/v1/validations", "/v1/templates"), headers: fc.constantFrom({ "x-api-key": KEYS.operator }, { authorization: `Bearer ${tokens[1]}` }).map((credentials) => ({ ...credentials, "content-type": "application/json" })), body: nearlyValid }),
    fc.record({ method: fc.constant("GET"), url: query.map((q) => `/v1/audit${q}`), headers: fc.constant({ "x-api-key": KEYS.admin }), body: fc.constant("") }),
    fc.record({ method: fc.constant("GET"), url: segment.map((jobId) => `/v1/jobs/${jobId}`), headers: fc.constant({ authorization: `Bearer ${tokens[0]}` }), body: fc.constant("") }),
    fc.record({
      method: fc.constant("GET"),
      url: fc.tuple(segment, fc.constantFrom("encryption", "encryption/health")).map(([group, tail]) => `/v1/subscriptions/${SUBSCRIPTION_ID}/resourceGroups/${group}/workspaces/wssandbox/fhirservices/fhir-sys/${tail}`),
      headers: fc.constant({ "x-api-key": KEYS.reader }),
      body: fc.constant(""),
    }),
  );
  const request = fc.oneof({ weight: 3, arbitrary: wild }, { weight: 1, arbitrary: targeted });

  let sent = 0;
  const statuses = new Map<number, number>();
  const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;
  await fc.assert(
    fc.asyncProperty(request, async ({ method, url, headers, body: payload }) => {
      const withBody = ["POST", "PUT", "PATCH"].includes(method);
      const response = await app.inject({ method, url, headers, ...(withBody ? { payload } : {}) } as InjectOptions);
      sent += 1;
      statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
      const where = `${method} ${url} → ${response.statusCode} ${response.body.slice(0, 300)}`;
      if (response.statusCode >= 500) throw new Error(`5xx: ${where}`);
      if (response.statusCode >= 300 && response.statusCode < 400 && !url.startsWith("/docs")) throw new Error(`redirect outside /docs: ${where}`);
      if (response.statusCode >= 400) {
        if (!String(response.headers["content-type"]).startsWith("application/problem+json")) throw new Error(`not problem+json: ${where}`);
        if (method !== "HEAD") {
          const problem = response.json();
          if (typeof problem.code !== "string" || problem.code === "" || problem.status !== response.statusCode) throw new Error(`no code: ${where}`);
        }
      }
      if (/\n\s+at [^\n]+:\d+:\d+/.test(response.body)) throw new Error(`stack trace: ${where}`);
      if (response.statusCode < 300 && withBody && !parseKeyUrl(keyUrlOf(payload) ?? canonicalKey)) throw new Error(`a non-canonical key URL was taken: ${where}`);
    }),
    { numRuns: RUNS, ...(seed === undefined ? {} : { seed }), endOnFailure: true },
  );
  t.equal(sent, RUNS);
  t.comment(`statuses: ${JSON.stringify(Object.fromEntries([...statuses].sort(([a], [b]) => a - b)))}`);
  t.ok([...statuses.keys()].some((status) => status < 300), "some requests were valid");
});
