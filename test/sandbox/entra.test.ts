import { createPublicKey, verify } from "node:crypto";
import t from "tap";
import { seed } from "../../src/sandbox/index.js";
import { sandboxCredential, sandboxRequest, startTestSandbox } from "../helpers/sandbox.js";

function decode(token: string): { header: Record<string, unknown>; claims: Record<string, unknown> } {
  const [header, claims] = token.split(".").slice(0, 2).map((part) => JSON.parse(Buffer.from(part, "base64url").toString("utf8")) as Record<string, unknown>);
  return { header: header ?? {}, claims: claims ?? {} };
}

t.test("ClientSecretCredential gets an ARM token signed by the published key", async (t) => {
  const sandbox = await startTestSandbox(t);
  const token = await sandboxCredential(sandbox).getToken("https://management.azure.com/.default");
  t.ok(token.expiresOnTimestamp > Date.now() + 50 * 60_000, "valid for about an hour");

  const { header, claims } = decode(token.token);
  t.equal(header.alg, "RS256");
  t.match(claims, {
    aud: "https://management.azure.com",
    iss: `https://login.microsoftonline.com/${seed.TENANT_ID}/v2.0`,
    tid: seed.TENANT_ID,
    oid: seed.SERVICE_APP.objectId,
    appid: seed.SERVICE_APP.clientId,
    azp: seed.SERVICE_APP.clientId,
  });
  t.notOk("roles" in claims, "no app roles for ARM");

  const jwks = await sandboxRequest(sandbox, { path: `/${seed.TENANT_ID}/discovery/v2.0/keys`, host: "login.microsoftonline.com" });
  const jwk = (jwks.json as { keys: Record<string, string>[] }).keys.find((key) => key.kid === header.kid);
  t.ok(jwk, "token kid is in the JWKS");
  const [h, p, s] = token.token.split(".");
  const publicKey = createPublicKey({ key: { kty: "RSA", n: jwk?.n, e: jwk?.e }, format: "jwk" });
  t.ok(verify("sha256", Buffer.from(`${h}.${p}`), publicKey, Buffer.from(s ?? "", "base64url")), "signature verifies");
});

t.test("caller apps get tokens for api://cmk-service with their app role", async (t) => {
  const sandbox = await startTestSandbox(t);
  for (const app of [seed.READER_APP, seed.OPERATOR_APP, seed.ADMIN_APP]) {
    const token = await sandboxCredential(sandbox, app).getToken("api://cmk-service/.default");
    t.match(decode(token.token).claims, { aud: "api://cmk-service", roles: app.roles, appid: app.clientId, oid: app.objectId });
  }
});

t.test("a wrong secret and an unknown client are refused with Entra's errors", async (t) => {
  const sandbox = await startTestSandbox(t);
  await t.rejects(sandboxCredential(sandbox, seed.SERVICE_APP, "wrong").getToken("https://management.azure.com/.default"), /7000215/);

  const form = (clientId: string, secret: string) =>
    new URLSearchParams({ grant_type: "client_credentials", client_id: clientId, client_secret: secret, scope: "https://management.azure.com/.default" }).toString();
  const tokenPath = `/${seed.TENANT_ID}/oauth2/v2.0/token`;
  const headers = { "content-type": "application/x-www-form-urlencoded" };
  const wrong = await sandboxRequest(sandbox, { method: "POST", path: tokenPath, host: "login.microsoftonline.com", headers, body: form(seed.SERVICE_APP.clientId, "nope") });
  t.equal(wrong.status, 401);
  t.match(wrong.json, { error: "invalid_client", error_codes: [7000215], error_description: /^AADSTS7000215: Invalid client secret provided\./ });
  t.equal(wrong.headers["content-type"], "application/json; charset=utf-8");

  const unknown = await sandboxRequest(sandbox, { method: "POST", path: tokenPath, host: "login.microsoftonline.com", headers, body: form("99999999-9999-9999-9999-999999999999", "x") });
  t.equal(unknown.status, 400);
  t.match(unknown.json, { error: "unauthorized_client", error_codes: [700016] });
});

t.test("OpenID metadata names the host it was asked on", async (t) => {
  const sandbox = await startTestSandbox(t);
  const path = `/${seed.TENANT_ID}/v2.0/.well-known/openid-configuration`;
  const production = await sandboxRequest(sandbox, { path, host: "login.microsoftonline.com" });
  t.match(production.json, {
    issuer: `https://login.microsoftonline.com/${seed.TENANT_ID}/v2.0`,
    token_endpoint: `https://login.microsoftonline.com/${seed.TENANT_ID}/oauth2/v2.0/token`,
    jwks_uri: `https://login.microsoftonline.com/${seed.TENANT_ID}/discovery/v2.0/keys`,
    authorization_endpoint: String,
  });
  const local = await sandboxRequest(sandbox, { path });
  t.match(local.json, { issuer: `${sandbox.url}/${seed.TENANT_ID}/v2.0`, token_endpoint: `${sandbox.url}/${seed.TENANT_ID}/oauth2/v2.0/token` });

  const otherTenant = await sandboxRequest(sandbox, { path: "/33333333-3333-3333-3333-333333333333/v2.0/.well-known/openid-configuration" });
  t.equal(otherTenant.status, 400);
  t.match(otherTenant.json, { error_codes: [90002] });
});

t.test("workload identity's token exchange: a federated token is checked against the seed's federated credentials", async (t) => {
  const sandbox = await startTestSandbox(t);
  const serviceAccountToken = async (body: object) => {
    const response = await sandboxRequest(sandbox, { method: "POST", path: "/_sandbox/service-account-tokens", body });
    return (response.json as { token: string }).token;
  };
  const exchange = (clientId: string, assertion: string, assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer") =>
    sandboxRequest(sandbox, {
      method: "POST",
      path: `/${seed.TENANT_ID}/oauth2/v2.0/token`,
      host: "login.microsoftonline.com",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "client_credentials", client_id: clientId, scope: "https://management.azure.com/.default", client_assertion_type: assertionType, client_assertion: assertion }).toString(),
    });
  const good = await serviceAccountToken({ subject: seed.WORKLOAD_SUBJECT });
  t.match(decode(good).claims, { iss: seed.AKS_OIDC_ISSUER, sub: seed.WORKLOAD_SUBJECT, aud: [seed.TOKEN_EXCHANGE_AUDIENCE], "kubernetes.io": { namespace: "cmk", serviceaccount: { name: "cmk-service" } } });

  const app = await exchange(seed.SERVICE_APP.clientId, good);
  t.equal(app.status, 200);
  t.match(decode((app.json as { access_token: string }).access_token).claims, { oid: seed.SERVICE_APP.objectId, aud: "https://management.azure.com" });
  const identity = await exchange(seed.UAMI_SANDBOX_CLIENT_ID, good);
  t.match(decode((identity.json as { access_token: string }).access_token).claims, { oid: seed.UAMI_SANDBOX_PRINCIPAL_ID, appid: seed.UAMI_SANDBOX_CLIENT_ID });

  const refused = async (response: Promise<{ status: number; json: unknown }>, status: number, code: number) => {
    const { status: actual, json } = await response;
    t.equal(actual, status);
    t.match(json, { error_codes: [code] });
    return (json as { error_description: string }).error_description;
  };
  t.match(await refused(exchange(seed.UAMI_NOROLE_CLIENT_ID, good), 400, 70021), /No matching federated identity record found for presented assertion\. Assertion Issuer: '.*aks-sandbox\/'\. Assertion Subject: 'system:serviceaccount:cmk:cmk-service'/, "an identity without a federated credential");
  await refused(exchange(seed.SERVICE_APP.clientId, await serviceAccountToken({ subject: seed.WORKLOAD_SUBJECT, audience: "api://other" })), 400, 70021);
  await refused(exchange(seed.SERVICE_APP.clientId, await serviceAccountToken({ subject: seed.WORKLOAD_SUBJECT, issuer: "https://oidc.example/" })), 400, 70021);
  await refused(exchange(seed.SERVICE_APP.clientId, await serviceAccountToken({ subject: seed.WORKLOAD_SUBJECT, expiresInSeconds: -60 })), 400, 700024);
  await refused(exchange(seed.SERVICE_APP.clientId, `${good.slice(0, -4)}AAAA`), 400, 700027);
  await refused(exchange(seed.SERVICE_APP.clientId, good, "urn:other"), 400, 50027);
  await refused(exchange("99999999-9999-4999-8999-999999999999", good), 400, 700016);
});

t.test("the managed identity endpoint: X-IDENTITY-HEADER, api-version and resource are required, as App Service's", async (t) => {
  const sandbox = await startTestSandbox(t, { managedIdentityEndpoint: true });
  const { url, header } = sandbox.managedIdentity!;
  const get = async (query: string, headers: Record<string, string> = { "x-identity-header": header }) => {
    const response = await fetch(`${url}?${query}`, { headers });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  const resource = "resource=https%3A%2F%2Fmanagement.azure.com";
  t.match(await get(`api-version=2019-08-01&${resource}`, {}), { status: 401, body: { statusCode: 401 } });
  t.match(await get(`api-version=2017-09-01&${resource}`), { status: 400, body: { message: /api-version/ } });
  t.match(await get("api-version=2019-08-01"), { status: 400, body: { message: /resource/ } });
  t.match(await get(`api-version=2019-08-01&${resource}&client_id=${seed.UAMI_OTHER_CLIENT_ID.replace("c3", "ff")}`), { status: 400, body: { statusCode: 400, message: "Unable to load the proper Managed Identity.", correlationId: /^[0-9a-f-]{36}$/ } });
  const system = await get(`api-version=2019-08-01&${resource}`);
  t.match(system, { status: 200, body: { token_type: "Bearer", resource: "https://management.azure.com", client_id: seed.SERVICE_APP.clientId, expires_on: /^\d+$/ } });
  t.match(decode(system.body.access_token as string).claims, { oid: seed.SERVICE_APP.objectId, aud: "https://management.azure.com" });
  const byObjectId = await get(`api-version=2019-08-01&${resource}&object_id=${seed.UAMI_NOROLE_PRINCIPAL_ID}`);
  t.match(decode(byObjectId.body.access_token as string).claims, { oid: seed.UAMI_NOROLE_PRINCIPAL_ID });
  const byResourceId = await get(`api-version=2019-08-01&${resource}&mi_res_id=${encodeURIComponent(seed.userAssignedIdentityId(seed.UAMI_SANDBOX))}`);
  t.match(decode(byResourceId.body.access_token as string).claims, { oid: seed.UAMI_SANDBOX_PRINCIPAL_ID });
});
