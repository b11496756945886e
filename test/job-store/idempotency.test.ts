import t from "tap";
import { createHash, randomUUID } from "node:crypto";
import { IdempotencyKeys, PENDING_MS } from "../../src/job-store/idempotency.js";
import { createJobStore } from "../../src/job-store/job-store.js";
import { createRedisConnection } from "../../src/job-store/redis-connection.js";
import { testConfig } from "../helpers/app.js";
import { setKey } from "../helpers/requests.js";

t.test("an Idempotency-Key record: claimed once, replayed from its job, taken over when abandoned", async (t) => {
  const config = testConfig(t);
  const redis = createRedisConnection(config.REDIS_URL, "worker");
  t.teardown(() => redis.disconnect());
  const store = createJobStore({ redis, prefix: config.CMK_QUEUE_PREFIX, retentionHours: 24 });
  t.teardown(() => store.close());
  let now = 1_000_000;
  const keys = new IdempotencyKeys(store, (jobId) => store.addedMonitor(jobId), () => now);

  const first = randomUUID();
  t.same(await keys.reserve("alice", "key-1", "fp", first), { kind: "reserved" });
  now += 1000;
  t.same(await keys.reserve("alice", "key-1", "fp", randomUUID()), { kind: "inProgress" }, "its job is not there yet: the first request is still adding it");
  t.same(await keys.reserve("alice", "key-1", "another body", randomUUID()), { kind: "mismatch" });
  t.same(await keys.reserve("bob", "key-1", "fp", randomUUID()), { kind: "reserved" }, "keys are per principal");

  // The first request's job appears: retries answer it.
  const data = { request: setKey("fhir-idem") as never, createdBy: "alice", createdDateTime: new Date(now).toISOString() };
  const added = await store.addChange(data, { jobId: first });
  t.ok(added.accepted);
  const replay = await keys.reserve("alice", "key-1", "fp", randomUUID());
  t.equal(replay.kind, "replay");
  t.match(replay, { monitor: { id: first, status: "NotStarted", createdBy: "alice" } }, "the monitor the 202 carried");

  // A request that died before adding its job: after PENDING_MS its key is taken over, by one retry only.
  t.same(await keys.reserve("carol", "key-2", "fp", randomUUID()), { kind: "reserved" });
  now += PENDING_MS + 1;
  const racing = await Promise.all([keys.reserve("carol", "key-2", "fp", randomUUID()), keys.reserve("carol", "key-2", "fp", randomUUID())]);
  t.same(racing.map((reservation) => reservation.kind).sort(), ["inProgress", "reserved"], "two retries of an abandoned key: one takes it over");

  await keys.release("carol", "key-2");
  t.same(await keys.reserve("carol", "key-2", "other body now", randomUUID()), { kind: "reserved" }, "a released key is judged afresh");
  // Records of the version before, during a rolling upgrade: its stored answer is replayed, its claim waited for.
  const earlierKey = (key: string) => store.keys.idempotency(createHash("sha256").update(`dave\n${key}`).digest("hex"));
  await redis.set(earlierKey("old-answer"), JSON.stringify({ fingerprint: "fp", statusCode: 202, headers: {}, body: { id: "old-job", status: "NotStarted" } }));
  await redis.set(earlierKey("old-claim"), JSON.stringify({ pending: true, fingerprint: "fp" }), "EX", 5);
  t.match(await keys.reserve("dave", "old-answer", "fp", randomUUID()), { kind: "replay", monitor: { id: "old-job" } });
  t.same(await keys.reserve("dave", "old-claim", "fp", randomUUID()), { kind: "inProgress" });

  const ttl = await redis.ttl(store.keys.idempotency(createHash("sha256").update("alice\nkey-1").digest("hex")));
  t.ok(ttl > 86_000 && ttl <= 86_400, `a record is kept as long as the retention, at least 24 hours (${ttl} s left)`);
});
