import { generateKeyPairSync, randomUUID } from "node:crypto";
import t from "tap";
import { buildTestApp, KEYS, testConfig } from "../helpers/app.js";
import { sandboxHttpClient, startTestSandbox } from "../helpers/sandbox.js";
import { callerToken, callerTokens, decodeJwt, forgeJwt, mintedToken, sandboxSigningKey } from "../helpers/tokens.js";
import { ADMIN_APP, fhirServiceId, FHIR_SYS, keyUrl, KV_SANDBOX, KEY_RSA_2048, OPERATOR_APP, READER_APP, VERSION_2 } from "../../src/sandbox/seed.js";

const setKey = { operation: "SetKey", fhirServiceId: fhirServiceId(FHIR_SYS), keyEncryptionKeyUrl: keyUrl(KV_SANDBOX, KEY_RSA_2048, VERSION_2), identity: { type: "SystemAssigned" } };

t.test("Entra ID bearer tokens from the sandbox (sandbox mode: the emulator is the issuer)", async (t) => {
  const sandbox = await startTestSandbox(t);
  const app = await buildTestApp(t, testConfig(t), undefined, { httpClient: sandboxHttpClient(sandbox) });
  const { reader, operator, admin, noRole } = await callerTokens(sandbox);
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const getJob = (headers: Record<string, string>) => app.inject({ method: "GET", url: `/v1/jobs/${randomUUID()}`, headers });

  t.test("real tokens map CMK.* app roles to roles", async (t) => {
    t.equal((await getJob(bearer(reader))).statusCode, 404, "reader may read (the job does not exist)");
    const refused = await app.inject({ method: "POST", url: "/v1/change-requests", payload: setKey, headers: bearer(reader) });
    t.equal(refused.statusCode, 403);
    t.match(refused.json(), { code: "Forbidden", requiredRole: "operator" });

    const accepted = await app.inject({ method: "POST", url: "/v1/change-requests", payload: { ...setKey, dryRun: true }, headers: bearer(operator) });
    t.equal(accepted.statusCode, 202);
    t.equal(accepted.json().createdBy, OPERATOR_APP.clientId, "createdBy is the calling application");

    t.equal((await app.inject({ method: "GET", url: "/v1/audit", headers: bearer(operator) })).statusCode, 403, "operator may not read the audit trail");
    t.equal((await app.inject({ method: "GET", url: "/v1/audit", headers: bearer(admin) })).statusCode, 200, "admin may");
    t.equal((await getJob({ authorization: `bearer   ${reader}` })).statusCode, 404, "the scheme is case-insensitive");
  });

  t.test("a valid token with none of the app roles is 403, not 401", async (t) => {
    const response = await getJob(bearer(noRole));
    t.equal(response.statusCode, 403);
    t.match(response.json(), { code: "Forbidden", detail: /CMK\.Reader/ });
  });

  t.test("forged and unfit tokens are 401, and no answer repeats the token", async (t) => {
    const { header, claims } = decodeJwt(operator);
    const { privateKey, publicKey } = await sandboxSigningKey();
    const now = Math.floor(Date.now() / 1000);
    const ownKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
    const publicPem = publicKey.export({ type: "spki", format: "pem" });
    const [headerPart, payloadPart] = operator.split(".");
    const tampered = forgeJwt(header, { ...claims, roles: ["CMK.Admin"] }, ownKey).split(".");
    const cases: Array<[string, string, RegExp]> = [
      ["expired beyond the 60 s skew", forgeJwt(header, { ...claims, exp: now - 120, nbf: now - 3600 }, privateKey), /expired/],
      ["not yet valid beyond the skew", forgeJwt(header, { ...claims, nbf: now + 600, exp: now + 3600 }, privateKey), /not valid yet/],
      ["without exp", forgeJwt(header, { ...claims, exp: undefined }, privateKey), /well-formed/],
      ["for another audience", forgeJwt(header, { ...claims, aud: "https://management.azure.com" }, privateKey), /audience/],
      ["from another issuer", forgeJwt(header, { ...claims, iss: "https://login.microsoftonline.com/99999999-9999-9999-9999-999999999999/v2.0" }, privateKey), /issuer/],
      ["signed by a key the issuer does not publish (unknown kid)", forgeJwt({ ...header, kid: "not-a-published-kid" }, claims, ownKey), /key the issuer does not publish/],
      ["signed by another key under the issuer's kid", forgeJwt(header, claims, ownKey), /signature/],
      ["with a payload changed after signing", `${tampered[0]}.${tampered[1]}.${operator.split(".")[2]}`, /signature/],
      ["alg none", forgeJwt({ alg: "none", typ: "JWT" }, claims), /well-formed|algorithm/],
      ["alg none with the issuer's kid", `${Buffer.from(JSON.stringify({ ...header, alg: "none" })).toString("base64url")}.${payloadPart}.`, /well-formed|algorithm/],
      ["HS256 signed with the issuer's public key", forgeJwt({ ...header, alg: "HS256" }, claims, publicPem), /algorithm/],
      ["two segments", `${headerPart}.${payloadPart}`, /well-formed/],
      ["garbage", "not.a.token", /well-formed/],
    ];
    for (const [name, token, detail] of cases) {
      const response = await getJob(bearer(token));
      t.equal(response.statusCode, 401, name);
      t.match(response.headers["content-type"], /^application\/problem\+json/, `${name}: problem+json`);
      t.match(response.json(), { code: "Unauthorized", detail }, `${name}: says why`);
      const parts = [token, ...token.split(".").filter((part) => part.length > 20)];
      t.notOk(parts.some((part) => response.body.includes(part)), `${name}: the token is not echoed`);
    }
    const inSkew = forgeJwt(header, { ...claims, exp: now - 30 }, privateKey);
    t.equal((await getJob(bearer(inSkew))).statusCode, 404, "expired 30 s ago is still within the clock skew");
  });

  t.test("a token living longer than 24 hours, or without iat, is refused", async (t) => {
    const now = Math.floor(Date.now() / 1000);
    const lifetime = (hours: number, issuedSecondsAgo = 60) => ({ iat: now - issuedSecondsAgo, nbf: now - issuedSecondsAgo, exp: now - issuedSecondsAgo + hours * 3600 });
    const cases: Array<[string, Record<string, unknown>, RegExp]> = [
      ["a 25 h lifetime", lifetime(25), /lifetime.*24 h|24 h.*lifetime/],
      ["a 25 h lifetime issued 23 h ago (2 h left)", lifetime(25, 23 * 3600), /lifetime/],
      ["no iat", { ...lifetime(1), iat: null }, /iat/],
    ];
    for (const [name, claims, detail] of cases) {
      const token = await mintedToken(sandbox, READER_APP, claims);
      const response = await getJob(bearer(token));
      t.equal(response.statusCode, 401, name);
      t.match(response.json(), { code: "Unauthorized", detail }, `${name}: says why`);
      t.notOk(response.body.includes(token.split(".")[1]!), `${name}: the token is not echoed`);
    }
    t.equal((await getJob(bearer(await mintedToken(sandbox, READER_APP, lifetime(24))))).statusCode, 404, "exactly 24 h is accepted");
  });

  t.test("one credential at a time, and only the Bearer scheme", async (t) => {
    const both = await getJob({ ...bearer(reader), "x-api-key": KEYS.reader });
    t.equal(both.statusCode, 401);
    t.match(both.json().detail, /not both/);
    const basic = await getJob({ authorization: `Basic ${Buffer.from("a:b").toString("base64")}` });
    t.equal(basic.statusCode, 401);
    t.equal((await getJob({ authorization: "Bearer" })).statusCode, 401, "a scheme without a token");
  });
});

t.test("without the sandbox routing client, sandbox mode fetches nothing and refuses tokens", async (t) => {
  const sandbox = await startTestSandbox(t);
  const app = await buildTestApp(t, testConfig(t));
  const response = await app.inject({ method: "GET", url: `/v1/jobs/${randomUUID()}`, headers: { authorization: `Bearer ${await callerToken(sandbox, READER_APP)}` } });
  t.equal(response.statusCode, 401);
});

t.test("CMK_TOKEN_MAX_LIFETIME_MINUTES sets the longest lifetime a token may have", async (t) => {
  const sandbox = await startTestSandbox(t);
  const app = await buildTestApp(t, testConfig(t, { CMK_TOKEN_MAX_LIFETIME_MINUTES: "30" }), undefined, { httpClient: sandboxHttpClient(sandbox) });
  const response = await app.inject({ method: "GET", url: `/v1/jobs/${randomUUID()}`, headers: { authorization: `Bearer ${await callerToken(sandbox, READER_APP)}` } });
  t.equal(response.statusCode, 401, "an ordinary 1 h token is over a 30 min bound");
  t.match(response.json(), { code: "Unauthorized", detail: /30 min/ });
});

t.test("azure mode with no issuer configured refuses bearer tokens with 401", async (t) => {
  const sandbox = await startTestSandbox(t);
  const config = testConfig(t, { CMK_MODE: "azure" });
  const app = await buildTestApp(t, config, undefined, { httpClient: sandboxHttpClient(sandbox) });
  const response = await app.inject({ method: "GET", url: `/v1/jobs/${randomUUID()}`, headers: { authorization: `Bearer ${await callerToken(sandbox, ADMIN_APP)}` } });
  t.equal(response.statusCode, 401);
  t.match(response.json(), { code: "Unauthorized", detail: /CMK_AUTH_ISSUER/ });
  t.equal((await app.inject({ method: "GET", url: `/v1/jobs/${randomUUID()}`, headers: { "x-api-key": KEYS.reader } })).statusCode, 404, "API keys still work");
});

t.test("azure mode with an issuer and audience configured accepts that issuer's tokens", async (t) => {
  const sandbox = await startTestSandbox(t);
  const config = testConfig(t, {
    CMK_MODE: "azure",
    CMK_AUTH_ISSUER: "https://login.microsoftonline.com/11111111-1111-1111-1111-111111111111/v2.0",
    CMK_AUTH_AUDIENCE: "00000000-0000-0000-0000-000000000000, api://cmk-service",
  });
  const app = await buildTestApp(t, config, undefined, { httpClient: sandboxHttpClient(sandbox) });
  const response = await app.inject({ method: "GET", url: `/v1/jobs/${randomUUID()}`, headers: { authorization: `Bearer ${await callerToken(sandbox, READER_APP)}` } });
  t.equal(response.statusCode, 404, "the second of two configured audiences matches");
});
