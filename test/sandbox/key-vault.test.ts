import { CryptographyClient, KeyClient } from "@azure/keyvault-keys";
import { randomBytes } from "node:crypto";
import t from "tap";
import { seed } from "../../src/sandbox/index.js";
import type { RunningSandbox } from "../../src/sandbox/index.js";
import { recordingHttpClient, retryDelay, sandboxCredential, sandboxHttpClient, sandboxRequest, startTestSandbox, TIMER_SLACK_MS } from "../helpers/sandbox.js";

function keyClient(sandbox: RunningSandbox, vault: string = seed.KV_SANDBOX, app: seed.SeedApp = seed.SERVICE_APP): KeyClient {
  return new KeyClient(seed.vaultUrl(vault), sandboxCredential(sandbox, app), { httpClient: sandboxHttpClient(sandbox) });
}

t.test("the challenge comes first, before the body is looked at", async (t) => {
  const sandbox = await startTestSandbox(t);
  const probe = await sandboxRequest(sandbox, {
    method: "POST",
    path: "/keys/new-key/create?api-version=7.5",
    host: "kvsandbox.vault.azure.net",
    headers: { "content-type": "application/json", "content-length": "0" },
  });
  t.equal(probe.status, 401);
  t.same(probe.json, { error: { code: "Unauthorized", message: "AKV10000: Request is missing a Bearer or PoP token." } });
  t.equal(probe.headers["www-authenticate"], `Bearer authorization="https://login.microsoftonline.com/${seed.TENANT_ID}", resource="https://vault.azure.net"`);
  t.equal(probe.headers["strict-transport-security"], "max-age=31536000;includeSubDomains");
  t.equal(probe.headers["x-ms-keyvault-region"], "westus3");
});

t.test("KeyClient reads keys, versions and lists with real key material", async (t) => {
  const sandbox = await startTestSandbox(t);
  const client = keyClient(sandbox);
  const latest = await client.getKey(seed.KEY_RSA_2048);
  t.equal(latest.id, seed.keyUrl(seed.KV_SANDBOX, seed.KEY_RSA_2048, seed.VERSION_2));
  t.equal(latest.keyType, "RSA");
  t.equal(Buffer.from(latest.key?.n ?? []).length, 256, "2048-bit modulus");
  t.equal(latest.properties.recoveryLevel, "Recoverable");
  t.equal(latest.properties.recoverableDays, 90);
  t.same(latest.keyOperations, ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"]);

  const first = await client.getKey(seed.KEY_RSA_2048, { version: seed.VERSION_1 });
  t.equal(first.properties.version, seed.VERSION_1);
  const versions: string[] = [];
  for await (const properties of client.listPropertiesOfKeyVersions(seed.KEY_RSA_2048)) versions.push(properties.version ?? "");
  t.same(versions, [seed.VERSION_1, seed.VERSION_2]);
  const names: string[] = [];
  for await (const properties of client.listPropertiesOfKeys()) names.push(properties.name);
  t.equal(names.length, 8);

  const disabled = await client.getKey(seed.KEY_DISABLED);
  t.equal(disabled.properties.enabled, false, "a disabled key can still be read");
  const expired = await client.getKey(seed.KEY_EXPIRED);
  t.ok(expired.properties.expiresOn && expired.properties.expiresOn < new Date());
  const ec = await client.getKey(seed.KEY_EC);
  t.equal(ec.key?.crv, "P-256");

  const nopurge = await keyClient(sandbox, seed.KV_NOPURGE).getKey(seed.KEY_RSA_2048);
  t.equal(nopurge.properties.recoveryLevel, "Recoverable+Purgeable");

  await t.rejects(client.getKey("cmk-missing"), { statusCode: 404, code: "KeyNotFound" });
  const log = (await sandboxRequest(sandbox, { path: "/_sandbox/requests" })).json as { host: string; status: number }[];
  t.equal(log.find((entry) => entry.host === "kvsandbox.vault.azure.net")?.status, 401, "the SDK's first request is the challenge probe");
});

t.test("create, rotate, update, delete, recover and purge", async (t) => {
  const sandbox = await startTestSandbox(t);
  const client = keyClient(sandbox);
  const rsa2048 = await client.createRsaKey("cmk-new-2048");
  t.equal(Buffer.from(rsa2048.key?.n ?? []).length, 256, "RSA defaults to 2048 bits");
  t.same(rsa2048.keyOperations, ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"], "default key_ops, in the service's order");
  const ec = await client.createEcKey("cmk-new-ec", { curve: "P-384" });
  t.match(ec, { keyType: "EC", key: { crv: "P-384" } });
  t.equal(Buffer.from(ec.key?.x ?? []).length, 48, "a real P-384 point");
  const created = await client.createRsaKey("cmk-new", { keySize: 3072 });
  t.match(created.properties.version, /^[0-9a-f]{32}$/);
  t.equal(Buffer.from(created.key?.n ?? []).length, 384);

  await client.updateKeyRotationPolicy("cmk-new", { expiresIn: "P30D", lifetimeActions: [{ action: "Rotate", timeAfterCreate: "P15D" }] });
  const rotated = await client.rotateKey("cmk-new");
  t.not(rotated.properties.version, created.properties.version);
  t.ok(rotated.properties.expiresOn, "exp from the rotation policy");

  const updated = await client.updateKeyProperties("cmk-new", rotated.properties.version ?? "", { enabled: false });
  t.equal(updated.properties.enabled, false);

  const poller = await client.beginDeleteKey("cmk-new", { intervalInMs: 50 });
  const deleted = await poller.pollUntilDone();
  t.equal(deleted.properties.recoveryId, "https://kvsandbox.vault.azure.net/deletedkeys/cmk-new");
  await t.rejects(client.getKey("cmk-new"), { name: "RestError", statusCode: 404 });
  await t.rejects(client.createRsaKey("cmk-new"), { name: "RestError", statusCode: 409 });
  await t.rejects(client.purgeDeletedKey("cmk-new"), { name: "RestError", statusCode: 403 }, "purge protection");
  const recovered = await (await client.beginRecoverDeletedKey("cmk-new", { intervalInMs: 50 })).pollUntilDone();
  t.equal(recovered.properties.version, rotated.properties.version);

  const nopurge = keyClient(sandbox, seed.KV_NOPURGE);
  await (await nopurge.beginDeleteKey(seed.KEY_RSA_2048, { intervalInMs: 50 })).pollUntilDone();
  await nopurge.purgeDeletedKey(seed.KEY_RSA_2048);
  await t.rejects(nopurge.getDeletedKey(seed.KEY_RSA_2048), { name: "RestError", statusCode: 404 });
});

t.test("CryptographyClient: local RSA-OAEP wrap, remote unwrap", async (t) => {
  const sandbox = await startTestSandbox(t);
  const credential = sandboxCredential(sandbox);
  const options = { httpClient: sandboxHttpClient(sandbox) };
  const kid = seed.keyUrl(seed.KV_SANDBOX, seed.KEY_RSA_2048, seed.VERSION_1);
  const crypto = new CryptographyClient(kid, credential, options);
  const secret = randomBytes(32);
  for (const algorithm of ["RSA-OAEP", "RSA-OAEP-256"] as const) {
    const wrapped = await crypto.wrapKey(algorithm, secret);
    t.equal(wrapped.keyID, kid);
    const unwrapped = await crypto.unwrapKey(algorithm, wrapped.result);
    t.ok(Buffer.from(unwrapped.result).equals(secret), `${algorithm} round-trips`);
  }
  const log = (await sandboxRequest(sandbox, { path: "/_sandbox/requests" })).json as { method: string; path: string }[];
  t.equal(log.filter((entry) => entry.method === "POST" && entry.path.endsWith("/wrapkey")).length, 1, "RSA-OAEP wraps locally, RSA-OAEP-256 remotely");
  t.equal(log.filter((entry) => entry.method === "POST" && entry.path.endsWith("/unwrapkey")).length, 2, "unwraps go to the vault");

  const disabled = new CryptographyClient(seed.keyUrl(seed.KV_SANDBOX, seed.KEY_DISABLED, seed.VERSION_1), credential, options);
  await t.rejects(disabled.unwrapKey("RSA-OAEP-256", randomBytes(256)), { statusCode: 403, code: "Forbidden" });
});

t.test("RBAC and the vault firewall", async (t) => {
  const sandbox = await startTestSandbox(t);
  await t.rejects(keyClient(sandbox, seed.KV_SANDBOX, seed.READER_APP).getKey(seed.KEY_RSA_2048), { statusCode: 403, code: "Forbidden" });
  const raw = await sandboxRequest(sandbox, {
    path: "/keys/cmk-rsa-2048/?api-version=7.5",
    host: "kvsandbox.vault.azure.net",
    headers: { authorization: `Bearer ${(await sandboxCredential(sandbox, seed.READER_APP).getToken("https://vault.azure.net/.default")).token}` },
  });
  t.match(raw.json, { error: { code: "Forbidden", innererror: { code: "ForbiddenByRbac" } } });

  await t.rejects(keyClient(sandbox, seed.KV_FIREWALL).getKey(seed.KEY_RSA_2048), { statusCode: 403, message: /Client address is not authorized/ });

  const armToken = (await sandboxCredential(sandbox).getToken("https://management.azure.com/.default")).token;
  const wrongAudience = await sandboxRequest(sandbox, { path: "/keys?api-version=7.5", host: "kvsandbox.vault.azure.net", headers: { authorization: `Bearer ${armToken}` } });
  t.equal(wrongAudience.status, 401);
  t.match(wrongAudience.json, { error: { code: "Unauthorized", message: /Invalid audience/ } });
});

t.test("Key Vault fault injection answers with Key Vault's error shape", async (t) => {
  const sandbox = await startTestSandbox(t);
  await sandboxRequest(sandbox, { method: "PUT", path: "/_sandbox/faults", body: { rules: [{ service: "keyvault", status: 503, probability: 1, times: 1, retryAfterSeconds: 0 }] } });
  const key = await keyClient(sandbox).getKey(seed.KEY_RSA_3072);
  t.equal(key.name, seed.KEY_RSA_3072, "retried after the injected 503");
  const log = (await sandboxRequest(sandbox, { path: "/_sandbox/requests" })).json as { host: string; status: number }[];
  t.same(log.filter((entry) => entry.host === "kvsandbox.vault.azure.net").map((entry) => entry.status), [401, 503, 200]);

  await sandboxRequest(sandbox, { method: "PUT", path: "/_sandbox/faults", body: { rules: [{ service: "keyvault", status: 429, probability: 1, times: 1, retryAfterSeconds: 1 }] } });
  const { httpClient, exchanges } = recordingHttpClient(sandbox);
  const throttled = new KeyClient(seed.vaultUrl(seed.KV_SANDBOX), sandboxCredential(sandbox), { httpClient });
  t.equal((await throttled.getKey(seed.KEY_RSA_3072)).name, seed.KEY_RSA_3072, "retried after the injected 429");
  const delay = retryDelay(exchanges, 429);
  t.ok(delay !== undefined && delay >= 1000 - TIMER_SLACK_MS, `retried ${delay?.toFixed(0)} ms after the 429 (Retry-After: 1)`);
});
