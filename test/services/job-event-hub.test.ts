import t from "tap";
import type { FastifyInstance } from "fastify";
import { buildTestApp, KEYS, testConfig, waitForJob } from "../helpers/app.js";
import { startStack } from "../helpers/stack.js";
import { KEY_V1, KEY_V2, setKey } from "../helpers/requests.js";
import { SET_KEY_STEPS } from "../../src/domain/operation-plans.js";
import { openStream } from "../helpers/event-stream.js";

const stepIndex = (name: string | undefined) => SET_KEY_STEPS.findIndex((step) => step.name === name);

async function streamIds(app: FastifyInstance, jobId: string): Promise<string[]> {
  const entries = await app.redis.xrange(`${app.config.CMK_QUEUE_PREFIX}:jobs:${jobId}:events`, "-", "+");
  return entries.map(([id]) => id);
}

t.test("GET /v1/jobs/{jobId}/events over real HTTP", async (t) => {
  const { app } = await startStack(t, { lroMs: 1200, env: { CMK_SSE_HEARTBEAT_MS: "200" } });
  const address = await app.listen({ port: 0, host: "127.0.0.1" });
  const submit = async (key: string) => {
    const response = await app.inject({ method: "POST", url: "/v1/change-requests", payload: setKey("fhir-sys", key), headers: { "x-api-key": KEYS.operator } });
    t.equal(response.statusCode, 202);
    return response.json().id as string;
  };

  t.test("a client sees every change in order, each step, and the stream ends with the job", async (t) => {
    const jobId = await submit(KEY_V2);
    const stream = await openStream(address, `/v1/jobs/${jobId}/events`);
    t.equal(stream.response.statusCode, 200);
    t.match(stream.response.headers["content-type"], /^text\/event-stream/);
    t.equal(stream.response.headers["cache-control"], "no-store", "as every /v1 answer: no cache keeps it");
    t.equal(stream.response.headers["x-accel-buffering"], "no");
    await stream.ended;
    const { events } = stream;
    t.ok(events.length >= 10, `${events.length} events`);
    t.equal(events.at(-1)!.monitor.status, "Succeeded", "the last event is the terminal monitor");
    t.ok(events.every((event) => event.monitor.id === jobId));
    // Ids increase; statuses and steps only move forward.
    for (let i = 1; i < events.length; i += 1) {
      const [aMs, aSeq] = events[i - 1]!.id.split("-").map(Number);
      const [bMs, bSeq] = events[i]!.id.split("-").map(Number);
      t.ok(bMs! > aMs! || (bMs === aMs && bSeq! > aSeq!), `id ${events[i]!.id} after ${events[i - 1]!.id}`);
      t.ok(stepIndex(events[i]!.monitor.currentStep) >= stepIndex(events[i - 1]!.monitor.currentStep), "currentStep never goes back");
    }
    const ran = SET_KEY_STEPS.map((step) => step.name).filter((name) => events.at(-1)!.monitor.steps.find((step) => step.name === name)?.status === "Succeeded");
    const seenRunning = SET_KEY_STEPS.map((step) => step.name).filter((name) => events.some((event) => event.monitor.steps.find((step) => step.name === name)?.status === "Running"));
    t.same(seenRunning, ran, "every step that ran was seen Running, in plan order");
    // The stream starts with the monitor current at connection, then every change after it.
    const log = await streamIds(app, jobId);
    t.same(
      events.map((event) => event.id),
      log.slice(log.indexOf(events[0]!.id)),
      "from its first event on, the client got exactly the job's event log: no change coalesced or lost",
    );
    t.ok(stream.comments.some((comment) => comment === "heartbeat"), "comment heartbeats");

    const replay = await openStream(address, `/v1/jobs/${jobId}/events`, { "last-event-id": events.at(-1)!.id });
    t.equal(replay.response.statusCode, 204, "reconnecting after the end: 204, nothing more to say");
    replay.close();
    const fresh = await openStream(address, `/v1/jobs/${jobId}/events`);
    await fresh.ended;
    t.same(fresh.events.map((event) => event.monitor.status), ["Succeeded"], "a new client of an ended job gets its final monitor and the end");
  });

  t.test("a client that drops and reconnects with Last-Event-ID misses nothing and gets nothing twice", async (t) => {
    const jobId = await submit(KEY_V1);
    const first = await openStream(address, `/v1/jobs/${jobId}/events`);
    await first.waitFor(3);
    first.close();
    const seen = [...first.events];
    // The job moves on meanwhile: wait until it has logged an event this client did not get.
    const missed = async () => {
      const log = await streamIds(app, jobId);
      return log.indexOf(seen.at(-1)!.id) < log.length - 1;
    };
    for (let i = 0; i < 1000 && !(await missed()); i++) await new Promise((resolve) => setTimeout(resolve, 10));
    t.ok(await missed(), "events happened while the client was away");
    const second = await openStream(address, `/v1/jobs/${jobId}/events`, { "last-event-id": seen.at(-1)!.id });
    t.equal(second.response.statusCode, 200);
    await second.ended;
    const all = [...seen, ...second.events].map((event) => event.id);
    t.equal(new Set(all).size, all.length, "no event twice");
    const log = await streamIds(app, jobId);
    t.same(all, log.slice(log.indexOf(all[0]!)), "every event, in order");
    t.equal(second.events.at(-1)!.monitor.status, "Succeeded");
  });
});

t.test("many clients, one Redis subscription; heartbeats while nothing happens; Canceled ends the streams", async (t) => {
  const { app } = await startStack(t, { worker: false, env: { CMK_SSE_HEARTBEAT_MS: "150" } });
  const address = await app.listen({ port: 0, host: "127.0.0.1" });
  const submitted = await app.inject({ method: "POST", url: "/v1/change-requests", payload: setKey("fhir-uami"), headers: { "x-api-key": KEYS.operator } });
  const jobId = submitted.json().id as string;
  // 20: as many as one credential may hold by default (CMK_SSE_MAX_STREAMS_PER_CREDENTIAL).
  const streams = await Promise.all(Array.from({ length: 20 }, () => openStream(address, `/v1/jobs/${jobId}/events`)));
  await Promise.all(streams.map((stream) => stream.waitFor(1)));
  t.ok(streams.every((stream) => stream.events[0]!.monitor.status === "NotStarted"), "each starts with the current monitor");
  t.equal(app.jobs.events.openStreams, 20);
  const [, subscribers] = (await app.redis.pubsub("NUMSUB", `${app.config.CMK_QUEUE_PREFIX}:jobs:events`)) as [string, number];
  t.equal(Number(subscribers), 1, "one subscription for 20 streams");
  await new Promise((resolve) => setTimeout(resolve, 500));
  t.ok(streams.every((stream) => stream.comments.filter((comment) => comment === "heartbeat").length >= 2), "heartbeats keep idle streams alive");

  const canceled = await app.inject({ method: "POST", url: `/v1/jobs/${jobId}/cancel`, headers: { "x-api-key": KEYS.operator } });
  t.equal(canceled.statusCode, 200);
  await Promise.all(streams.map((stream) => stream.ended));
  t.ok(streams.every((stream) => stream.events.at(-1)!.monitor.status === "Canceled"), "every stream got Canceled, then closed");
  t.equal(app.jobs.events.openStreams, 0);

  const missing = await openStream(address, "/v1/jobs/00000000-0000-4000-8000-000000000000/events");
  t.equal(missing.response.statusCode, 404);
  missing.close();
  const anonymous = await openStream(address, `/v1/jobs/${jobId}/events`, { "x-api-key": "" });
  t.equal(anonymous.response.statusCode, 401, "header auth as every /v1 route");
  anonymous.close();
  const badId = await openStream(address, `/v1/jobs/${jobId}/events`, { "last-event-id": "yesterday" });
  t.equal(badId.response.statusCode, 400);
  badId.close();
  await waitForJob(app, jobId);
});

t.test("event streams are capped per credential and per process: 429 TooManyEventStreams; a closed or ended stream frees its place", async (t) => {
  const app = await buildTestApp(t, testConfig(t, { CMK_SSE_MAX_STREAMS_PER_CREDENTIAL: "3", CMK_SSE_MAX_STREAMS: "5", CMK_SSE_HEARTBEAT_MS: "200" }));
  const address = await app.listen({ port: 0, host: "127.0.0.1" });
  // No worker: the job waits, so its streams stay open.
  const submit = async () => {
    const response = await app.inject({ method: "POST", url: "/v1/change-requests", payload: setKey("fhir-sys"), headers: { "x-api-key": KEYS.operator } });
    t.equal(response.statusCode, 202);
    return `/v1/jobs/${response.json().id as string}/events`;
  };
  const path = await submit();
  const open = async (key: string) => {
    const stream = await openStream(address, path, { "x-api-key": key });
    if (stream.response.statusCode === 200) await stream.waitFor(1);
    t.teardown(() => stream.close());
    return stream;
  };
  const refusal = async (key: string) => {
    const response = await fetch(new URL(path, address), { headers: { "x-api-key": key }, signal: AbortSignal.timeout(5000) });
    return { status: response.status, type: response.headers.get("content-type"), retryAfter: response.headers.get("retry-after"), problem: (await response.json()) as Record<string, unknown> };
  };
  const openGauge = async () => /^cmk_event_streams (\d+)$/m.exec((await app.inject({ method: "GET", url: "/metrics" })).body)?.[1];
  const until = async (what: () => Promise<boolean>) => {
    for (let i = 0; i < 200 && !(await what()); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  };

  const readers = [await open(KEYS.reader), await open(KEYS.reader), await open(KEYS.reader)];
  t.same(readers.map((stream) => stream.response.statusCode), [200, 200, 200]);
  const overCredential = await refusal(KEYS.reader);
  t.equal(overCredential.status, 429, "the credential's fourth stream is refused");
  t.match(overCredential.type, /^application\/problem\+json/);
  t.match(overCredential.problem, { code: "TooManyEventStreams", status: 429, limit: 3, detail: /3 event streams/ });
  t.ok(Number(overCredential.retryAfter) >= 1, "with Retry-After");
  t.equal(await openGauge(), "3", "refusals hold no place");

  readers[0]!.close();
  await until(async () => (await openGauge()) === "2");
  t.equal(await openGauge(), "2", "a client that disconnects frees its place");
  const again = await open(KEYS.reader);
  t.equal(again.response.statusCode, 200, "...and the credential may open another");

  t.equal((await open(KEYS.operator)).response.statusCode, 200, "another credential is not limited by the first one's streams");
  t.equal((await open(KEYS.admin)).response.statusCode, 200);
  const overProcess = await refusal(KEYS.admin);
  t.equal(overProcess.status, 429, "the process's sixth stream is refused");
  t.match(overProcess.problem, { code: "TooManyEventStreams", limit: 5 });

  const jobId = path.split("/")[3]!;
  t.equal((await app.inject({ method: "POST", url: `/v1/jobs/${jobId}/cancel`, headers: { "x-api-key": KEYS.operator } })).statusCode, 200);
  await until(async () => (await openGauge()) === "0");
  t.equal(await openGauge(), "0", "streams that end with their job free their places");

  const next = await submit();
  const lasting = await Promise.all([KEYS.reader, KEYS.reader, KEYS.operator].map((key) => openStream(address, next, { "x-api-key": key })));
  t.same(lasting.map((stream) => stream.response.statusCode), [200, 200, 200]);
  await Promise.all(lasting.map((stream) => stream.waitFor(1)));
  t.equal(app.jobs.streams.open, 3);
  await app.close();
  await Promise.all(lasting.map((stream) => stream.ended));
  t.equal(app.jobs.streams.open, 0, "closing the server frees every place");
});
