import t from "tap";
import { sha256Hex } from "../../src/plugins/app/authentication.js";
import { fhirServiceId, FHIR_SYS, keyUrl, KV_SANDBOX, KEY_RSA_2048, OPERATOR_APP, READER_APP, SUBSCRIPTION_ID, VERSION_2 } from "../../src/sandbox/seed.js";
import { buildTestApp, testConfig } from "../helpers/app.js";
import { sandboxHttpClient, startTestSandbox } from "../helpers/sandbox.js";
import { callerToken } from "../helpers/tokens.js";

const OTHER_SUBSCRIPTION = "33333333-3333-3333-3333-333333333333";
const dryRun = { operation: "SetKey", fhirServiceId: fhirServiceId(FHIR_SYS), keyEncryptionKeyUrl: keyUrl(KV_SANDBOX, KEY_RSA_2048, VERSION_2), identity: { type: "SystemAssigned" }, dryRun: true };

const apiKeys = [
  { name: "everywhere", sha256: sha256Hex("key-everywhere"), roles: ["admin"] },
  { name: "seed-only", sha256: sha256Hex("key-seed-only"), roles: ["admin"], subscriptions: [SUBSCRIPTION_ID.toUpperCase()] },
  { name: "elsewhere", sha256: sha256Hex("key-elsewhere"), roles: ["admin"], subscriptions: [OTHER_SUBSCRIPTION] },
];

t.test("subscription allow-lists for API keys and tokens", async (t) => {
  const sandbox = await startTestSandbox(t);
  const config = testConfig(t, {
    CMK_API_KEYS: JSON.stringify(apiKeys),
    CMK_TOKEN_SUBSCRIPTIONS: JSON.stringify({ [OPERATOR_APP.clientId]: [OTHER_SUBSCRIPTION] }),
  });
  const app = await buildTestApp(t, config, undefined, { httpClient: sandboxHttpClient(sandbox) });
  const submit = (headers: Record<string, string>) => app.inject({ method: "POST", url: "/v1/change-requests", payload: dryRun, headers });

  t.equal((await submit({ "x-api-key": "key-everywhere" })).statusCode, 202, "no allow-list: every subscription");
  t.equal((await submit({ "x-api-key": "key-seed-only" })).statusCode, 202, "listed subscription (ids compare case-insensitively)");
  const refused = await submit({ "x-api-key": "key-elsewhere" });
  t.equal(refused.statusCode, 403);
  t.match(refused.json(), { code: "Forbidden", subscriptionId: SUBSCRIPTION_ID, detail: new RegExp(SUBSCRIPTION_ID) });

  const token = await callerToken(sandbox, OPERATOR_APP);
  const tokenRefused = await submit({ authorization: `Bearer ${token}` });
  t.equal(tokenRefused.statusCode, 403, "a token's application listed in CMK_TOKEN_SUBSCRIPTIONS is limited to its list");
  t.equal(tokenRefused.json().subscriptionId, SUBSCRIPTION_ID);

  const readerToken = await callerToken(sandbox, READER_APP);
  const listed = await app.inject({ method: "GET", url: `/v1/audit?fhirServiceId=${encodeURIComponent(fhirServiceId(FHIR_SYS))}`, headers: { authorization: `Bearer ${readerToken}` } });
  t.equal(listed.statusCode, 403, "the audit trail needs admin");
  const unnamed = await app.inject({
    method: "GET",
    url: `/v1/subscriptions/${SUBSCRIPTION_ID}/resourceGroups/rg-sandbox/workspaces/wssandbox/fhirservices/fhir-sys/encryption`,
    headers: { authorization: `Bearer ${readerToken}` },
  });
  t.equal(unnamed.statusCode, 403, "a token no CMK_TOKEN_SUBSCRIPTIONS entry names may act on no subscription");
  t.match(unnamed.json().detail, /may act on no subscription: CMK_TOKEN_SUBSCRIPTIONS names neither its application/, "and is told why");

  const auditElsewhere = await app.inject({ method: "GET", url: `/v1/audit?fhirServiceId=${encodeURIComponent(fhirServiceId(FHIR_SYS))}`, headers: { "x-api-key": "key-elsewhere" } });
  t.equal(auditElsewhere.statusCode, 403, "a query naming another subscription is refused too");
  for (const url of [
    `/v1/subscriptions/${SUBSCRIPTION_ID}/resourceGroups/rg-sandbox/workspaces/wssandbox/fhirservices/fhir-sys/encryption`,
    `/v1/subscriptions/${SUBSCRIPTION_ID.toUpperCase()}/resourceGroups/rg-sandbox/workspaces/wssandbox/fhirservices/fhir-sys/encryption/health`,
    `/v1/jobs?fhirServiceId=${encodeURIComponent(fhirServiceId(FHIR_SYS))}`,
  ]) {
    const response = await app.inject({ method: "GET", url, headers: { "x-api-key": "key-elsewhere" } });
    t.equal(response.statusCode, 403, `path or query subscription: ${url}`);
    t.equal(response.json().subscriptionId, SUBSCRIPTION_ID);
  }
  const auditOwn = await app.inject({ method: "GET", url: "/v1/audit", headers: { "x-api-key": "key-elsewhere" } });
  t.equal(auditOwn.statusCode, 200);
  t.same(auditOwn.json().value, [], "the audit trail shows a limited admin only its subscriptions");
});
