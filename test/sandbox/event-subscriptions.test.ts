import { KeyClient } from "@azure/keyvault-keys";
import { generateKeyPairSync } from "node:crypto";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import t from "tap";
import { seed } from "../../src/sandbox/index.js";
import { retryDelaySeconds } from "../../src/sandbox/events/event-grid.js";
import { advanceClock } from "../helpers/sandbox-admin.js";
import { sandboxCredential, sandboxHttpClient, sandboxRequest, startTestSandbox } from "../helpers/sandbox.js";
import { until } from "../helpers/until.js";
import { eventGridEndpoint, startWebhookReceiver, type ReceivedRequest } from "../helpers/webhook-receiver.js";

/**
 * Event Grid for Key Vault events (api-contract v1.1, Compliance): `PUT /_sandbox/event-subscriptions`,
 * the validation handshake of each delivery schema, deliveries of KeyNewVersionCreated, KeyNearExpiry and
 * KeyExpired with Event Grid's envelope and data fields, and retries on the emulator's clock.
 */

interface Attempt {
  attempt: number;
  status?: number;
  error?: string;
}
interface DeliveryView {
  eventId: string;
  eventType: string;
  subject: string;
  version: string;
  subscription: string;
  state: string;
  dropReason?: string;
  attempts: Attempt[];
}
interface Snapshot {
  subscriptions: Array<{ name: string; schema: string; headerNames: string[] }>;
  deliveries: DeliveryView[];
}

type Sandbox = Awaited<ReturnType<typeof startTestSandbox>>;

const putSubscriptions = (sandbox: Sandbox, body: unknown) => sandboxRequest(sandbox, { method: "PUT", path: "/_sandbox/event-subscriptions", body });
const snapshot = async (sandbox: Sandbox) => (await sandboxRequest(sandbox, { path: "/_sandbox/event-subscriptions" })).json as Snapshot;
const keyClient = (sandbox: Sandbox) => new KeyClient(seed.vaultUrl(seed.KV_SANDBOX), sandboxCredential(sandbox), { httpClient: sandboxHttpClient(sandbox) });
const notifications = (received: ReceivedRequest[]) => received.filter((request) => request.method === "POST" && request.headers["aeg-event-type"] === "Notification");

t.test("bad subscription bodies are refused with 400 naming the field; nothing is registered", async (t) => {
  const sandbox = await startTestSandbox(t);
  const cases: Array<[unknown, RegExp]> = [
    [[], /body must be an object/],
    [{ subscriptions: {} }, /subscriptions must be an array/],
    [{ subscriptions: [{ schema: "EventGridSchema" }] }, /subscriptions\[0\]\.endpointUrl is required/],
    [{ subscriptions: [{ endpointUrl: "ftp://example.com/x", schema: "EventGridSchema" }] }, /endpointUrl must be an http or https URL/],
    [{ subscriptions: [{ endpointUrl: "https://example.com/x", schema: "CustomInputSchema" }] }, /schema must be one of EventGridSchema, CloudEventSchemaV1_0/],
    [{ subscriptions: [{ endpointUrl: "https://example.com/x", schema: "EventGridSchema", headers: { "aeg-x": "1" } }] }, /'aeg-x' is set by Event Grid itself/],
    [{ subscriptions: [{ endpointUrl: "https://example.com/x", schema: "EventGridSchema", headers: { "x-api-key": 5 } }] }, /headers\.x-api-key must be a string/],
    [{ subscriptions: [{ endpointUrl: "https://example.com/x", schema: "EventGridSchema", headers: Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`h${i}`, "v"])) }] }, /at most 10 headers/],
    [{ subscriptions: [{ endpointUrl: "https://example.com/x", schema: "EventGridSchema", retryPolicy: { maxDeliveryAttempts: 31 } }] }, /maxDeliveryAttempts must be an integer from 1 to 30/],
    [{ subscriptions: [{ endpointUrl: "https://example.com/x", schema: "EventGridSchema", extra: true }] }, /unknown properties: extra/],
  ];
  for (const [body, message] of cases) {
    const refused = await putSubscriptions(sandbox, body);
    t.equal(refused.status, 400, JSON.stringify(body));
    t.match(refused.json, { error: { code: "InvalidEventSubscriptions", message } });
  }
  const malformed = await sandboxRequest(sandbox, { method: "PUT", path: "/_sandbox/event-subscriptions", body: "{", headers: { "content-type": "application/json" } });
  t.match(malformed.json, { error: { code: "InvalidJson" } });
  t.same((await snapshot(sandbox)).subscriptions, []);
});

t.test("the Event Grid schema handshake: the validation event must be echoed with 200, else nothing changes", async (t) => {
  const sandbox = await startTestSandbox(t);
  const receiver = await startWebhookReceiver(t, eventGridEndpoint);
  const subscription = { endpointUrl: receiver.url, schema: "EventGridSchema", headers: { "x-api-key": "secret-key" }, name: "kv-events" };

  const accepted = await putSubscriptions(sandbox, { subscriptions: [subscription] });
  t.equal(accepted.status, 200, accepted.text);
  t.match(accepted.json, { subscriptions: [{ name: "kv-events", schema: "EventGridSchema", headerNames: ["x-api-key"], provisioningState: "Succeeded" }] });
  t.notMatch(accepted.text, /secret-key/, "header values are not shown");
  const [validation] = receiver.received;
  t.equal(validation?.method, "POST");
  t.match(validation?.headers, { "aeg-event-type": "SubscriptionValidation", "aeg-subscription-name": "KV-EVENTS", "x-api-key": "secret-key", "content-type": /^application\/json/ });
  t.match(validation?.json, [
    { id: String, topic: `/subscriptions/${seed.SUBSCRIPTION_ID}`, subject: "", eventType: "Microsoft.EventGrid.SubscriptionValidationEvent", eventTime: /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$/, data: { validationCode: String }, dataVersion: "1", metadataVersion: "1" },
  ]);

  // 202, or 200 without the code: the handshake fails and the registered subscription stays.
  for (const [status, body] of [[202, { validationResponse: "whatever" }], [200, { validationResponse: "wrong" }], [200, "not json"]] as const) {
    receiver.setAnswer((_request, response) => {
      response.writeHead(status, { "content-type": "application/json" });
      response.end(typeof body === "string" ? body : JSON.stringify(body));
    });
    const refused = await putSubscriptions(sandbox, { subscriptions: [{ ...subscription, name: "other" }] });
    t.equal(refused.status, 400);
    t.match(refused.json, { error: { code: "ValidationHandshakeFailed", message: /Webhook validation handshake failed for http:\/\/127\.0\.0\.1:\d+\/hook \(other\)/, details: [{ name: "other" }] } });
  }
  t.match((await snapshot(sandbox)).subscriptions, [{ name: "kv-events" }]);

  // An endpoint that does not answer at all: a port nothing listens on.
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  const unreachable = await putSubscriptions(sandbox, { subscriptions: [{ endpointUrl: `http://127.0.0.1:${port}/hook`, schema: "EventGridSchema" }] });
  t.match(unreachable.json, { error: { code: "ValidationHandshakeFailed", message: /could not be delivered: ECONNREFUSED/ } });

  // An empty list removes every subscription.
  t.equal((await putSubscriptions(sandbox, { subscriptions: [] })).status, 200);
  t.same((await snapshot(sandbox)).subscriptions, []);
});

t.test("the CloudEvents handshake is the abuse-protection OPTIONS: WebHook-Allowed-Origin must name Event Grid", async (t) => {
  const sandbox = await startTestSandbox(t);
  const receiver = await startWebhookReceiver(t, eventGridEndpoint);
  const accepted = await putSubscriptions(sandbox, { subscriptions: [{ endpointUrl: receiver.url, schema: "CloudEventSchemaV1_0", headers: { authorization: "Bearer abc" } }] });
  t.equal(accepted.status, 200, accepted.text);
  t.match(receiver.received[0], { method: "OPTIONS", headers: { "webhook-request-origin": "eventgrid.azure.net", authorization: "Bearer abc" } });

  receiver.setAnswer((_request, response) => {
    response.writeHead(200, { "webhook-allowed-origin": "someone-else.example.com" });
    response.end();
  });
  const refused = await putSubscriptions(sandbox, { subscriptions: [{ endpointUrl: receiver.url, schema: "CloudEventSchemaV1_0" }] });
  t.match(refused.json, { error: { code: "ValidationHandshakeFailed", message: /without WebHook-Allowed-Origin: eventgrid\.azure\.net \(or \*\) \(got 'someone-else\.example\.com'\)/ } });
});

t.test("every key version created, imported or rotated on the data plane is delivered as KeyNewVersionCreated, in both schemas", async (t) => {
  const sandbox = await startTestSandbox(t);
  const eventGrid = await startWebhookReceiver(t, eventGridEndpoint);
  const cloudEvents = await startWebhookReceiver(t, eventGridEndpoint);
  const put = await putSubscriptions(sandbox, {
    subscriptions: [
      { endpointUrl: eventGrid.url, schema: "EventGridSchema", headers: { "x-api-key": "k1" }, name: "kv-eg" },
      { endpointUrl: cloudEvents.url, schema: "CloudEventSchemaV1_0", headers: { "x-api-key": "k2" }, name: "kv-ce" },
    ],
  });
  t.equal(put.status, 200, put.text);
  const client = keyClient(sandbox);

  const rotated = await client.rotateKey(seed.KEY_RSA_2048);
  await until("the rotation's deliveries", () => notifications(eventGrid.received).length === 1 && notifications(cloudEvents.received).length === 1, 10_000);
  const [delivery] = notifications(eventGrid.received);
  t.match(delivery?.headers, { "content-type": "application/json; charset=utf-8", "aeg-subscription-name": "KV-EG", "aeg-delivery-count": "0", "aeg-data-version": "1", "aeg-metadata-version": "1", "x-api-key": "k1" });
  const vaultId = `/subscriptions/${seed.SUBSCRIPTION_ID}/resourceGroups/${seed.RESOURCE_GROUP}/providers/Microsoft.KeyVault/vaults/${seed.KV_SANDBOX}`;
  const data = {
    Id: `https://${seed.KV_SANDBOX}.vault.azure.net/keys/${seed.KEY_RSA_2048}/${rotated.properties.version}`,
    VaultName: seed.KV_SANDBOX,
    ObjectType: "Key",
    ObjectName: seed.KEY_RSA_2048,
    Version: rotated.properties.version,
    NBF: null,
    EXP: null,
  };
  t.equal(rotated.id, data.Id, "the data's Id is the new version's kid");
  t.same(Object.keys((delivery?.json as unknown[])[0] as object).sort(), ["data", "dataVersion", "eventTime", "eventType", "id", "metadataVersion", "subject", "topic"]);
  t.match(delivery?.json, [{ topic: vaultId, subject: seed.KEY_RSA_2048, eventType: "Microsoft.KeyVault.KeyNewVersionCreated", dataVersion: "1", metadataVersion: "1" }]);
  t.same(((delivery?.json as unknown[])[0] as { data: unknown }).data, data);

  const [cloudEvent] = notifications(cloudEvents.received);
  t.match(cloudEvent?.headers, { "content-type": "application/cloudevents+json; charset=utf-8", "webhook-request-origin": "eventgrid.azure.net", "x-api-key": "k2" });
  t.same(Object.keys(cloudEvent?.json as object).sort(), ["data", "id", "source", "specversion", "subject", "time", "type"]);
  t.match(cloudEvent?.json, { source: vaultId, subject: seed.KEY_RSA_2048, type: "Microsoft.KeyVault.KeyNewVersionCreated", specversion: "1.0", time: /\.\d{7}Z$/ });
  t.same((cloudEvent?.json as { data: unknown }).data, data);

  // A new key with dates, and an imported one: NBF and EXP are the version's Unix seconds.
  const nbf = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
  const exp = new Date(nbf.getTime() + 400 * 86_400_000);
  const created = await client.createRsaKey("cmk-events", { notBefore: nbf, expiresOn: exp });
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwk = privateKey.export({ format: "jwk" }) as Record<string, string>;
  // The SDK takes the JWK's members as bytes and sends them base64url-encoded.
  const bytes = Object.fromEntries(["n", "e", "d", "p", "q", "dp", "dq", "qi"].map((member) => [member, Buffer.from(jwk[member] ?? "", "base64url")]));
  const imported = await client.importKey("cmk-imported", { ...bytes, kty: "RSA", keyOps: ["wrapKey", "unwrapKey"] });
  t.equal(imported.keyType, "RSA");
  await until("three events at each endpoint", () => notifications(eventGrid.received).length === 3 && notifications(cloudEvents.received).length === 3, 10_000);
  const events = notifications(eventGrid.received).map((request) => (request.json as Array<{ subject: string; data: { Version: string; NBF: unknown; EXP: unknown } }>)[0]!);
  t.match(events.find((event) => event.subject === "cmk-events")?.data, { Version: created.properties.version, NBF: nbf.getTime() / 1000, EXP: exp.getTime() / 1000 });
  t.match(events.find((event) => event.subject === "cmk-imported")?.data, { Version: imported.properties.version, NBF: null, EXP: null });

  const { deliveries } = await snapshot(sandbox);
  t.equal(deliveries.length, 6, "one delivery per event and subscription");
  t.ok(deliveries.every((entry) => entry.state === "Delivered" && entry.attempts.length === 1 && entry.attempts[0]?.status === 200));
  t.equal(new Set(deliveries.map((entry) => entry.eventId)).size, 3, "each subscription gets the same event id");

  // A Managed HSM publishes nothing; nor does any key after a reset (subscriptions go with it).
  const hsm = new KeyClient(seed.managedHsmUrl(seed.MANAGED_HSM), sandboxCredential(sandbox), { httpClient: sandboxHttpClient(sandbox) });
  await hsm.rotateKey(seed.KEY_HSM_3072);
  await sandboxRequest(sandbox, { method: "POST", path: "/_sandbox/reset" });
  await client.rotateKey(seed.KEY_RSA_2048);
  await new Promise((resolve) => setTimeout(resolve, 500));
  t.equal(notifications(eventGrid.received).length, 3);
  t.same(await snapshot(sandbox), { subscriptions: [], deliveries: [] });
});

t.test("a failed delivery is retried on Event Grid's schedule, on the emulator's clock, up to the subscription's limit", async (t) => {
  const sandbox = await startTestSandbox(t);
  let failWith = 503;
  const receiver = await startWebhookReceiver(t, (request, response) => {
    if (request.headers["aeg-event-type"] === "Notification") {
      response.writeHead(failWith);
      response.end();
      return;
    }
    eventGridEndpoint(request, response);
  });
  t.equal((await putSubscriptions(sandbox, { subscriptions: [{ endpointUrl: receiver.url, schema: "EventGridSchema", retryPolicy: { maxDeliveryAttempts: 3 } }] })).status, 200);
  const client = keyClient(sandbox);
  await client.rotateKey(seed.KEY_RSA_2048);
  const attemptsOf = async () => (await snapshot(sandbox)).deliveries[0]?.attempts ?? [];
  await until("the first attempt", async () => (await attemptsOf()).length === 1, 10_000);
  t.match(await attemptsOf(), [{ attempt: 1, status: 503 }]);

  // 503 asks for 30 s at least: nothing 20 s on, the retry at 30 s. (The emulator's clock also runs with
  // the wall clock, so the first check keeps a margin for a busy machine's seconds.)
  await advanceClock(sandbox, 20);
  await new Promise((resolve) => setTimeout(resolve, 400));
  t.equal((await attemptsOf()).length, 1, "not before its time");
  failWith = 200;
  await advanceClock(sandbox, 10);
  await until("the second attempt", async () => (await attemptsOf()).length === 2, 10_000);
  const [delivered] = (await snapshot(sandbox)).deliveries;
  t.match(delivered, { state: "Delivered", attempts: [{ attempt: 1, status: 503 }, { attempt: 2, status: 200 }] });
  t.same(notifications(receiver.received).map((request) => request.headers["aeg-delivery-count"]), ["0", "1"], "aeg-delivery-count counts earlier attempts");
  t.same(notifications(receiver.received)[0]?.json, notifications(receiver.received)[1]?.json, "the same event again: at least once");

  // Always failing: dropped after maxDeliveryAttempts.
  failWith = 500;
  await client.rotateKey(seed.KEY_RSA_2048);
  const second = async () => (await snapshot(sandbox)).deliveries[1];
  await until("the first attempt", async () => (await second())?.attempts.length === 1, 10_000);
  for (const wait of [10, 30]) {
    await advanceClock(sandbox, wait);
    const expected = wait === 10 ? 2 : 3;
    await until(`attempt ${expected}`, async () => (await second())?.attempts.length === expected, 10_000);
  }
  t.match(await second(), { state: "Dropped", dropReason: "MaxDeliveryAttemptsExceeded", attempts: [{ status: 500 }, { status: 500 }, { status: 500 }] });
  await advanceClock(sandbox, 3600);
  await new Promise((resolve) => setTimeout(resolve, 400));
  t.equal((await second())?.attempts.length, 3, "bounded: no fourth attempt");
});

t.test("Event Grid's retry schedule and the waits statuses ask for", async (t) => {
  t.same([1, 2, 3, 4, 5, 6, 7, 8, 20].map((attempt) => retryDelaySeconds(attempt, 500)), [10, 30, 60, 300, 600, 1800, 3600, 3600, 3600]);
  t.equal(retryDelaySeconds(1, 401), 300);
  t.equal(retryDelaySeconds(1, 404), 300);
  t.equal(retryDelaySeconds(1, 408), 120);
  t.equal(retryDelaySeconds(1, 503), 30);
  t.equal(retryDelaySeconds(1, undefined), 10, "no answer at all");
  t.equal(retryDelaySeconds(6, 503), 1800, "the schedule when it is longer");
});

t.test("KeyNearExpiry 30 days before exp and KeyExpired at exp, as the emulator's clock crosses them", async (t) => {
  const sandbox = await startTestSandbox(t);
  const receiver = await startWebhookReceiver(t, eventGridEndpoint);
  t.equal((await putSubscriptions(sandbox, { subscriptions: [{ endpointUrl: receiver.url, schema: "EventGridSchema" }] })).status, 200);
  const clockNow = Date.parse(((await sandboxRequest(sandbox, { path: "/_sandbox/clock" })).json as { now: string }).now);
  const exp = new Date(Math.floor(clockNow / 1000) * 1000 + 40 * 86_400_000);
  const client = keyClient(sandbox);
  const key = await client.createRsaKey("cmk-expiring", { expiresOn: exp });
  const types = () => notifications(receiver.received).map((request) => (request.json as Array<{ eventType: string; data: { Version: string; EXP: number } }>)[0]!);
  await until("KeyNewVersionCreated", () => types().length === 1, 10_000);

  await advanceClock(sandbox, 10 * 86_400 - 60);
  await new Promise((resolve) => setTimeout(resolve, 400));
  t.equal(types().length, 1, "a minute before the 30-day mark: nothing yet");
  await advanceClock(sandbox, 60);
  await until("KeyNearExpiry", () => types().length === 2, 10_000);
  t.match(types()[1], { eventType: "Microsoft.KeyVault.KeyNearExpiry", data: { Version: key.properties.version, EXP: exp.getTime() / 1000 } });

  await advanceClock(sandbox, 30 * 86_400);
  await until("KeyExpired", () => types().length === 3, 10_000);
  t.match(types()[2], { eventType: "Microsoft.KeyVault.KeyExpired", data: { Version: key.properties.version } });
  await advanceClock(sandbox, 86_400);
  await new Promise((resolve) => setTimeout(resolve, 400));
  t.equal(types().length, 3, "each date is crossed once");
  t.notOk(types().some((event) => event.data.Version !== key.properties.version), "the seed's keys have no exp crossing: nothing for them");
});
