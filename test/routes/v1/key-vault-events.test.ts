import { KeyClient } from "@azure/keyvault-keys";
import type { FastifyInstance } from "fastify";
import { Redis } from "ioredis";
import type { AddressInfo } from "node:net";
import t from "tap";
import { KeyVaultEventStore } from "../../../src/job-store/key-vault-events.js";
import { KeyVaultEventService } from "../../../src/services/key-vault-events.js";
import { storeKeys } from "../../../src/job-store/keys.js";
import { sha256Hex } from "../../../src/plugins/app/authentication.js";
import { seed } from "../../../src/sandbox/index.js";
import { API_KEYS, KEYS, REDIS_URL, buildTestApp, testConfig } from "../../helpers/app.js";
import { countRoundTrips } from "../../helpers/redis-commands.js";
import { sandboxCredential, sandboxHttpClient, sandboxRequest, startTestSandbox } from "../../helpers/sandbox.js";
import { until } from "../../helpers/until.js";
import { eventGridEndpoint, startWebhookReceiver } from "../../helpers/webhook-receiver.js";

/**
 * `POST /v1/events/key-vault` (api-contract v1.1, Compliance), through HTTP: the sandbox's Event Grid
 * delivering to the running service (handshakes included), then deliveries sent by hand: both schemas,
 * batches, duplicates, credentials.
 */

const PATH = "/v1/events/key-vault";
const VAULT = `/subscriptions/${seed.SUBSCRIPTION_ID}/resourceGroups/${seed.RESOURCE_GROUP}/providers/Microsoft.KeyVault/vaults/${seed.KV_SANDBOX}`;
const SCOPED_KEY = "test-scoped-operator-key";
const versionless = seed.keyUrl(seed.KV_SANDBOX, seed.KEY_RSA_2048);

const keyData = (version: string, overrides: Record<string, unknown> = {}) => ({
  Id: seed.keyUrl(seed.KV_SANDBOX, seed.KEY_RSA_2048, version),
  VaultName: seed.KV_SANDBOX,
  ObjectType: "Key",
  ObjectName: seed.KEY_RSA_2048,
  Version: version,
  NBF: null,
  EXP: null,
  ...overrides,
});
const eventGridEvent = (id: string, type: string, data: unknown, topic = VAULT) => ({ id, topic, subject: seed.KEY_RSA_2048, eventType: type, eventTime: "2026-11-29T10:00:00.1234567Z", data, dataVersion: "1", metadataVersion: "1" });
const cloudEvent = (id: string, type: string, data: unknown, source = VAULT) => ({ id, source, specversion: "1.0", type, subject: seed.KEY_RSA_2048, time: "2026-11-29T10:00:00.1234567Z", data });

async function startService(t: Parameters<typeof testConfig>[0]) {
  const config = testConfig(t, {
    CMK_API_KEYS: JSON.stringify([...API_KEYS, { name: "scoped", sha256: sha256Hex(SCOPED_KEY), roles: ["operator"], subscriptions: [seed.OTHER_SUBSCRIPTION_ID] }]),
  });
  const app = await buildTestApp(t, config);
  await app.listen({ port: 0, host: "127.0.0.1" });
  const store = new KeyVaultEventStore(app.jobStore);
  return { app, config, store, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}${PATH}` };
}

const post = (app: FastifyInstance, body: unknown, headers: Record<string, string> = { "x-api-key": KEYS.operator }) =>
  app.inject({ method: "POST", url: PATH, headers: { "content-type": "application/json", ...headers }, payload: typeof body === "string" ? body : JSON.stringify(body) });

t.test("end to end, Event Grid schema: the sandbox validates the service's endpoint, then every rotation is recorded once", async (t) => {
  const sandbox = await startTestSandbox(t);
  const { app, store, url } = await startService(t);
  // A second subscription to a recording endpoint gets the same events: what Event Grid sent, to replay.
  const recorder = await startWebhookReceiver(t, eventGridEndpoint);
  const put = await sandboxRequest(sandbox, {
    method: "PUT",
    path: "/_sandbox/event-subscriptions",
    body: {
      subscriptions: [
        { endpointUrl: url, schema: "EventGridSchema", headers: { "x-api-key": KEYS.operator }, name: "cmk-service" },
        { endpointUrl: recorder.url, schema: "EventGridSchema", name: "recorder" },
      ],
    },
  });
  t.equal(put.status, 200, `the service answered the validation handshake: ${put.text}`);

  const client = new KeyClient(seed.vaultUrl(seed.KV_SANDBOX), sandboxCredential(sandbox), { httpClient: sandboxHttpClient(sandbox) });
  const rotated = await client.rotateKey(seed.KEY_RSA_2048);
  await until("the event is recorded", async () => (await store.pending(versionless)).length === 1, 10_000);
  const event = (await store.pending(versionless))[0]?.event as unknown as Record<string, unknown>;
  t.match(event, {
    type: "Microsoft.KeyVault.KeyNewVersionCreated",
    source: VAULT,
    versionlessKeyUrl: versionless,
    keyId: rotated.id,
    version: rotated.properties.version,
    eventTime: /Z$/,
    receivedDateTime: /Z$/,
  });
  t.notOk("expires" in event, "no EXP on the version: none recorded");
  t.same(await store.keysWithPending(), [versionless.toLowerCase()]);
  const state = (await sandboxRequest(sandbox, { path: "/_sandbox/event-subscriptions" })).json as { deliveries: Array<{ subscription: string; state: string; attempts: Array<{ status: number }> }> };
  t.match(state.deliveries.find((delivery) => delivery.subscription === "cmk-service"), { state: "Delivered", attempts: [{ status: 200 }] });

  // Event Grid delivers at least once: the same delivery again starts nothing.
  await until("the recorder's copy", () => recorder.received.some((request) => request.headers["aeg-event-type"] === "Notification"), 10_000);
  const copy = recorder.received.find((request) => request.headers["aeg-event-type"] === "Notification")!;
  const replay = await post(app, copy.text);
  t.equal(replay.statusCode, 200);
  t.same(replay.json(), { received: 1, recorded: 0, duplicates: 1, ignored: 0 });
  t.equal((await store.pending(versionless)).length, 1, "still one pending event");
});

t.test("end to end, CloudEvents 1.0: the OPTIONS handshake goes through the service's authentication", async (t) => {
  const sandbox = await startTestSandbox(t);
  const { store, url } = await startService(t);
  const subscribe = (headers: Record<string, string>) =>
    sandboxRequest(sandbox, { method: "PUT", path: "/_sandbox/event-subscriptions", body: { subscriptions: [{ endpointUrl: url, schema: "CloudEventSchemaV1_0", headers }] } });

  const refused = await subscribe({});
  t.equal(refused.status, 400, "no credential: the service answers 401, so Event Grid cannot subscribe");
  t.match(refused.json, { error: { code: "ValidationHandshakeFailed", message: /answered 401 without WebHook-Allowed-Origin/ } });
  const reader = await subscribe({ "x-api-key": KEYS.reader });
  t.match(reader.json, { error: { code: "ValidationHandshakeFailed", message: /answered 403/ } }, "a reader key is not enough");
  t.equal((await subscribe({ "x-api-key": KEYS.operator })).status, 200);

  const client = new KeyClient(seed.vaultUrl(seed.KV_SANDBOX), sandboxCredential(sandbox), { httpClient: sandboxHttpClient(sandbox) });
  const created = await client.createRsaKey("cmk-followed", { expiresOn: new Date("2030-01-01T00:00:00Z") });
  const followed = `https://${seed.KV_SANDBOX}.vault.azure.net/keys/cmk-followed`;
  await until("the CloudEvent is recorded", async () => (await store.pending(followed)).length === 1, 10_000);
  t.match((await store.pending(followed))[0]?.event, { type: "Microsoft.KeyVault.KeyNewVersionCreated", version: created.properties.version, expires: Date.parse("2030-01-01T00:00:00Z") / 1000 });
});

t.test("credentials: unauthenticated deliveries and handshakes get 401, readers 403", async (t) => {
  const { app, store } = await startService(t);
  const body = [eventGridEvent("e-auth", "Microsoft.KeyVault.KeyNewVersionCreated", keyData(seed.VERSION_2))];
  const anonymous = await post(app, body, {});
  t.equal(anonymous.statusCode, 401);
  t.match(anonymous.json(), { code: "Unauthorized" });
  t.match(anonymous.headers["www-authenticate"], /Bearer/);
  t.equal((await post(app, body, { "x-api-key": "wrong" })).statusCode, 401);
  t.equal((await post(app, body, { "x-api-key": KEYS.reader })).statusCode, 403);
  const options = await app.inject({ method: "OPTIONS", url: PATH, headers: { "webhook-request-origin": "eventgrid.azure.net" } });
  t.equal(options.statusCode, 401);
  t.notOk(options.headers["webhook-allowed-origin"], "no consent without a credential");
  t.same(await store.pending(versionless), [], "nothing recorded");
});

t.test("the handshakes: the validation event is echoed; OPTIONS grants the origin at the credential's rate", async (t) => {
  const { app, config } = await startService(t);
  const validation = await post(app, [
    { id: "v1", topic: `/subscriptions/${seed.SUBSCRIPTION_ID}`, subject: "", data: { validationCode: "512d38b6-c7b8" }, eventType: "Microsoft.EventGrid.SubscriptionValidationEvent", eventTime: "2026-11-29T10:00:00Z", metadataVersion: "1", dataVersion: "1" },
  ]);
  t.equal(validation.statusCode, 200);
  t.same(validation.json(), { validationResponse: "512d38b6-c7b8" });
  const noCode = await post(app, [{ id: "v2", subject: "", data: {}, eventType: "Microsoft.EventGrid.SubscriptionValidationEvent", eventTime: "2026-11-29T10:00:00Z", dataVersion: "1" }]);
  t.match(noCode.json(), { code: "ValidationFailed", errors: [{ path: "/body/0/data/validationCode" }] });

  const options = await app.inject({ method: "OPTIONS", url: PATH, headers: { "x-api-key": KEYS.operator, "webhook-request-origin": "eventgrid.azure.net", "webhook-request-rate": "120" } });
  t.equal(options.statusCode, 200);
  t.match(options.headers, { "webhook-allowed-origin": "eventgrid.azure.net", "webhook-allowed-rate": String(config.CMK_RATE_LIMIT_PER_MINUTE), allow: "POST, OPTIONS" });
  const noOrigin = await app.inject({ method: "OPTIONS", url: PATH, headers: { "x-api-key": KEYS.operator } });
  t.equal(noOrigin.statusCode, 400);
  t.match(noOrigin.json(), { code: "ValidationFailed", errors: [{ path: /webhook-request-origin/ }] });
});

t.test("batches in both schemas: key events recorded, duplicates within a batch counted, other events ignored", async (t) => {
  const { app, store } = await startService(t);
  const batch = [
    eventGridEvent("eg-1", "Microsoft.KeyVault.KeyNewVersionCreated", keyData(seed.VERSION_2)),
    eventGridEvent("eg-2", "Microsoft.KeyVault.KeyNearExpiry", keyData(seed.VERSION_2, { EXP: "1767225600", NBF: "1559081980" })),
    eventGridEvent("eg-1", "Microsoft.KeyVault.KeyNewVersionCreated", keyData(seed.VERSION_2)),
    eventGridEvent("eg-3", "Microsoft.KeyVault.SecretNewVersionCreated", { ...keyData(seed.VERSION_2), ObjectType: "Secret" }),
    eventGridEvent("eg-4", "Microsoft.Storage.BlobCreated", { url: "https://x" }),
  ];
  const answer = await post(app, batch);
  t.equal(answer.statusCode, 200, answer.body);
  t.same(answer.json(), { received: 5, recorded: 2, duplicates: 1, ignored: 2 });
  const pending = await store.pending(versionless);
  t.same(pending.map((entry) => entry.event.type), ["Microsoft.KeyVault.KeyNewVersionCreated", "Microsoft.KeyVault.KeyNearExpiry"]);
  t.match(pending[1]?.event, { expires: 1767225600, notBefore: 1559081980 }, "NBF/EXP as the documentation's example quotes them");

  // CloudEvents: one event (application/cloudevents+json), then a batch (application/cloudevents-batch+json).
  const single = await post(app, cloudEvent("ce-1", "Microsoft.KeyVault.KeyExpired", keyData(seed.VERSION_1)), { "x-api-key": KEYS.operator, "content-type": "application/cloudevents+json; charset=utf-8" });
  t.same(single.json(), { received: 1, recorded: 1, duplicates: 0, ignored: 0 });
  const ceBatch = [cloudEvent("ce-1", "Microsoft.KeyVault.KeyExpired", keyData(seed.VERSION_1)), cloudEvent("ce-2", "Microsoft.KeyVault.KeyNewVersionCreated", keyData(seed.VERSION_1))];
  const many = await post(app, ceBatch, { "x-api-key": KEYS.operator, "content-type": "application/cloudevents-batch+json" });
  t.same(many.json(), { received: 2, recorded: 1, duplicates: 1, ignored: 0 });
  // The same id from another vault is another event.
  const otherVault = await post(app, [eventGridEvent("eg-1", "Microsoft.KeyVault.KeyNewVersionCreated", keyData(seed.VERSION_2), VAULT.replace(seed.KV_SANDBOX, seed.KV_EAST))]);
  t.same(otherVault.json(), { received: 1, recorded: 1, duplicates: 0, ignored: 0 });
  t.equal((await store.pending(versionless)).length, 5);
});

t.test("bad deliveries: 400 naming the field, 415 for another media type", async (t) => {
  const { app, store } = await startService(t);
  const missingType = await post(app, [{ id: "x", subject: "s", eventTime: "t", dataVersion: "1" }]);
  t.equal(missingType.statusCode, 400);
  t.match(missingType.json(), { code: "ValidationFailed" });
  const badData = await post(app, [eventGridEvent("bad-1", "Microsoft.KeyVault.KeyNewVersionCreated", { VaultName: "kvsandbox" })]);
  t.equal(badData.statusCode, 400);
  t.match(badData.json(), { code: "ValidationFailed", errors: [{ path: /^\/body\/0\/data/, message: /Key Vault's data has Id, VaultName/ }] });
  const unversioned = await post(app, [eventGridEvent("bad-2", "Microsoft.KeyVault.KeyNewVersionCreated", keyData(seed.VERSION_2, { Id: versionless }))]);
  t.match(unversioned.json(), { code: "ValidationFailed", errors: [{ path: "/body/0/data/Id", message: /versioned key id/ }] });
  t.equal((await post(app, [], undefined)).statusCode, 400, "an empty batch");
  const text = await post(app, "<events/>", { "x-api-key": KEYS.operator, "content-type": "application/xml" });
  t.equal(text.statusCode, 415);
  const retried = await post(app, [eventGridEvent("bad-1", "Microsoft.KeyVault.KeyNewVersionCreated", keyData(seed.VERSION_2))]);
  t.same(retried.json(), { received: 1, recorded: 1, duplicates: 0, ignored: 0 }, "a refused delivery claimed nothing");
  t.equal((await store.pending(versionless)).length, 1);
});

t.test("a credential with a subscription allow-list records only its subscriptions' vaults", async (t) => {
  const { app, store } = await startService(t);
  const other = `/subscriptions/${seed.OTHER_SUBSCRIPTION_ID}/resourceGroups/rg-other/providers/Microsoft.KeyVault/vaults/kvother`;
  const answer = await post(
    app,
    [eventGridEvent("s-1", "Microsoft.KeyVault.KeyNewVersionCreated", keyData(seed.VERSION_2)), eventGridEvent("s-2", "Microsoft.KeyVault.KeyNewVersionCreated", { ...keyData(seed.VERSION_2), Id: `https://kvother.vault.azure.net/keys/k/${seed.VERSION_2}` }, other)],
    { "x-api-key": SCOPED_KEY },
  );
  t.same(answer.json(), { received: 2, recorded: 1, duplicates: 0, ignored: 1 });
  t.same(await store.pending(versionless), [], "the seed subscription's vault is not the scoped key's");
  t.equal((await store.pending("https://kvother.vault.azure.net/keys/k")).length, 1);
});

t.test("a delivery costs two Redis round trips whatever its size; the seen markers expire", async (t) => {
  const prefix = `cmktest-events-${Date.now()}`;
  const redis = new Redis(REDIS_URL);
  t.teardown(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });
  const store = new KeyVaultEventStore({ redis, keys: storeKeys(prefix), retentionHours: 168, keepMs: 168 * 3_600_000 });
  const service = new KeyVaultEventService(store, { info: () => undefined, warn: () => undefined });
  const batch = Array.from({ length: 50 }, (_, i) => eventGridEvent(`rt-${i}`, "Microsoft.KeyVault.KeyNewVersionCreated", keyData(seed.VERSION_2)));
  const principal = { id: "apiKey:test", name: "test", kind: "apiKey" as const, role: "operator" as const, approver: false };
  await redis.ping();
  const trips = countRoundTrips(redis);
  t.same(await service.accept(batch, principal, new Date()), { received: 50, recorded: 50, duplicates: 0, ignored: 0 });
  t.equal(trips.count, 2, `50 new events: ${JSON.stringify(trips.trips.map((trip) => [...new Set(trip)].join("+") + ":" + trip.length))}`);
  trips.reset();
  t.same(await service.accept(batch, principal, new Date()), { received: 50, recorded: 0, duplicates: 50, ignored: 0 });
  t.equal(trips.count, 1, "50 duplicates: the claims alone");
  trips.stop();
  const [marker] = await redis.keys(`${prefix}:key-events:seen:*`);
  const ttl = await redis.pttl(marker!);
  t.ok(ttl > 47 * 3_600_000 && ttl <= 48 * 3_600_000, `a seen marker lives 48 h (${ttl} ms left)`);
  t.equal(await redis.xlen(`${prefix}:key-events:pending:${(await import("../../../src/job-store/keys.js")).keyDigest(versionless)}`), 50);
});
