import t from "tap";
import { UnrecoverableError, Worker, type Job } from "bullmq";
import type { ChangeJobData } from "../../src/domain/job-record.js";
import { jobStatus } from "../../src/domain/job-record.js";
import { cancelKeys, deduplicationKeyPrefix, endStateFromFields, JOB_FIELDS, snapshotFromHash } from "../../src/job-store/bullmq-layout.js";
import { createJobStore } from "../../src/job-store/job-store.js";
import { CHANGES_QUEUE } from "../../src/job-store/keys.js";
import { exclusivityId } from "../../src/job-store/queue.js";
import { createRedisConnection } from "../../src/job-store/redis-connection.js";
import { testConfig } from "../helpers/app.js";
import { fhirId, KEY_V2 } from "../helpers/requests.js";

/**
 * The contract with BullMQ's key layout (src/job-store/bullmq-layout.ts), checked on real BullMQ jobs in
 * every state a change job goes through: the hash fields a status read derives the state from, and the
 * keys and fields the cancel script reads and writes. A BullMQ upgrade that moves any of it fails here.
 */

type Behaviour = "hold" | "complete" | "fail" | "retry";

function data(name: string, behaviour: Behaviour): ChangeJobData {
  return {
    request: { operation: "SetKey", fhirServiceId: fhirId(name), keyEncryptionKeyUrl: KEY_V2, identity: { type: "SystemAssigned" }, ticket: { system: "test", id: behaviour } },
    createdBy: "layout-test",
    createdDateTime: new Date().toISOString(),
  } as ChangeJobData;
}

t.test("BullMQ's layout as the store relies on it, job state by job state", async (t) => {
  const config = testConfig(t);
  const redis = createRedisConnection(config.REDIS_URL, "worker");
  t.teardown(() => redis.disconnect());
  const store = createJobStore({ redis, prefix: config.CMK_QUEUE_PREFIX, retentionHours: 24 });
  t.teardown(() => store.close());
  const queue = store.changes;
  const prefix = config.CMK_QUEUE_PREFIX;
  const hash = (id: string) => redis.hgetall(queue.toKey(id));
  /** What the store reads against what BullMQ's own getState says, as the API shows it. */
  const agrees = async (id: string, expected: string) => {
    const snapshot = snapshotFromHash(id, await hash(id))!;
    const job = (await queue.getJob(id))!;
    const state = await job.getState();
    t.equal(state, expected, `${id}: BullMQ says ${expected}`);
    t.equal(jobStatus(snapshot), jobStatus({ state, attemptsStarted: job.attemptsStarted, progress: snapshot.progress }), `${id}: the hash alone gives the status getState gives`);
  };

  t.same(
    cancelKeys(queue),
    ["wait", "paused", "delayed", "prioritized", "failed", "completed", "events"].map((name) => `${prefix}:${CHANGES_QUEUE}:${name}`),
    "the keys the cancel script takes",
  );
  t.equal(deduplicationKeyPrefix(queue), `${prefix}:${CHANGES_QUEUE}:de:`);
  t.equal(queue.toKey("abc"), `${prefix}:${CHANGES_QUEUE}:abc`, "the job hash");

  // Waiting, holding its FHIR service's deduplication id.
  const waiting = await store.addChange(data("layout-wait", "hold"));
  t.ok(waiting.accepted);
  const waitingId = waiting.accepted ? waiting.jobId : "";
  const fields = await hash(waitingId);
  t.same(JSON.parse(fields[JOB_FIELDS.data]!).request.fhirServiceId, fhirId("layout-wait"), "data: the job's data as JSON");
  t.equal(fields[JOB_FIELDS.deduplicationId], exclusivityId(fhirId("layout-wait")), "deid: the deduplication id");
  t.notOk(JOB_FIELDS.attemptsStarted in fields, "no attempt started");
  t.notOk(JOB_FIELDS.finishedOn in fields, "not finished");
  t.equal(await redis.get(`${deduplicationKeyPrefix(queue)}${exclusivityId(fhirId("layout-wait"))}`), waitingId, "the deduplication key names the job");
  t.not(await redis.lpos(queue.keys.wait!, waitingId), null, "in the wait list");
  await agrees(waitingId, "waiting");
  await queue.updateJobProgress(waitingId, { steps: [], lastUpdatedDateTime: "2024-01-01T00:00:00.000Z" });
  t.same(JSON.parse((await hash(waitingId))[JOB_FIELDS.progress]!), { steps: [], lastUpdatedDateTime: "2024-01-01T00:00:00.000Z" }, "progress: the execution record as JSON");

  // Prioritized and delayed jobs are waiting too, in sorted sets the cancel script looks in.
  const prioritized = await queue.add("SetKey", data("layout-prio", "hold"), { jobId: "layout-prio", priority: 5 });
  t.not(await redis.zscore(queue.keys.prioritized!, prioritized.id!), null, "a job with a priority is in the prioritized set");
  await agrees(prioritized.id!, "prioritized");
  const delayed = await queue.add("SetKey", data("layout-delay", "hold"), { jobId: "layout-delay", delay: 60_000 });
  t.not(await redis.zscore(queue.keys.delayed!, delayed.id!), null, "a delayed job is in the delayed set");
  await agrees(delayed.id!, "delayed");
  for (const id of [waitingId, prioritized.id!, delayed.id!]) t.equal((await store.requestCancel(id, { by: "test", dateTime: new Date().toISOString() })).kind, "canceled", `${id}: canceled where it waited`);
  for (const id of [waitingId, prioritized.id!, delayed.id!]) {
    const after = await hash(id);
    t.ok(JOB_FIELDS.finishedOn in after && JOB_FIELDS.failedReason in after && !(JOB_FIELDS.returnValue in after), `${id}: finished as failed, as BullMQ finishes one`);
    await agrees(id, "failed");
  }
  t.equal(await redis.exists(`${deduplicationKeyPrefix(queue)}${exclusivityId(fhirId("layout-wait"))}`), 0, "the canceled job's deduplication key is gone");

  // A worker's jobs: active, completed, failed, and failed with attempts left.
  const started = new Map<string, () => void>();
  let release: (() => void) | undefined;
  const held = new Promise<void>((resolve) => (release = resolve));
  const worker = new Worker<ChangeJobData>(
    CHANGES_QUEUE,
    async (job: Job<ChangeJobData>) => {
      started.get(job.id!)?.();
      const behaviour = job.data.request.ticket!.id as Behaviour;
      if (behaviour === "hold") await held;
      if (behaviour === "fail") throw new UnrecoverableError("failed for the test");
      if (behaviour === "retry") throw new Error("retry for the test");
      return { done: true };
    },
    { connection: redis, prefix, concurrency: 5 },
  );
  t.teardown(() => worker.close(true));
  const run = async (name: string, behaviour: Behaviour, opts: { attempts?: number; backoff?: number } = {}) => {
    const id = `layout-${behaviour}`;
    const begun = new Promise<void>((resolve) => started.set(id, resolve));
    await queue.add("SetKey", data(name, behaviour), { jobId: id, attempts: opts.attempts ?? 1, ...(opts.backoff ? { backoff: { type: "fixed", delay: opts.backoff } } : {}) });
    await begun;
    return id;
  };
  const until = async (what: () => Promise<boolean>) => {
    for (let i = 0; i < 200 && !(await what()); i++) await new Promise((resolve) => setTimeout(resolve, 20));
  };

  const activeId = await run("layout-active", "hold");
  t.equal((await hash(activeId))[JOB_FIELDS.attemptsStarted], "1", "ats: counted when a worker takes the job");
  t.not(await redis.lpos(queue.keys.active!, activeId), null, "in the active list");
  for (const key of cancelKeys(queue).slice(0, 4)) t.equal((await redis.lpos(key, activeId).catch(() => null)) ?? (await redis.zscore(key, activeId).catch(() => null)), null, `an active job is not in ${key}`);
  await agrees(activeId, "active");
  t.equal((await store.requestCancel(activeId, { by: "test", dateTime: new Date().toISOString() })).kind, "requested", "a held job is flagged, not moved");

  const completedId = await run("layout-completed", "complete");
  await until(async () => JOB_FIELDS.finishedOn in (await hash(completedId)));
  const completed = await hash(completedId);
  t.same(JSON.parse(completed[JOB_FIELDS.returnValue]!), { done: true }, "returnvalue: set when the job completes");
  t.not(await redis.zscore(queue.keys.completed!, completedId), null, "in the completed set");
  await agrees(completedId, "completed");

  const failedId = await run("layout-failed", "fail");
  await until(async () => JOB_FIELDS.finishedOn in (await hash(failedId)));
  const failed = await hash(failedId);
  t.equal(failed[JOB_FIELDS.failedReason], "failed for the test", "failedReason: set when the job fails");
  t.notOk(JOB_FIELDS.returnValue in failed, "no returnvalue");
  await agrees(failedId, "failed");

  const retryId = await run("layout-retry", "retry", { attempts: 3, backoff: 60_000 });
  await until(async () => (await redis.zscore(queue.keys.delayed!, retryId)) !== null);
  const retrying = await hash(retryId);
  t.equal(retrying[JOB_FIELDS.attemptsStarted], "1");
  t.notOk(JOB_FIELDS.finishedOn in retrying, "an attempt that will be retried is not an end");
  await agrees(retryId, "delayed");
  t.equal(jobStatus(snapshotFromHash(retryId, retrying)!), "Running", "between attempts the job shows Running");

  release!();
  await until(async () => JOB_FIELDS.finishedOn in (await hash(activeId)));
  await agrees(activeId, "completed");
  t.equal((await redis.xlen(queue.keys.events!)) > 0, true, "BullMQ's events stream, where cancel adds its failed event");
});

t.test("the accept-with-key script runs BullMQ's own add behind the Idempotency-Key claim", async (t) => {
  const config = testConfig(t);
  const redis = createRedisConnection(config.REDIS_URL, "worker");
  t.teardown(() => redis.disconnect());
  const store = createJobStore({ redis, prefix: config.CMK_QUEUE_PREFIX, retentionHours: 24 });
  t.teardown(() => store.close());
  const queue = store.changes;
  const plainHash = async (id: string) => {
    const { timestamp: _timestamp, ...fields } = await redis.hgetall(queue.toKey(id));
    return fields;
  };

  // The same job added by queue.add (the path without a key) and through the script: the same hash, the same queue entries.
  const plain = await store.addChange(data("layout-add-plain", "hold"));
  const claim = store.idempotency.claim("layout-test", "key-1", "fingerprint-1", "00000000-0000-4000-8000-0000000000a1");
  const claimed = await store.addChange(data("layout-add-claimed", "hold"), { jobId: "00000000-0000-4000-8000-0000000000a1", idempotency: claim });
  t.ok(plain.accepted && claimed.accepted);
  if (!plain.accepted || !claimed.accepted) return;
  const [plainFields, claimedFields] = [await plainHash(plain.jobId), await plainHash(claimed.jobId)];
  t.same(Object.keys(claimedFields).sort(), Object.keys(plainFields).sort(), "the same fields as BullMQ's queue.add writes");
  // Options as BullMQ stores them, with this job's own ids (job id, deduplication id) taken out.
  const opts = (fields: Record<string, string>, id: string) => fields.opts!.replace(id, "<id>").replace(fields.deid!, "<deid>");
  t.same(
    { ...claimedFields, data: "", deid: "", opts: opts(claimedFields, claimed.jobId) },
    { ...plainFields, data: "", deid: "", opts: opts(plainFields, plain.jobId) },
    "the same options, name and counters",
  );
  t.equal(claimedFields.deid, exclusivityId(fhirId("layout-add-claimed")), "the FHIR service's deduplication id");
  t.equal((await queue.getJob(claimed.jobId))?.data.request.fhirServiceId, fhirId("layout-add-claimed"), "BullMQ reads it as its own");
  t.equal(await queue.getJobState(claimed.jobId), "waiting");
  t.equal(await redis.get(claim.key), claim.record, "the claim was written with it");

  // The key held: nothing added, the earlier record answered.
  const again = store.idempotency.claim("layout-test", "key-1", "fingerprint-1", "00000000-0000-4000-8000-0000000000a2");
  const held = await store.addChange(data("layout-add-held", "hold"), { jobId: "00000000-0000-4000-8000-0000000000a2", idempotency: again });
  t.same(held, { accepted: false, earlierRecord: claim.record });
  t.equal(await redis.exists(queue.toKey("00000000-0000-4000-8000-0000000000a2")), 0, "no job");

  // Refused by the FHIR service's unfinished job: the claim is given back in the same script.
  const other = store.idempotency.claim("layout-test", "key-2", "fingerprint-2", "00000000-0000-4000-8000-0000000000a3");
  const refused = await store.addChange(data("layout-add-claimed", "hold"), { jobId: "00000000-0000-4000-8000-0000000000a3", idempotency: other });
  t.same(refused, { accepted: false, activeJobId: claimed.jobId });
  t.equal(await redis.exists(other.key), 0, "the key is free again");
});

t.test("endStateFromFields: a job ended by governance (ChangeWindowMissed, Rejected, ApprovalExpired) is Canceled, as its monitor says", async (t) => {
  const ended = (failedReason: string) => endStateFromFields(["1", "2", null, failedReason]);
  t.equal(ended("Canceled: by test-operator"), "Canceled");
  t.equal(ended("Canceled by test-operator at 2026-11-29T00:00:00Z"), "Canceled");
  t.equal(ended("ChangeWindowMissed: The change window closed"), "Canceled");
  t.equal(ended("Rejected: Rejected by test-approver"), "Canceled");
  t.equal(ended("ApprovalExpired: No approver decided"), "Canceled");
  t.equal(ended("PreflightFailed: 1 pre-flight check(s) failed"), "Failed");
  t.equal(ended("KeyChanged: no longer uses the fleet's key"), "Failed");
  t.equal(endStateFromFields(["1", "2", '{"armWrites":1}', "ChangeWindowMissed: earlier attempt"]), "Succeeded", "a return value decides first");
  t.equal(endStateFromFields(["1", null, null, null]), "unfinished");
  t.equal(endStateFromFields([null, null, null, null]), "missing");
});
