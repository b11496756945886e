import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import t, { type Test } from "tap";
import { Webhook } from "standardwebhooks";
import { KEYS, waitForJob } from "../helpers/app.js";
import { startStack } from "../helpers/stack.js";
import { setKey } from "../helpers/requests.js";
import { generateWebhookSecret, signWebhook, startWebhookWorker } from "../../src/worker/webhook-delivery.js";
import { createJobStore } from "../../src/job-store/job-store.js";
import { createRedisConnection, redisTarget } from "../../src/job-store/redis-connection.js";
import { catchUpWebhooks } from "../../src/worker/job-hooks.js";
import { resolveWebhookSecret } from "../../src/runtime.js";
import { loadConfig } from "../../src/config.js";

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

/** The CMK_CALLBACK_ALLOWED_HOSTS value that lets jobs call these receivers. */
const allowing = (...receivers: Array<{ host: string }>) => ({ CMK_CALLBACK_ALLOWED_HOSTS: receivers.map((receiver) => receiver.host).join(",") });

/** A local receiver: answers each POST with the next status of `statuses` (then 200), records what came. */
async function startReceiver(t: Test, statuses: number[] = [], extraHeaders: Record<string, string> = {}) {
  const received: Received[] = [];
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  const server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => (body += chunk));
    req.on("end", () => {
      received.push({ headers: req.headers, body, at: Date.now() });
      const status = statuses.shift() ?? 200;
      res.writeHead(status, status >= 300 && status < 400 ? { location: "http://127.0.0.1:1/elsewhere", ...extraHeaders } : extraHeaders).end("ok");
      for (const waiter of [...waiters]) if (received.length >= waiter.count) waiter.resolve();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: `http://${host}/hooks/cmk?token=abc`,
    /** Its CMK_CALLBACK_ALLOWED_HOSTS entry: loopback ports are allowed only when named. */
    host,
    received,
    waitFor: (count: number, timeoutMs = 15_000) =>
      received.length >= count
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`only ${received.length} of ${count} deliveries`)), timeoutMs);
            waiters.push({ count, resolve: () => (clearTimeout(timer), resolve()) });
          }),
  };
}

const verifyWith = (secret: string, delivery: Received) =>
  new Webhook(secret).verify(delivery.body, {
    "webhook-id": String(delivery.headers["webhook-id"]),
    "webhook-timestamp": String(delivery.headers["webhook-timestamp"]),
    "webhook-signature": String(delivery.headers["webhook-signature"]),
  });

t.test("signature: the Standard Webhooks reference library accepts ours, and only with the right secret", async (t) => {
  const secret = generateWebhookSecret();
  t.match(secret, /^whsec_[A-Za-z0-9+/=]{44}$/);
  const timestamp = Math.floor(Date.now() / 1000);
  const body = JSON.stringify({ id: "x", status: "Succeeded" });
  const signature = signWebhook(secret, "msg_1", timestamp, body);
  t.equal(signature, new Webhook(secret).sign("msg_1", new Date(timestamp * 1000), body));
});

t.test("the signing secret: configured, generated in sandbox mode, absent in azure mode", async (t) => {
  const configured = generateWebhookSecret();
  t.same(resolveWebhookSecret(loadConfig({ CMK_WEBHOOK_SECRET: configured })), { webhookSecret: configured });
  const generated = resolveWebhookSecret(loadConfig({}));
  t.match(generated.generatedWebhookSecret, /^whsec_/);
  t.equal(generated.webhookSecret, generated.generatedWebhookSecret);
  t.same(resolveWebhookSecret(loadConfig({ CMK_MODE: "azure", CMK_AUTH_ISSUER: undefined })), {});
  t.throws(() => loadConfig({ CMK_WEBHOOK_SECRET: "not-a-secret" }), /CMK_WEBHOOK_SECRET/);
});

t.test("webhooks when jobs end", async (t) => {
  const secret = generateWebhookSecret();
  const receivers = { succeeds: await startReceiver(t), failsTwice: await startReceiver(t, [500, 503]), redirects: await startReceiver(t, [302]) };
  const { app } = await startStack(t, { lroMs: 300, env: { CMK_WEBHOOK_SECRET: secret, CMK_WEBHOOK_BACKOFF_MS: "300", ...allowing(...Object.values(receivers)) } });
  const submit = async (body: object) => {
    const response = await app.inject({ method: "POST", url: "/v1/change-requests", payload: body, headers: { "x-api-key": KEYS.operator } });
    t.equal(response.statusCode, 202, response.body);
    return response.json();
  };

  t.test("a job that succeeds is POSTed to its callbackUrl, signed; a wrong secret fails verification", async (t) => {
    const receiver = receivers.succeeds;
    const accepted = await submit(setKey("fhir-sys", undefined, undefined, { dryRun: true, callbackUrl: receiver.url, ticket: { system: "servicenow", id: "CHG-HOOK" } }));
    t.match(accepted.callback, { url: receiver.url.replace(/\?.*$/, ""), status: "Pending", deliveries: [] }, "the 202 says a webhook will come (no query string shown)");
    await receiver.waitFor(1);
    const [delivery] = receiver.received;
    t.equal(delivery!.headers["webhook-id"], `msg_${accepted.id}`);
    t.match(delivery!.headers["content-type"], /application\/json/);
    const payload = verifyWith(secret, delivery!) as Record<string, unknown>;
    t.match(payload, { id: accepted.id, status: "Succeeded", ticket: { id: "CHG-HOOK" }, percentComplete: 100 });
    t.throws(() => verifyWith(generateWebhookSecret(), delivery!), "another secret does not verify");
    t.throws(() => new Webhook(secret).verify(delivery!.body.replace("Succeeded", "Failed"), delivery!.headers as Record<string, string>), "a changed body does not verify");

    const { monitor } = await waitForJob(app, accepted.id);
    await until(async () => (await status(accepted.id)).callback?.status === "Delivered");
    const shown = await status(accepted.id);
    t.match(shown.callback, { status: "Delivered", deliveries: [{ attempt: 1, outcome: "Delivered", statusCode: 200, dateTime: String }] });
    t.equal(monitor.status, "Succeeded");
  });

  t.test("a receiver that fails twice gets the third attempt; each attempt shows in the monitor", async (t) => {
    const receiver = receivers.failsTwice;
    const accepted = await submit(setKey("fhir-uami", undefined, undefined, { dryRun: true, callbackUrl: receiver.url }));
    await receiver.waitFor(3);
    const ids = new Set(receiver.received.map((delivery) => delivery.headers["webhook-id"]));
    t.equal(ids.size, 1, "the same webhook-id on every attempt (receivers de-duplicate on it)");
    for (const delivery of receiver.received) t.ok(verifyWith(secret, delivery), "each attempt is signed afresh");
    const gaps = [receiver.received[1]!.at - receiver.received[0]!.at, receiver.received[2]!.at - receiver.received[1]!.at];
    t.ok(gaps[0]! >= 250 && gaps[1]! >= 550, `backoff doubles (${gaps.join(" ms, ")} ms)`);
    await until(async () => (await status(accepted.id)).callback?.status === "Delivered");
    const { callback } = await status(accepted.id);
    t.match(callback.deliveries, [
      { attempt: 1, outcome: "Retrying", statusCode: 500, error: "HTTP 500", nextAttemptDateTime: String },
      { attempt: 2, outcome: "Retrying", statusCode: 503, nextAttemptDateTime: String },
      { attempt: 3, outcome: "Delivered", statusCode: 200 },
    ]);
  });

  t.test("redirects are not followed", async (t) => {
    const receiver = receivers.redirects;
    const accepted = await submit(setKey("fhir-norole", undefined, undefined, { dryRun: true, callbackUrl: receiver.url }));
    await receiver.waitFor(2);
    await until(async () => (await status(accepted.id)).callback?.status === "Delivered");
    t.match((await status(accepted.id)).callback.deliveries[0], { outcome: "Retrying", statusCode: 302, error: /Redirects are not followed/ });
  });

  async function status(jobId: string) {
    return (await app.inject({ method: "GET", url: `/v1/jobs/${jobId}`, headers: { "x-api-key": KEYS.reader } })).json();
  }
});

t.test("a waiting job canceled through the API sends its webhook too", async (t) => {
  const secret = generateWebhookSecret();
  const receiver = await startReceiver(t);
  const { app, config } = await startStack(t, { worker: false, env: { CMK_WEBHOOK_SECRET: secret, CMK_WEBHOOK_BACKOFF_MS: "200", ...allowing(receiver) } });
  const webhooks = startWebhookWorker({ redis: redisTarget(config), prefix: config.CMK_QUEUE_PREFIX, secret, backoffMs: 200, timeoutMs: 2000, retentionHours: 168, logger: app.log });
  t.teardown(() => webhooks.close(true));
  const accepted = await app.inject({ method: "POST", url: "/v1/change-requests", payload: setKey("fhir-sys", undefined, undefined, { callbackUrl: receiver.url }), headers: { "x-api-key": KEYS.operator } });
  const jobId = accepted.json().id;
  t.equal((await app.inject({ method: "POST", url: `/v1/jobs/${jobId}/cancel`, headers: { "x-api-key": KEYS.operator } })).statusCode, 200);
  await receiver.waitFor(1);
  t.match(verifyWith(secret, receiver.received[0]!), { id: jobId, status: "Canceled", error: { code: "Canceled" } });
});

async function until(check: () => Promise<boolean>, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

t.test("a webhook a dead worker never queued is queued by the next worker's catch-up, once", async (t) => {
  const secret = generateWebhookSecret();
  const receiver = await startReceiver(t);
  const { app, config } = await startStack(t, { lroMs: 200, env: { CMK_WEBHOOK_SECRET: secret, CMK_WEBHOOK_BACKOFF_MS: "300", ...allowing(receiver) } });
  const accepted = await app.inject({
    method: "POST",
    url: "/v1/change-requests",
    payload: setKey("fhir-sys", undefined, undefined, { dryRun: true, callbackUrl: receiver.url }),
    headers: { "x-api-key": KEYS.operator },
  });
  const jobId = accepted.json().id;
  await waitForJob(app, jobId);
  await receiver.waitFor(1);

  // As if the worker had died before queueing it: no webhook job exists for the change job.
  const connection = createRedisConnection(config.REDIS_URL, "worker");
  t.teardown(() => connection.disconnect());
  const store = createJobStore({ redis: connection, prefix: config.CMK_QUEUE_PREFIX, retentionHours: 24, webhookBackoffMs: 300 });
  t.teardown(() => store.close());
  await (await store.webhooks.getJob(jobId))!.remove();

  t.ok((await catchUpWebhooks(store, app.log)) >= 1, "recent finished jobs were looked at");
  await receiver.waitFor(2);
  t.equal(receiver.received[1]!.headers["webhook-id"], `msg_${jobId}`, "the same message id, so receivers de-duplicate");
  t.equal((verifyWith(secret, receiver.received[1]!) as { id: string }).id, jobId);

  await catchUpWebhooks(store, app.log);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  t.equal(receiver.received.length, 2, "a queued (or delivered) webhook is not queued again");
});
