import { KeyClient } from "@azure/keyvault-keys";
import { readdir, readFile } from "node:fs/promises";
import { join, relative } from "node:path";
import t from "tap";
import { seed } from "../../src/sandbox/index.js";
import { advanceClock, sandboxState } from "../helpers/sandbox-admin.js";
import { armToken, sandboxCredential, sandboxHttpClient, sandboxRequest, startTestSandbox } from "../helpers/sandbox.js";

/**
 * The emulator's clock (api-contract v1.1, `POST /_sandbox/clock`): one clock that every emulated
 * service reads, so a test moves time forward instead of sleeping for it.
 */

const API = "api-version=2023-11-01";
const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as { iat: number; exp: number };

t.test("GET answers the emulator's time; POST moves it forward, never back, and reset keeps it", async (t) => {
  const sandbox = await startTestSandbox(t);
  const clock = async () => (await sandboxRequest(sandbox, { path: "/_sandbox/clock" })).json as { now: string; advancedSeconds: number };
  const before = await clock();
  t.ok(Math.abs(Date.parse(before.now) - Date.now()) < 60_000, "it starts at the wall clock");
  t.equal(before.advancedSeconds, 0);

  const now = await advanceClock(sandbox, 86_400);
  t.ok(Date.parse(now) - Date.parse(before.now) >= 86_400_000, "a day later");
  t.equal((await clock()).advancedSeconds, 86_400);

  for (const body of [{ advanceSeconds: -1 }, { advanceSeconds: "60" }, {}, { advanceSeconds: Number.MAX_VALUE * 10 }]) {
    const refused = await sandboxRequest(sandbox, { method: "POST", path: "/_sandbox/clock", body });
    t.equal(refused.status, 400, JSON.stringify(body));
    t.match(refused.json, { error: { code: "InvalidClock" } });
  }
  await sandboxRequest(sandbox, { method: "POST", path: "/_sandbox/reset" });
  t.equal((await clock()).advancedSeconds, 86_400, "reset goes back to the seed, not back in time");
});

t.test("an ARM operation ends when the clock passes its duration, with no waiting", async (t) => {
  // Ten minutes: it cannot end by itself while the test runs.
  const sandbox = await startTestSandbox(t, { lroMs: 600_000 });
  const authorization = `Bearer ${await armToken(sandbox)}`;
  const arm = (method: string, path: string, body?: unknown) =>
    sandboxRequest(sandbox, { method, path: path.includes("?") ? path : `${path}?${API}`, host: "management.azure.com", headers: { authorization }, ...(body ? { body } : {}) });
  const path = seed.fhirServiceId(seed.FHIR_SYS);
  const body = (await arm("GET", path)).json as Record<string, unknown>;
  const put = await arm("PUT", path, { ...body, tags: { clock: "moved" } });
  const operation = new URL(String(put.headers["azure-asyncoperation"]));
  const poll = () => arm("GET", operation.pathname + operation.search);

  await advanceClock(sandbox, 599);
  t.match((await poll()).json, { status: "Running" }, "a second short of its end");
  await advanceClock(sandbox, 1);
  t.match((await poll()).json, { status: "Succeeded" });
  t.match((await arm("GET", path)).json, { tags: { clock: "moved" }, properties: { provisioningState: "Succeeded" } });
  const { operations } = await sandboxState<{ operations: { status: string; startTime: string }[] }>(sandbox);
  t.equal(operations.length, 1);
});

t.test("key nbf and exp are judged by the emulator's clock: wrap, unwrap and the FHIR data plane", async (t) => {
  const sandbox = await startTestSandbox(t);
  const credential = sandboxCredential(sandbox);
  const client = new KeyClient(seed.vaultUrl(seed.KV_SANDBOX), credential, { httpClient: sandboxHttpClient(sandbox) });
  const clockNow = Date.parse(((await sandboxRequest(sandbox, { path: "/_sandbox/clock" })).json as { now: string }).now);
  const inAnHour = new Date(clockNow + 3_600_000);
  const key = await client.createRsaKey("cmk-clock", { notBefore: new Date(clockNow + 60_000), expiresOn: inAnHour });
  // Raw requests: the SDK's CryptographyClient checks nbf/exp itself, with the test process's clock.
  // A fresh credential each time: a token cached by an SDK credential expires on the emulator's clock
  // while the credential, judging by the wall clock, would keep sending it.
  const remote = async (operation: "wrapkey" | "unwrapkey", value: string) => {
    const token = (await sandboxCredential(sandbox).getToken("https://vault.azure.net/.default")).token;
    return sandboxRequest(sandbox, {
      method: "POST",
      path: `/keys/cmk-clock/${key.properties.version}/${operation}?api-version=7.5`,
      host: `${seed.KV_SANDBOX}.vault.azure.net`,
      headers: { authorization: `Bearer ${token}` },
      body: { alg: "RSA-OAEP-256", value },
    });
  };
  const secret = Buffer.alloc(32, 1).toString("base64url");
  t.match((await remote("wrapkey", secret)).json, { error: { innererror: { code: "KeyNotYetValid" } } }, "before nbf");
  await advanceClock(sandbox, 61);
  const wrapped = await remote("wrapkey", secret);
  t.equal(wrapped.status, 200, "inside nbf..exp");
  t.equal(((await remote("unwrapkey", (wrapped.json as { value: string }).value)).json as { value: string }).value, secret);

  await advanceClock(sandbox, 3_600);
  const expired = await remote("unwrapkey", (wrapped.json as { value: string }).value);
  t.equal(expired.status, 403, "after exp");
  t.match(expired.json, { error: { innererror: { code: "KeyExpired" } } });

  // The FHIR data plane: fhir-uami's key gets an exp an hour ahead; the service answers until then.
  const metadata = () => sandboxRequest(sandbox, { path: "/metadata", host: `${seed.WORKSPACE}-${seed.FHIR_UAMI}.fhir.azurehealthcareapis.com` });
  const now = Date.parse(((await sandboxRequest(sandbox, { path: "/_sandbox/clock" })).json as { now: string }).now);
  const laterClient = new KeyClient(seed.vaultUrl(seed.KV_SANDBOX), sandboxCredential(sandbox), { httpClient: sandboxHttpClient(sandbox) });
  await laterClient.updateKeyProperties(seed.KEY_RSA_2048, seed.VERSION_1, { expiresOn: new Date(now + 3_600_000) });
  t.equal((await metadata()).status, 200);
  await advanceClock(sandbox, 3_601);
  t.equal((await metadata()).status, 500, "the key expired on the emulator's clock");
});

t.test("tokens carry the emulator's time and expire on it", async (t) => {
  const sandbox = await startTestSandbox(t);
  const token = await armToken(sandbox);
  const issued = claimsOf(token);
  const read = (bearer: string) => sandboxRequest(sandbox, { path: `${seed.fhirServiceId(seed.FHIR_SYS)}?${API}`, host: "management.azure.com", headers: { authorization: `Bearer ${bearer}` } });
  t.equal((await read(token)).status, 200);

  const now = await advanceClock(sandbox, 7_200);
  const expired = await read(token);
  t.equal(expired.status, 401, "an hour's token two hours on");
  t.match(expired.json, { error: { code: "ExpiredAuthenticationToken" } });

  const minted = (await sandboxRequest(sandbox, { method: "POST", path: "/_sandbox/tokens", body: { clientId: seed.SERVICE_APP.clientId } })).json as { access_token: string };
  const fresh = claimsOf(minted.access_token);
  t.ok(fresh.iat >= issued.iat + 7_200 && Math.abs(fresh.iat - Date.parse(now) / 1000) < 60, "iat is the emulator's now");
  t.equal(fresh.exp - fresh.iat, 3_599);
  t.equal((await read(minted.access_token)).status, 200);
});

t.test("role assignments, deleted keys and ARM timestamps are stamped with the emulator's time", async (t) => {
  const sandbox = await startTestSandbox(t);
  const now = Date.parse(await advanceClock(sandbox, 30 * 86_400));
  const assigned = await sandboxRequest(sandbox, {
    method: "POST",
    path: "/_sandbox/scenarios",
    body: { action: "addRoleAssignment", fhirServiceId: seed.fhirServiceId(seed.FHIR_NOROLE), role: "Key Vault Crypto Service Encryption User", scope: seed.vaultId(seed.KV_SANDBOX) },
  });
  const deleted = await sandboxRequest(sandbox, { method: "POST", path: "/_sandbox/scenarios", body: { action: "deleteKey", vault: seed.KV_SANDBOX, key: seed.KEY_RSA_4096 } });
  t.ok(Math.abs((deleted.json as { deletedDate: number }).deletedDate * 1000 - now) < 60_000, "deletedDate");
  const { roleAssignments } = await sandboxState<{ roleAssignments: { name: string; createdOn: string }[] }>(sandbox);
  const created = roleAssignments.find((assignment) => assignment.name === (assigned.json as { name: string }).name);
  t.ok(Math.abs(Date.parse(created?.createdOn ?? "") - now) < 60_000, "createdOn is the emulator's now, a month ahead of the wall clock");
  const routing = (await sandboxRequest(sandbox, { path: `${seed.fhirServiceId(seed.FHIR_SYS)}?${API}`, host: "management.azure.com", headers: { authorization: `Bearer ${await armToken(sandbox)}` } })).headers["x-ms-routing-request-id"];
  t.match(routing, new RegExp(`^WESTUS3:${new Date(now).toISOString().slice(0, 10).replace(/-/g, "")}T`), "routing ids too");
});

t.test("no emulator module reads the wall clock but the clock itself (and the TLS certificate, which clients judge)", async (t) => {
  const root = new URL("../../src/sandbox/", import.meta.url).pathname;
  const files = (await readdir(root, { recursive: true })).filter((file) => file.endsWith(".ts"));
  const offenders: string[] = [];
  for (const file of files) {
    const source = await readFile(join(root, file), "utf8");
    source.split("\n").forEach((line, index) => {
      const code = line.replace(/\/\*.*?\*\//g, "").replace(/\/\/.*$/, "").replace(/^\s*\*.*$/, "");
      if (/Date\.now\b|new Date\(\)|performance\.now\b/.test(code)) offenders.push(`${relative(root, join(root, file))}:${index + 1}`);
    });
  }
  t.same(offenders.filter((place) => !place.startsWith("clock.ts:") && !place.startsWith("certificates.ts:")), []);
  t.ok(offenders.some((place) => place.startsWith("clock.ts:")), "the scan sees the clock's own read, so it would see others");
});
