import { KeyClient } from "@azure/keyvault-keys";
import type { AddressInfo } from "node:net";
import t from "tap";
import { seed } from "../../src/sandbox/index.js";
import { FOLLOW_PRINCIPAL } from "../../src/job-store/follow-latest.js";
import { KEYS, waitForJob } from "../helpers/app.js";
import { startStack } from "../helpers/stack.js";
import { sandboxCredential, sandboxHttpClient, sandboxRequest } from "../helpers/sandbox.js";
import { sandboxState } from "../helpers/sandbox-admin.js";
import { until } from "../helpers/until.js";

/**
 * CMK_FOLLOW_LATEST_KEY_VERSION=true end to end (real Redis, SDK clients, the sandbox's Event Grid): a scan
 * moves the services behind their key's newest version; a data-plane rotate then reaches every service on
 * the key through Event Grid's delivery, with no other call; nothing is started twice.
 */

const KEY = "https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048";
type Stack = Awaited<ReturnType<typeof startStack>>;
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const ON_KEY = [seed.FHIR_UAMI, seed.FHIR_OTHER];
/**
 * fhir-other (second subscription) uses a vault of the first: a single RotateKey's pre-flight looks for the
 * vault in the service's own subscription only and fails closed on key access (a fleet rotation shares its
 * facts and moves it); following starts its RotateKey once per version all the same.
 */
const MOVES = [seed.FHIR_UAMI];

const get = async (stack: Stack, url: string): Promise<Json> => (await stack.app.inject({ method: "GET", url, headers: { "x-api-key": KEYS.reader } })).json();
async function scan(stack: Stack): Promise<Json> {
  const accepted = await stack.app.inject({ method: "POST", url: "/v1/compliance-scans", headers: { "x-api-key": KEYS.operator } });
  if (accepted.statusCode !== 202) throw new Error(accepted.body);
  return (await waitForJob(stack.app, accepted.json().id, 60_000)).monitor;
}
const followed = async (stack: Stack) => (await get(stack, "/v1/jobs?operation=RotateKey&top=100")).value.filter((job: Json) => job.createdBy === FOLLOW_PRINCIPAL);
async function keysOf(stack: Stack): Promise<Record<string, string | undefined>> {
  const state = await sandboxState<{ fhirServices: Record<string, { name?: string; id: string; properties?: { encryption?: { customerManagedKeyEncryption?: { keyEncryptionKeyUrl?: string } } } }> }>(stack.sandbox);
  return Object.fromEntries(Object.values(state.fhirServices).map((service) => [service.id.split("/").at(-1)!, service.properties?.encryption?.customerManagedKeyEncryption?.keyEncryptionKeyUrl]));
}
const allDone = async (stack: Stack) => (await followed(stack)).every((job: Json) => ["Succeeded", "Failed", "Canceled"].includes(job.status));

t.test("a scan, then a Key Vault rotation through Event Grid: every service on the key reaches the newest version, each move started once", async (t) => {
  const stack = await startStack(t, { lroMs: 300, env: { CMK_FOLLOW_LATEST_KEY_VERSION: "true", CMK_ROLE_PROPAGATION_WINDOW_MS: "0" } });
  await stack.app.listen({ port: 0, host: "127.0.0.1" });
  const endpoint = `http://127.0.0.1:${(stack.app.server.address() as AddressInfo).port}/v1/events/key-vault`;

  // The scan finds fhir-uami and fhir-other on …01 while …02 exists: one RotateKey each.
  const first = await scan(stack);
  t.equal(first.status, "Succeeded", JSON.stringify(first.error ?? first.steps));
  t.match(first.result, { followStarted: 2 });
  t.match(first.steps.find((step: Json) => step.name === "Follow"), { status: "Succeeded", message: /2 RotateKey job\(s\) started/ });
  const jobs = await followed(stack);
  t.same(jobs.map((job: Json) => job.fhirServiceId.split("/").at(-1)).sort(), [...ON_KEY].sort());
  await until("the followed rotations end", () => allDone(stack), 60_000);
  const ended = await followed(stack);
  t.comment(JSON.stringify(ended.map((job: Json) => [job.fhirServiceId.split("/").at(-1), job.status, job.error?.code])));
  t.ok(ended.filter((job: Json) => MOVES.some((name) => job.fhirServiceId.endsWith(`/${name}`))).every((job: Json) => job.status === "Succeeded"), "fhir-uami's Succeeded");
  const afterScan = await keysOf(stack);
  for (const name of MOVES) t.equal(afterScan[name], `${KEY}/${seed.VERSION_2}`, `${name} on …02`);

  // Another scan: nobody behind, nothing started.
  const second = await scan(stack);
  t.notOk(second.result.followStarted, "nothing more to follow");
  t.equal((await followed(stack)).length, 2);

  // Event Grid on the vault, to the service; then `az keyvault key rotate` (the data plane's rotate).
  const subscribed = await sandboxRequest(stack.sandbox, {
    method: "PUT",
    path: "/_sandbox/event-subscriptions",
    body: { subscriptions: [{ endpointUrl: endpoint, schema: "EventGridSchema", headers: { "x-api-key": KEYS.operator }, name: "cmk-service" }] },
  });
  t.equal(subscribed.status, 200, subscribed.text);
  const client = new KeyClient(seed.vaultUrl(seed.KV_SANDBOX), sandboxCredential(stack.sandbox), { httpClient: sandboxHttpClient(stack.sandbox) });
  const rotated = await client.rotateKey(seed.KEY_RSA_2048);
  await until("every service on the key reaches the new version", async () => {
    const now = await keysOf(stack);
    return MOVES.every((name) => now[name] === rotated.id);
  }, 60_000);
  await until("the followed rotations end", () => allDone(stack), 60_000);
  const all = await followed(stack);
  t.equal(all.length, 4, "one RotateKey per service and version: two for …02, two for the new one");
  t.same(all.filter((job: Json) => job.fhirServiceId.endsWith(`/${seed.FHIR_UAMI}`)).map((job: Json) => job.status), ["Succeeded", "Succeeded"]);

  // The same delivery again (Event Grid delivers at least once) starts nothing.
  const again = await stack.app.inject({
    method: "POST",
    url: "/v1/events/key-vault",
    headers: { "x-api-key": KEYS.operator },
    payload: [
      {
        id: "replayed-by-test",
        topic: `/subscriptions/${seed.SUBSCRIPTION_ID}/resourceGroups/${seed.RESOURCE_GROUP}/providers/Microsoft.KeyVault/vaults/${seed.KV_SANDBOX}`,
        subject: seed.KEY_RSA_2048,
        eventType: "Microsoft.KeyVault.KeyNewVersionCreated",
        eventTime: new Date().toISOString(),
        data: { Id: rotated.id, VaultName: seed.KV_SANDBOX, ObjectType: "Key", ObjectName: seed.KEY_RSA_2048, Version: rotated.properties.version, NBF: null, EXP: null },
        dataVersion: "1",
      },
    ],
  });
  t.equal(again.statusCode, 200, again.body);
  t.equal((await followed(stack)).length, 4, "a new event id for a move already started: the service+version claim holds");
});
