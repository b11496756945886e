import { CryptographyClient, KeyClient } from "@azure/keyvault-keys";
import { constants, createHash, createPublicKey, publicEncrypt, verify } from "node:crypto";
import t from "tap";
import { seed } from "../../src/sandbox/index.js";
import type { RunningSandbox } from "../../src/sandbox/index.js";
import { sandboxCredential, sandboxHttpClient, sandboxRequest, startTestSandbox } from "../helpers/sandbox.js";

/**
 * encrypt, decrypt, sign and verify with the key version's real RSA key (issue 14, item 6), checked
 * from outside with node:crypto and the public key Key Vault hands out, and refused like wrapKey and
 * unwrapKey are: key_ops, enabled, nbf/exp, RBAC.
 */

const sandbox = await startTestSandbox(t);
const kid = seed.keyUrl(seed.KV_SANDBOX, seed.KEY_RSA_2048, seed.VERSION_2);

async function token(app: seed.SeedApp = seed.SERVICE_APP): Promise<string> {
  return (await sandboxCredential(sandbox, app).getToken("https://vault.azure.net/.default")).token;
}

/** A raw data-plane POST: the SDK's CryptographyClient does some of these locally with the public key. */
async function operate(box: RunningSandbox, key: string, version: string, operation: string, body: object, app?: seed.SeedApp) {
  return sandboxRequest(box, {
    method: "POST",
    path: `/keys/${key}/${version}/${operation}?api-version=7.5`,
    host: `${seed.KV_SANDBOX}.vault.azure.net`,
    headers: { authorization: `Bearer ${await token(app)}` },
    body,
  });
}

const publicKeyOf = async (name: string) => {
  const key = await new KeyClient(seed.vaultUrl(seed.KV_SANDBOX), sandboxCredential(sandbox), { httpClient: sandboxHttpClient(sandbox) }).getKey(name);
  const jwk = { kty: "RSA", n: Buffer.from(key.key?.n ?? []).toString("base64url"), e: Buffer.from(key.key?.e ?? []).toString("base64url") };
  return createPublicKey({ key: jwk, format: "jwk" });
};

t.test("encrypt and decrypt round-trip for RSA-OAEP, RSA-OAEP-256 and RSA1_5; data encrypted outside decrypts inside", async (t) => {
  const crypto = new CryptographyClient(kid, sandboxCredential(sandbox), { httpClient: sandboxHttpClient(sandbox) });
  const plaintext = Buffer.from("the FHIR service's data encryption key");
  for (const algorithm of ["RSA-OAEP", "RSA-OAEP-256", "RSA1_5"] as const) {
    const encrypted = await operate(sandbox, seed.KEY_RSA_2048, seed.VERSION_2, "encrypt", { alg: algorithm, value: plaintext.toString("base64url") });
    t.equal(encrypted.status, 200, `${algorithm}: encrypt`);
    t.match(encrypted.json, { kid, value: /^[A-Za-z0-9_-]{342}$/ }, "a 2048-bit ciphertext, base64url");
    const decrypted = await crypto.decrypt({ algorithm, ciphertext: Buffer.from((encrypted.json as { value: string }).value, "base64url") });
    t.equal(Buffer.from(decrypted.result).toString(), plaintext.toString(), `${algorithm}: the SDK's decrypt gives the plaintext back`);
  }
  // Encrypted by anyone with the public key (RSA-OAEP, as the SDK does locally): only the key decrypts it.
  const outside = publicEncrypt({ key: await publicKeyOf(seed.KEY_RSA_2048), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" }, plaintext);
  const inside = await operate(sandbox, seed.KEY_RSA_2048, seed.VERSION_2, "decrypt", { alg: "RSA-OAEP", value: outside.toString("base64url") });
  t.equal(Buffer.from((inside.json as { value: string }).value, "base64url").toString(), plaintext.toString());
  const garbage = await operate(sandbox, seed.KEY_RSA_2048, seed.VERSION_2, "decrypt", { alg: "RSA-OAEP", value: Buffer.alloc(256, 9).toString("base64url") });
  t.equal(garbage.status, 400, "a ciphertext the key did not make");
  t.match(garbage.json, { error: { code: "BadParameter" } });
  const unknown = await operate(sandbox, seed.KEY_RSA_2048, seed.VERSION_2, "encrypt", { alg: "A256GCM", value: "AAAA" });
  t.match(unknown.json, { error: { code: "BadParameter", message: /RSA-OAEP, RSA-OAEP-256, RSA1_5/ } });
});

t.test("sign and verify RS256/384/512 and PS256/384/512 over a digest; node:crypto agrees with the signatures", async (t) => {
  const crypto = new CryptographyClient(kid, sandboxCredential(sandbox), { httpClient: sandboxHttpClient(sandbox) });
  const publicKey = await publicKeyOf(seed.KEY_RSA_2048);
  const data = Buffer.from("a change request worth signing");
  for (const algorithm of ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"] as const) {
    const hash = `sha${algorithm.slice(2)}`;
    const digest = createHash(hash).update(data).digest();
    const signed = await crypto.sign(algorithm, digest);
    t.equal(signed.keyID, kid);
    const pss = algorithm.startsWith("PS");
    const key = pss ? { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: digest.length } : publicKey;
    t.ok(verify(hash, data, key, Buffer.from(signed.result)), `${algorithm}: node:crypto verifies the signature`);
    t.equal((await crypto.verify(algorithm, digest, signed.result)).result, true, `${algorithm}: Key Vault verifies it`);
    const tampered = Buffer.from(digest);
    tampered[0] = (tampered[0] ?? 0) ^ 1;
    t.equal((await crypto.verify(algorithm, tampered, signed.result)).result, false, `${algorithm}: and not for another digest`);
  }
  const short = await operate(sandbox, seed.KEY_RSA_2048, seed.VERSION_2, "sign", { alg: "RS256", value: Buffer.alloc(20).toString("base64url") });
  t.match(short.json, { error: { code: "BadParameter", message: /32 bytes/ } }, "a digest of the wrong length");
});

t.test("the same refusals as wrapKey: key_ops, disabled, expired, not yet valid, not RSA, no role", async (t) => {
  const digest = createHash("sha256").update("x").digest().toString("base64url");
  const nowrap = await operate(sandbox, seed.KEY_NOWRAP, seed.VERSION_1, "encrypt", { alg: "RSA-OAEP", value: "AAAA" });
  t.equal(nowrap.status, 400);
  t.match(nowrap.json, { error: { code: "BadParameter", message: "Operation encrypt is not permitted on this key." } });
  t.equal((await operate(sandbox, seed.KEY_NOWRAP, seed.VERSION_1, "sign", { alg: "RS256", value: digest })).status, 200, "cmk-nowrap may sign");
  t.match((await operate(sandbox, seed.KEY_DISABLED, seed.VERSION_1, "sign", { alg: "RS256", value: digest })).json, { error: { code: "Forbidden", innererror: { code: "KeyDisabled" } } });
  t.match((await operate(sandbox, seed.KEY_EXPIRED, seed.VERSION_1, "decrypt", { alg: "RSA-OAEP", value: "AAAA" })).json, { error: { code: "Forbidden", innererror: { code: "KeyExpired" } } });
  t.match((await operate(sandbox, seed.KEY_EC, seed.VERSION_1, "sign", { alg: "RS256", value: digest })).json, { error: { code: "BadParameter", message: /key type EC/ } });
  const client = new KeyClient(seed.vaultUrl(seed.KV_SANDBOX), sandboxCredential(sandbox), { httpClient: sandboxHttpClient(sandbox) });
  const later = await client.createRsaKey("cmk-later", { notBefore: new Date(Date.now() + 86_400_000) });
  t.match((await operate(sandbox, "cmk-later", later.properties.version ?? "", "verify", { alg: "RS256", digest, value: "AAAA" })).json, { error: { innererror: { code: "KeyNotYetValid" } } });
  const reader = await operate(sandbox, seed.KEY_RSA_2048, seed.VERSION_2, "sign", { alg: "RS256", value: digest }, seed.READER_APP);
  t.equal(reader.status, 403);
  t.match(reader.json, { error: { innererror: { code: "ForbiddenByRbac" }, message: /Action: 'Microsoft\.KeyVault\/vaults\/keys\/sign\/action'/ } });
  t.match((await operate(sandbox, seed.KEY_RSA_2048, seed.VERSION_2, "verify", { alg: "RS256", value: "AAAA" })).json, { error: { message: "'digest' is required." } });
});
