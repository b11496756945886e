import t from "tap";
import { ADMIN_APP, fhirServiceId, FHIR_SYS, keyUrl, KV_SANDBOX, KEY_RSA_2048, OPERATOR_APP, READER_APP, SUBSCRIPTION_ID, VERSION_2 } from "../../src/sandbox/seed.js";
import { buildTestApp, testConfig } from "../helpers/app.js";
import { sandboxHttpClient, startTestSandbox } from "../helpers/sandbox.js";
import { callerToken, mintedToken } from "../helpers/tokens.js";

const GROUP = "aaaaaaaa-1111-2222-3333-444444444444";
const USER_OID = "cccccccc-1111-2222-3333-444444444444";
const dryRun = { operation: "SetKey", fhirServiceId: fhirServiceId(FHIR_SYS), keyEncryptionKeyUrl: keyUrl(KV_SANDBOX, KEY_RSA_2048, VERSION_2), identity: { type: "SystemAssigned" }, dryRun: true };
// Entra's group-overage form: no `groups` claim, a pointer to Microsoft Graph instead.
const overage = {
  _claim_names: { groups: "src1" },
  _claim_sources: { src1: { endpoint: `https://graph.microsoft.com/v1.0/servicePrincipals/${ADMIN_APP.objectId}/getMemberObjects` } },
};

t.test("with CMK_TOKEN_SUBSCRIPTIONS configured, token scoping fails closed", async (t) => {
  const sandbox = await startTestSandbox(t);
  const config = testConfig(t, { CMK_TOKEN_SUBSCRIPTIONS: JSON.stringify({ [OPERATOR_APP.clientId]: [SUBSCRIPTION_ID], [GROUP]: [SUBSCRIPTION_ID], [USER_OID]: [SUBSCRIPTION_ID] }) });
  const app = await buildTestApp(t, config, undefined, { httpClient: sandboxHttpClient(sandbox) });
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const submit = (token: string) => app.inject({ method: "POST", url: "/v1/change-requests", payload: dryRun, headers: bearer(token) });
  const list = async (url: string, token: string) => {
    const response = await app.inject({ method: "GET", url, headers: bearer(token) });
    t.equal(response.statusCode, 200, url);
    return response.json().value as unknown[];
  };

  const accepted = await submit(await callerToken(sandbox, OPERATOR_APP));
  t.equal(accepted.statusCode, 202, "a listed application acts on its subscriptions");
  const jobId = accepted.json().id as string;

  t.test("a token that matches no entry gets no subscription", async (t) => {
    const unlisted = await callerToken(sandbox, ADMIN_APP);
    const refused = await submit(unlisted);
    t.equal(refused.statusCode, 403);
    t.match(refused.json(), { code: "Forbidden", subscriptionId: SUBSCRIPTION_ID });
    const scoped = await app.inject({ method: "GET", url: `/v1/subscriptions/${SUBSCRIPTION_ID}/resourceGroups/rg-sandbox/workspaces/wssandbox/fhirservices/fhir-sys/encryption`, headers: bearer(unlisted) });
    t.equal(scoped.statusCode, 403, "path subscription too");
    t.same(await list("/v1/jobs", unlisted), [], "no job of any subscription is listed");
    t.same(await list("/v1/audit", unlisted), [], "no audit entry of any subscription is shown");
    t.equal((await app.inject({ method: "GET", url: `/v1/jobs/${jobId}`, headers: bearer(unlisted) })).statusCode, 404, "another's job is not found");
    t.equal((await app.inject({ method: "GET", url: `/v1/jobs/${jobId}`, headers: bearer(await callerToken(sandbox, READER_APP)) })).statusCode, 404, "also for a reader");
  });

  t.test("a group entry grants its subscriptions", async (t) => {
    const member = await mintedToken(sandbox, ADMIN_APP, { groups: ["bbbbbbbb-0000-0000-0000-000000000000", GROUP.toUpperCase()] });
    t.equal((await submit(member)).statusCode, 202);
    t.ok((await list("/v1/jobs", member)).length >= 1, "its subscription's jobs are listed");
  });

  t.test("group overage is refused unless the application or object id is listed", async (t) => {
    for (const [name, claims] of [
      ["_claim_names/_claim_sources", overage],
      ["hasgroups", { hasgroups: true }],
    ] as const) {
      const token = await mintedToken(sandbox, ADMIN_APP, claims);
      for (const response of [await submit(token), await app.inject({ method: "GET", url: "/v1/jobs", headers: bearer(token) })]) {
        t.equal(response.statusCode, 403, name);
        t.match(response.headers["content-type"], /^application\/problem\+json/);
        t.match(response.json(), { code: "TokenGroupOverage", detail: /group overage.*not supported.*CMK_TOKEN_SUBSCRIPTIONS/is }, `${name}: says why and how to fix it`);
      }
    }
    const listedApp = await mintedToken(sandbox, OPERATOR_APP, overage);
    t.equal((await submit(listedApp)).statusCode, 202, "an application listed by its id needs no groups");
    const listedObject = await mintedToken(sandbox, ADMIN_APP, { ...overage, oid: USER_OID });
    t.equal((await submit(listedObject)).statusCode, 202, "nor does a listed object id");
  });
});

t.test("without CMK_TOKEN_SUBSCRIPTIONS, tokens (group overage too) may act on every subscription", async (t) => {
  const sandbox = await startTestSandbox(t);
  const app = await buildTestApp(t, testConfig(t), undefined, { httpClient: sandboxHttpClient(sandbox) });
  const response = await app.inject({ method: "POST", url: "/v1/change-requests", payload: dryRun, headers: { authorization: `Bearer ${await mintedToken(sandbox, ADMIN_APP, overage)}` } });
  t.equal(response.statusCode, 202);
});
