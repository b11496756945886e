import t from "tap";
import { Worker } from "bullmq";
import type { ChangeJobData } from "../../src/domain/job-record.js";
import { JOB_FIELDS, snapshotFromHash } from "../../src/job-store/bullmq-layout.js";
import { createJobStore } from "../../src/job-store/job-store.js";
import { CHANGES_QUEUE } from "../../src/job-store/keys.js";
import { createRedisConnection } from "../../src/job-store/redis-connection.js";
import { testConfig } from "../helpers/app.js";
import { fhirId, KEY_V2 } from "../helpers/requests.js";

/**
 * The store's side of approvals (src/job-store/approval.ts) on real BullMQ jobs: a change awaiting
 * approval is a delayed job holding its service's deduplication id; the first decision wins atomically;
 * the decision, a field of BullMQ's job hash, survives the job's moves until BullMQ deletes the job.
 */
t.test("a waiting change, its decision and BullMQ's moves", async (t) => {
  const config = testConfig(t);
  const redis = createRedisConnection(config.REDIS_URL, "worker");
  t.teardown(() => redis.disconnect());
  const store = createJobStore({ redis, prefix: config.CMK_QUEUE_PREFIX, retentionHours: 24 });
  t.teardown(() => store.close());
  const expires = new Date(Date.now() + 3_600_000).toISOString();
  const data: ChangeJobData = {
    request: { operation: "SetKey", fhirServiceId: fhirId("approval-store"), keyEncryptionKeyUrl: KEY_V2, identity: { type: "SystemAssigned" } },
    createdBy: "alice",
    createdById: "apiKey:alice",
    createdDateTime: new Date().toISOString(),
    approval: { expiresDateTime: expires },
  };
  const added = await store.addChange(data);
  if (!added.accepted) throw new Error("not accepted");
  const { jobId } = added;
  t.equal(await (await store.changes.getJob(jobId))!.getState(), "delayed", "a delayed job: no worker slot");
  const delayedUntil = Number((await redis.zscore(store.changes.keys.delayed!, jobId)) ?? 0) / 4096;
  t.ok(Math.abs(delayedUntil - Date.parse(expires)) < 2000, "due when the approval expires");
  t.match(await store.addChange({ ...data, createdDateTime: new Date().toISOString() }), { accepted: false, activeJobId: jobId }, "it holds the service");
  t.match(await store.readMonitor(jobId), { status: "NotStarted", currentStep: "AwaitingApproval", approval: { state: "Pending", expiresDateTime: expires } });

  const decisions = await Promise.all(
    ["bob", "carol", "dave", "erin"].map((name) => store.decideApproval(jobId, { state: "Approved", decidedBy: name, decidedById: `apiKey:${name}`, decidedDateTime: new Date().toISOString() })),
  );
  t.equal(decisions.filter((outcome) => outcome.kind === "decided").length, 1, "one decision of four wins");
  const winner = (decisions.find((outcome) => outcome.kind === "alreadyDecided") as { decision: { decidedBy: string } }).decision.decidedBy;
  t.ok(decisions.every((outcome) => outcome.kind === "decided" || (outcome.kind === "alreadyDecided" && outcome.decision?.decidedBy === winner)), "the others are told who won");
  t.match(await store.gateState(jobId), { decision: { state: "Approved", decidedBy: winner }, wrote: false });

  t.equal(await store.releaseApproved(jobId, 0), true, "promoted");
  const seen: string[] = [];
  const worker = new Worker<ChangeJobData>(
    CHANGES_QUEUE,
    async (job) => {
      seen.push((await redis.hget(store.changes.toKey(job.id!), JOB_FIELDS.approval)) ?? "");
      return { keyEncryptionKeyUrl: KEY_V2, identityType: "SystemAssigned", provisioningState: "Succeeded" };
    },
    { connection: redis, prefix: config.CMK_QUEUE_PREFIX },
  );
  t.teardown(() => worker.close(true));
  await new Promise<void>((resolve, reject) => {
    worker.once("completed", () => resolve());
    worker.once("failed", (_job, error) => reject(error));
    worker.once("error", (error) => reject(error));
  });
  t.match(JSON.parse(seen[0]!), { state: "Approved", decidedBy: winner }, "kept when BullMQ moved it to active");
  const snapshot = snapshotFromHash(jobId, await redis.hgetall(store.changes.toKey(jobId)))!;
  t.match(snapshot, { state: "completed", decision: { state: "Approved", decidedBy: winner } }, "and when it completed");
  t.match(await store.decideApproval(jobId, { state: "Rejected", decidedDateTime: new Date().toISOString() }), { kind: "finished" }, "a finished job takes no decision");
  t.match(await store.decideApproval("00000000-0000-4000-8000-000000000000", { state: "Rejected", decidedDateTime: new Date().toISOString() }), { kind: "missing" });
  t.equal(await store.releaseApproved(jobId, 0), false, "nothing to move once it ran");
});
