import t from "tap";
import { KEYS, waitForJob } from "../../helpers/app.js";
import { lastSeq, sandboxRequests, type LoggedRequest } from "../../helpers/sandbox-admin.js";
import { startStack } from "../../helpers/stack.js";
import { fhirId, KEY_V1, KEY_V2, setKey } from "../../helpers/requests.js";

/** Issue 12, item 5: validations must not be able to spend the service's ARM and Key Vault read budget. */

/** Azure reads as the emulator saw them: ARM and Key Vault, without sign-ins and Key Vault's 401 challenges. */
function azureReads(log: LoggedRequest[]): string[] {
  return log.filter((entry) => entry.host !== "login.microsoftonline.com" && entry.status !== 401).map((entry) => `${entry.method} ${entry.host}${entry.path}`);
}

t.test("20 identical concurrent validations read each Azure fact once; a second burst reads nothing", async (t) => {
  const { app, sandbox } = await startStack(t, { worker: false, env: { CMK_READ_CACHE_MS: "5000" } });
  // Sign in once first, so the count below is about facts, not tokens.
  await app.inject({ method: "GET", url: `/v1/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg-sandbox/workspaces/wssandbox/fhirservices/fhir-norole/encryption`, headers: { "x-api-key": KEYS.reader } });
  const validate = () => app.inject({ method: "POST", url: "/v1/validations", payload: setKey("fhir-sys"), headers: { "x-api-key": KEYS.reader } });

  const since = await lastSeq(sandbox);
  const burst = await Promise.all(Array.from({ length: 20 }, validate));
  t.same([...new Set(burst.map((response) => response.statusCode))], [200]);
  t.same(new Set(burst.map((response) => response.body)).size, 1, "every caller got the same report");
  const reads = azureReads(await sandboxRequests(sandbox, since));
  t.ok(reads.length >= 4, `FHIR service, key, vault and role assignments were read: ${reads.join(", ")}`);
  t.same(reads, [...new Set(reads)], "no read twice");
  t.ok(reads.some((read) => read.endsWith(fhirId("fhir-sys"))), "the FHIR service once");
  t.equal(reads.filter((read) => read.includes(".vault.azure.net/keys/cmk-rsa-2048/")).length, 1, "the key once");

  const again = await lastSeq(sandbox);
  t.equal((await validate()).statusCode, 200);
  t.same(azureReads(await sandboxRequests(sandbox, again)), [], "within CMK_READ_CACHE_MS the facts are reused");
});

t.test("a job writes on fresh reads and verifies what it wrote, whatever the cache holds", async (t) => {
  const { app, sandbox } = await startStack(t, { env: { CMK_READ_CACHE_MS: "60000" } });
  const encryption = `/v1/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg-sandbox/workspaces/wssandbox/fhirservices/fhir-uami/encryption`;
  const read = async () => (await app.inject({ method: "GET", url: encryption, headers: { "x-api-key": KEYS.reader } })).json();
  t.equal((await read()).keyEncryptionKeyUrl, KEY_V1, "cached: the service on version 1");
  const body = { operation: "RotateKey", fhirServiceId: fhirId("fhir-uami"), useLatestExistingVersion: true };
  t.equal((await app.inject({ method: "POST", url: "/v1/validations", payload: body, headers: { "x-api-key": KEYS.reader } })).json().valid, true, "pre-flight facts cached too");

  const since = await lastSeq(sandbox);
  const submitted = await app.inject({ method: "POST", url: "/v1/change-requests", payload: body, headers: { "x-api-key": KEYS.operator } });
  const { monitor } = await waitForJob(app, submitted.json().id);
  t.match(monitor, { status: "Succeeded", result: { keyEncryptionKeyUrl: KEY_V2 } }, "Verify saw the new key after the PUT");
  const log = await sandboxRequests(sandbox, since);
  const put = log.findIndex((entry) => entry.method === "PUT");
  t.ok(put > 0, "one PUT");
  t.ok(log.slice(0, put).some((entry) => entry.method === "GET" && entry.path === fhirId("fhir-uami")), "the write was based on a fresh read");
  t.ok(log.slice(put + 1).some((entry) => entry.method === "GET" && entry.path === fhirId("fhir-uami")), "and verified with one");
  t.equal((await read()).keyEncryptionKeyUrl, KEY_V2, "the process's own write replaced what its cache held");
});

t.test("the API process alone (no worker in it) draws its ARM reads from the budget the workers share", async (t) => {
  const { app, azure, sandbox } = await startStack(t, { worker: false, env: { CMK_READ_CACHE_MS: "0", CMK_ARM_READ_BURST: "50", CMK_ARM_READS_PER_SECOND: "0.01" } });
  t.ok(azure.armPacing.current, "a budget is bound without a worker");
  const bucket = app.jobStore.keys.armBudget("22222222-2222-2222-2222-222222222222", "reads");
  t.equal(await app.redis.exists(bucket), 0, "no ARM read yet");
  const since = await lastSeq(sandbox);
  t.equal((await app.inject({ method: "POST", url: "/v1/validations", payload: setKey("fhir-sys"), headers: { "x-api-key": KEYS.reader } })).statusCode, 200);
  const armReadPaths = (await sandboxRequests(sandbox, since)).filter((entry) => entry.host === "management.azure.com" && entry.method === "GET" && entry.path.startsWith("/subscriptions/22222222-2222-2222-2222-222222222222/")).map((entry) => entry.path);
  const armReads = armReadPaths.length;
  t.ok(armReads > 0, `the validation read ARM (${armReads} read(s) in the subscription)`);
  const tokens = Number(await app.redis.hget(bucket, "tokens"));
  // At 0.01 a second the bucket refills nothing to speak of meanwhile: one token per read (the role
  // definition's too, read by its full id: `//subscriptions/…` once charged another budget).
  t.equal(Math.floor(tokens), 50 - armReads, `the shared bucket was spent (${tokens} of 50 left after ${armReads} read(s))`);
  await app.close();
  t.notOk(azure.armPacing.current, "closing the API unbinds its budget");
});
