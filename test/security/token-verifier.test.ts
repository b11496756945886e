import { constants, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import t from "tap";
import { createTokenVerifier, type TokenError } from "../../src/security/token-verifier.js";
import { tokenPrincipal } from "../../src/security/token-principal.js";

const ISSUER = "https://login.example.test/tenant/v2.0";
const segment = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

type Signer = (input: Buffer, key: KeyObject) => Buffer;
const SIGNERS: Record<string, Signer> = {
  RS256: (input, key) => sign("sha256", input, key),
  PS384: (input, key) => sign("sha384", input, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }),
  ES256: (input, key) => sign("sha256", input, { key, dsaEncoding: "ieee-p1363" }),
  ES384: (input, key) => sign("sha384", input, { key, dsaEncoding: "ieee-p1363" }),
};

function token(alg: string, kid: string, key: KeyObject, claims: Record<string, unknown>): string {
  const input = `${segment({ alg, kid, typ: "JWT" })}.${segment(claims)}`;
  return `${input}.${SIGNERS[alg]!(Buffer.from(input), key).toString("base64url")}`;
}

t.test("RS, PS and ES signatures verify with keys of their own family only", async (t) => {
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const smallRsa = generateKeyPairSync("rsa", { modulusLength: 1024 });
  const p256 = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const p384 = generateKeyPairSync("ec", { namedCurve: "P-384" });
  const published = new Map<string, KeyObject>([
    ["rsa", rsa.publicKey],
    ["small", smallRsa.publicKey],
    ["p256", p256.publicKey],
    ["p384", p384.publicKey],
  ]);
  const now = 1_700_000_000;
  const verifier = createTokenVerifier({ issuer: ISSUER, audiences: ["api://x"], keys: { get: async (kid) => published.get(kid) }, now: () => now * 1000 });
  const claims = { iss: ISSUER, aud: ["other", "api://x"], exp: now + 600, nbf: now - 10 };
  const reason = async (jwt: string) => verifier.verify(jwt).then(() => "valid", (error: TokenError) => error.reason);

  t.equal(await reason(token("RS256", "rsa", rsa.privateKey, claims)), "valid", "RS256");
  t.equal(await reason(token("PS384", "rsa", rsa.privateKey, claims)), "valid", "PS384");
  t.equal(await reason(token("ES256", "p256", p256.privateKey, claims)), "valid", "ES256");
  t.equal(await reason(token("ES384", "p384", p384.privateKey, claims)), "valid", "ES384");
  t.equal(await reason(token("ES384", "p256", p256.privateKey, claims)), "signature", "ES384 header on a P-256 key");
  t.equal(await reason(token("RS256", "p256", rsa.privateKey, claims)), "signature", "an RSA signature checked with an EC key");
  t.equal(await reason(token("RS256", "small", smallRsa.privateKey, claims)), "signature", "RSA keys under 2048 bits are not trusted");
  t.equal(await reason(token("RS256", "missing", rsa.privateKey, claims)), "unknownKey");
  t.equal(await reason(token("RS256", "rsa", rsa.privateKey, { ...claims, aud: "api://y" })), "audience");
  t.equal(await reason(token("RS256", "rsa", rsa.privateKey, { ...claims, nbf: "soon" })), "notYetValid", "a non-numeric nbf is not trusted");
  t.equal(await reason(`${segment({ alg: "RS256", kid: "rsa", crit: ["exp"] })}.${segment(claims)}.AAAA`), "malformed", "unknown critical headers");
  t.equal(await reason(`${segment({ alg: "RS256", kid: "rsa", typ: "JWE" })}.${segment(claims)}.AAAA`), "malformed", "another typ");
  t.equal(await reason(`${segment({ alg: "RS256", kid: "rsa" })}.${segment([1, 2])}.AAAA`), "malformed", "claims that are not an object");
  t.equal(await reason(`${segment({ alg: "RS256", kid: "rsa" })}.${"A".repeat(20_000)}.AAAA`), "malformed", "oversized");
  t.equal(await reason(`${segment({ alg: "RS256" })}.${segment(claims)}.AAAA`), "unknownKey", "no kid");
});

t.test("claims become a principal", async (t) => {
  t.match(tokenPrincipal({ idtyp: "app", azp: "app-1", oid: "sp-1", roles: ["CMK.Reader", "CMK.Admin", "Other", "constructor"] }), { name: "app-1", kind: "token", role: "admin" });
  t.match(tokenPrincipal({ scp: "user_impersonation", azp: "portal", oid: "user-oid", name: "Jane\u0000 Doe\u202e", roles: ["CMK.Operator"] }), { name: "Jane Doe (user-oid)", role: "operator" }, "delegated: the user, control characters dropped");
  t.equal(tokenPrincipal({ azp: "app-1", roles: "CMK.Admin" }).role, undefined, "roles must be an array");
  t.equal(tokenPrincipal({ azp: "app-1" }).role, undefined);

  const configured = { "APP-1": ["AAAAAAAA-0000-0000-0000-000000000000"], "group-1": ["bbbbbbbb-0000-0000-0000-000000000000"], other: ["cccccccc-0000-0000-0000-000000000000"] };
  t.same(tokenPrincipal({ azp: "app-1", groups: ["group-1", 7] }, configured).subscriptions, ["aaaaaaaa-0000-0000-0000-000000000000", "bbbbbbbb-0000-0000-0000-000000000000"], "union of the app's and its groups' lists");
  t.same(tokenPrincipal({ azp: "app-2" }, configured).subscriptions, [], "not listed: no subscription");
  t.equal(tokenPrincipal({ azp: "app-2" }).subscriptions, undefined, "no lists configured: every subscription");
  t.throws(() => tokenPrincipal({ azp: "app-2", _claim_names: { groups: "src1" } }, configured), { code: "TokenGroupOverage", statusCode: 403 }, "group overage, not listed: refused");
  t.same(tokenPrincipal({ azp: "app-1", hasgroups: true }, configured).subscriptions, ["aaaaaaaa-0000-0000-0000-000000000000"], "group overage of a listed app: its own list");
});
