import { randomBytes, randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { Job, type JobsOptions } from "bullmq";
import type { FastifyBaseLogger } from "fastify";
import { newJobMonitor, toStatusMonitor, type ChangeJobData, type CancelRecord } from "../domain/job-record.js";
import { initialDelayMs, type ApprovalDecision } from "../domain/governance.js";
import { withCallback } from "../domain/webhooks.js";
import type { AuditRecord } from "../schemas/audit.js";
import type { CallbackDelivery, JobErrorBody, JobStatusMonitor } from "../schemas/jobs.js";
import { jobOutcomeRecord } from "../audit/audit-entry.js";
import { QueueUnavailableError } from "../errors.js";
import { pageCursors, type PageCursors } from "../security/page-cursor.js";
import { decideApproval, gateState, releaseApproved, type DecideOutcome } from "./approval.js";
import { AuditTrail } from "./audit-trail.js";
import { JOB_FIELDS, snapshotFromHash, snapshotSource } from "./bullmq-layout.js";
import { ParsedJobs, type ParsedJob } from "./parsed-jobs.js";
import { JobControl, requestCancel, type CancelOutcome } from "./cancel.js";
import { IdempotencyKeys, type IdempotencyClaim } from "./idempotency.js";
import { FleetStore } from "./fleet-store.js";
import { RedisArmBudget, type ArmBudgetLimits } from "./arm-budget.js";
import type { ArmRequestKind } from "../azure/arm-pacing.js";
import { JobEventLog } from "./job-events.js";
import { listJobs, queueIndexJob, queueMaintainIndexes, type JobListFilters, type JobListPage } from "./job-index.js";
import { storeKeys, type StoreKeys } from "./keys.js";
import { ComplianceReports } from "./compliance-reports.js";
import { createChangesQueue, createWebhooksQueue, enqueueWebhook, exclusivityIdOf, type ChangesQueue, type WebhookType, type WebhooksQueue } from "./queue.js";
import { redisOutageLog } from "./outage-log.js";
import { RateCounters } from "./rate-counters.js";
import { withStoreScripts } from "./scripts.js";
import type { StoreContext } from "./store-context.js";
import { parseDeliveries, WebhookDeliveries } from "./webhook-deliveries.js";

export interface JobStoreOptions {
  redis: Redis;
  prefix: string;
  /** How long finished jobs are kept (CMK_JOB_RETENTION_HOURS). */
  retentionHours: number;
  /** First retry delay of webhook deliveries (CMK_WEBHOOK_BACKOFF_MS; default 10 s). */
  webhookBackoffMs?: number;
  /** Where audit entries are logged as they are written (for log shipping). */
  logger?: Pick<FastifyBaseLogger, "info" | "warn">;
}

export type AddOutcome =
  | { accepted: true; jobId: string; monitor: JobStatusMonitor; audited: boolean }
  /** The FHIR service has an unfinished job. */
  | { accepted: false; activeJobId: string }
  /** An earlier request holds the Idempotency-Key (`AddOptions.idempotency`): its record; nothing was added. */
  | { accepted: false; earlierRecord: string };

/** A job as the store reads it: its data, execution record and status monitor. */
export type StoredJob = ParsedJob;

export interface AddOptions {
  /** The job id to use (an Idempotency-Key record names it before the add); default a new UUID. */
  jobId?: string;
  /** The audit entry of the accepted request, written in the round trip after the add. */
  audit?: (monitor: JobStatusMonitor) => AuditRecord | undefined;
  /** The request's Idempotency-Key claim (its record names `jobId`): claimed in the add's own script, which adds only when the key is free. */
  idempotency?: IdempotencyClaim;
}

/**
 * The one owner of the service's Redis keys: BullMQ's queues, the job indexes, event logs, control
 * records, webhook deliveries, idempotency records, the audit trail, rate-limit counters and the page
 * cursors' key. Built once per process from a connection, the prefix and the retention; the API and the
 * worker share it, not its keys.
 */
export class JobStore implements StoreContext {
  readonly redis: Redis;
  readonly keys: StoreKeys;
  readonly retentionHours: number;
  readonly keepMs: number;
  readonly changes: ChangesQueue;
  readonly audit: AuditTrail;
  readonly events: JobEventLog;
  readonly idempotency: IdempotencyKeys;
  readonly deliveries: WebhookDeliveries;
  readonly pageCursors: PageCursors;
  /** Fleet rotations' own records and their children (fleet-store.ts). */
  readonly fleets: FleetStore;
  /** Compliance reports and the follow markers (compliance-reports.ts). */
  readonly compliance: ComplianceReports;
  private readonly webhookBackoffMs: number;
  private readonly logger: Pick<FastifyBaseLogger, "info" | "warn"> | undefined;
  private webhooksQueue: WebhooksQueue | undefined;
  private counters: RateCounters | undefined;
  private readonly parsedJobs = new ParsedJobs();
  /**
   * BullMQ's queues run on a duplicate of the store's connection. BullMQ defines its ~90 scripts on the
   * connection it is given, and ioredis copies every script defined on a connection onto each pipeline
   * made from it: on the store's connection (its own five scripts) a status read's pipeline stays cheap.
   */
  readonly queueConnection: Redis;

  constructor(options: JobStoreOptions) {
    this.redis = withStoreScripts(options.redis);
    this.keys = storeKeys(options.prefix);
    this.retentionHours = options.retentionHours;
    this.keepMs = Math.max(24, options.retentionHours) * 3_600_000;
    this.webhookBackoffMs = options.webhookBackoffMs ?? 10_000;
    this.logger = options.logger;
    this.queueConnection = options.redis.duplicate();
    this.changes = this.watched(createChangesQueue(this.queueConnection, options.prefix, options.retentionHours), "changes queue error");
    this.audit = new AuditTrail(this, options.logger);
    this.events = new JobEventLog(this);
    this.idempotency = new IdempotencyKeys(this, (jobId) => this.addedMonitor(jobId));
    this.deliveries = new WebhookDeliveries(this);
    this.pageCursors = pageCursors(() => this.pageCursorKey());
    this.fleets = new FleetStore(this);
    this.compliance = new ComplianceReports(this);
  }

  /**
   * Forgets how often a job held by this worker was taken over. BullMQ counts takeovers over the job's
   * whole life and fails it past maxStalledCount, to stop a job that kills every worker that runs it; a
   * job that saved progress since its takeover is not that, however many workers died under it (a fleet
   * parent lives as long as its fleet, through restarts and deploys).
   */
  async clearStalls(jobId: string): Promise<void> {
    // Held by the caller, so the job exists: HSET recreates nothing.
    await this.redis.hset(this.changes.toKey(jobId), JOB_FIELDS.stalledCount, "0");
  }

  /** ARM's per-subscription request budget, shared by every worker (arm-budget.ts). */
  armBudget(limits: Record<ArmRequestKind, ArmBudgetLimits>): RedisArmBudget {
    return new RedisArmBudget(this, limits);
  }

  /** The queue webhook deliveries go through (made on first use: only the worker and cancel queue them). */
  get webhooks(): WebhooksQueue {
    this.webhooksQueue ??= this.watched(createWebhooksQueue(this.queueConnection, this.keys.prefix), "webhooks queue error");
    return this.webhooksQueue;
  }

  /** The rate-limit counters (made on first use: only the API counts). */
  get rateCounters(): RateCounters {
    this.counters ??= new RateCounters(this);
    return this.counters;
  }

  /**
   * Adds a change job unless its FHIR service has an unfinished one (BullMQ's deduplication: the check and
   * the add are one script), then writes its list index entries and the request's audit entry in one more
   * round trip. A failure after the add does not undo the job: the worker indexes it again when it starts
   * it, and an entry not written here is the caller's to write (`audited` false). With an Idempotency-Key
   * claim, the claim and the add are one script (still one round trip).
   */
  async addChange(data: ChangeJobData, options: AddOptions = {}): Promise<AddOutcome> {
    const jobId = options.jobId ?? randomUUID();
    const { request } = data;
    const exclusive = !request.dryRun;
    const deduplicationId = exclusivityIdOf(request);
    // A change awaiting approval or its window is a delayed job: it holds the lock, not a worker slot.
    const delay = initialDelayMs(data, Date.now());
    const jobOptions: JobsOptions = {
      jobId,
      ...(exclusive ? { deduplication: { id: deduplicationId } } : {}),
      ...(delay > 0 ? { delay } : {}),
    };
    const added = options.idempotency
      ? await this.addClaimed(data, jobOptions, jobId, options.idempotency)
      : (await this.changes.add(request.operation, data, jobOptions)).id!;
    if (Array.isArray(added)) return { accepted: false, earlierRecord: added[0] };
    if (added !== jobId) return { accepted: false, activeJobId: added };
    // The job was just added: its monitor is known without reading it back (addedMonitor reads it again).
    const monitor = withCallback(newJobMonitor(jobId, data), data.request.callbackUrl, []);
    const pipeline = this.redis.pipeline();
    queueIndexJob(this, pipeline, jobId, data);
    const record = options.audit?.(monitor);
    if (record) this.audit.queueAppend(pipeline, record);
    const failed = await execAll(pipeline.exec()).then(
      () => undefined,
      (error: Error) => error,
    );
    if (failed) this.logger?.warn({ jobId, err: failed.message }, "new job not indexed or its audit entry not written");
    return { accepted: true, jobId, monitor, audited: record !== undefined && !failed };
  }

  /**
   * BullMQ's own add of the job, run inside the store's accept-with-key script (behind the claim): BullMQ
   * builds the job and its script's keys and arguments as `queue.add` does (its `addJobToTransaction`, kept
   * public for batching adds on a caller's transaction), and they are handed to the store's script.
   * Returns the job id BullMQ answers, or [the earlier record] when the key was held.
   */
  private async addClaimed(data: ChangeJobData, options: JobsOptions, jobId: string, claim: IdempotencyClaim): Promise<string | [string]> {
    const queue = this.changes;
    const job = new Job(queue, data.request.operation, data, { ...queue.jobsOpts, ...options, jobId }, jobId);
    const client = {
      runCommand: (command: string, args: Array<string | Buffer>) => {
        if (!command.startsWith("addStandardJob:")) throw new Error(`BullMQ chose ${command} to add a change job; the accept script wraps addStandardJob only`);
        return this.redis.cmkAcceptWithKey(...args.slice(0, 9), claim.key, ...args.slice(9), claim.record, claim.keepSeconds, jobId);
      },
    };
    const added = (await queue.backend.addJobToTransaction(client as never, job.asJSON(), jobId, { parentDependenciesKey: "" })) as unknown;
    return Array.isArray(added) ? [String(added[0])] : String(added);
  }

  /** The job's status monitor from its own record (one HGETALL, with its webhook deliveries, in one round trip). */
  async readMonitor(jobId: string): Promise<JobStatusMonitor | undefined> {
    return (await this.readMonitors([jobId]))[0];
  }

  /** Several jobs' monitors in one round trip; undefined for a job that does not exist. */
  async readMonitors(jobIds: readonly string[]): Promise<Array<JobStatusMonitor | undefined>> {
    return (await this.readJobs(jobIds)).map((job) => job?.monitor);
  }

  /** One job's data, execution record and monitor (undefined: no such job), as `readMonitor` reads them. */
  async readJob(jobId: string): Promise<StoredJob | undefined> {
    return (await this.readJobs([jobId]))[0];
  }

  /**
   * Jobs' data and monitors from their hashes and deliveries: two commands per job, one round trip. What
   * was read is parsed again only when it changed (parsed-jobs.ts); the results are frozen.
   * The commands are sent together but not as an ioredis pipeline: under a request-rate load everything
   * a pipeline holds (its commands and the 10 KB record it answers) survives young-generation GCs and is
   * promoted, and old space then grows by tens of MB per second (P1: 9 KB promoted per read, against
   * under 200 B this way; see README, Performance).
   */
  async readJobs(jobIds: readonly string[]): Promise<Array<StoredJob | undefined>> {
    if (jobIds.length === 0) return [];
    const results = await Promise.all(
      sentTogether(this.redis, () => jobIds.map((jobId) => Promise.all([this.redis.hgetall(this.changes.toKey(jobId)), this.redis.lrange(this.keys.callback(jobId), 0, -1)]))),
    );
    return jobIds.map((jobId, i) => {
      const [fields, texts] = results[i]!;
      return this.parsedJobs.get(
        jobId,
        [...snapshotSource(fields), ...texts],
        () => {
          const snapshot = snapshotFromHash(jobId, fields);
          if (!snapshot) return undefined;
          return {
            data: snapshot.data,
            progress: snapshot.progress,
            monitor: withCallback(toStatusMonitor(snapshot), snapshot.data.request.callbackUrl, parseDeliveries(texts)),
          };
        },
        // A job waiting for its approval or window says so by the clock, not by its record: not kept.
        (job) => job.progress !== undefined || job.monitor.status !== "NotStarted" || (!job.data.approval && !job.data.request.schedule),
      );
    });
  }

  /** The monitor the job had when it was added (what its 202 answered), or undefined when it is gone. */
  async addedMonitor(jobId: string): Promise<JobStatusMonitor | undefined> {
    const raw = await this.redis.hget(this.changes.toKey(jobId), JOB_FIELDS.data);
    const snapshot = raw === null ? undefined : snapshotFromHash(jobId, { [JOB_FIELDS.data]: raw });
    return snapshot && withCallback(newJobMonitor(jobId, snapshot.data), snapshot.data.request.callbackUrl, []);
  }

  /** One page of jobs, newest first (see job-index.ts). */
  listJobs(filters: JobListFilters, top: number, after: string | undefined, scope: { subscriptions?: readonly string[]; accept?(monitor: JobStatusMonitor): boolean } = {}): Promise<JobListPage> {
    return listJobs({ store: this, readMonitors: (ids) => this.readMonitors(ids), ...scope }, filters, top, after);
  }

  /** The API's side of cancel (cancel.ts); `error` ends the job with another code than Canceled (Rejected). */
  requestCancel(jobId: string, record: CancelRecord, error?: JobErrorBody): Promise<CancelOutcome> {
    return requestCancel(this, this.changes, jobId, record, error);
  }

  /** The first decision on a pending approval (approval.ts). */
  decideApproval(jobId: string, decision: ApprovalDecision): Promise<DecideOutcome> {
    return decideApproval(this, this.changes, jobId, decision);
  }

  /** Moves an approved job to its window's start (`delayMs` from now) or to the front of the queue. */
  releaseApproved(jobId: string, delayMs: number): Promise<boolean> {
    return releaseApproved(this.changes, jobId, delayMs);
  }

  /** The decision and whether a write was claimed, as a worker's gate needs them. */
  gateState(jobId: string): Promise<{ decision: ApprovalDecision | undefined; wrote: boolean }> {
    return gateState(this, this.changes, jobId);
  }

  /** The worker's side of cancel for one job (cancel.ts). */
  control(jobId: string): JobControl {
    return new JobControl(this, jobId);
  }

  /** Writes the job's list index entries (idempotent): a worker does when it takes a job. */
  async indexJob(jobId: string, data: ChangeJobData): Promise<void> {
    const pipeline = this.redis.pipeline();
    queueIndexJob(this, pipeline, jobId, data);
    await execAll(pipeline.exec());
  }

  /**
   * What follows the end of a job, wherever it ended (a worker, or the API canceling a waiting job): its
   * final monitor in the event log, its audit entry and the upkeep of its indexes in one round trip, and
   * its webhook queued (once per job). Returns the final monitor (undefined: the job is gone).
   */
  async recordJobEnd(jobId: string, logger?: Pick<FastifyBaseLogger, "info">): Promise<JobStatusMonitor | undefined> {
    const [job] = await this.readJobs([jobId]);
    if (!job) return undefined;
    const { monitor, data } = job;
    const pipeline = this.redis.pipeline();
    this.events.queueAppend(pipeline, monitor);
    const record = jobOutcomeRecord(monitor, new Date());
    if (record) this.audit.queueAppend(pipeline, record, logger);
    queueMaintainIndexes(this, pipeline, jobId, data);
    const url = data.request.callbackUrl;
    await Promise.all([execAll(pipeline.exec()), url ? this.enqueueWebhook(monitor, url) : undefined]);
    return monitor;
  }

  /** Queues the delivery of a finished job's monitor to its callbackUrl (or another of its webhooks, by `type`); once per job and type. */
  enqueueWebhook(monitor: JobStatusMonitor, url: string, type?: WebhookType): Promise<void> {
    return enqueueWebhook(this.webhooks, monitor, url, { backoffMs: this.webhookBackoffMs, keepSeconds: this.keepMs / 1000, ...(type ? { type } : {}) });
  }

  recordDelivery(jobId: string, delivery: CallbackDelivery): Promise<void> {
    return this.deliveries.record(jobId, delivery);
  }

  /** The AES key of continuation tokens: made once per deployment (SET NX), read once per process. */
  private async pageCursorKey(): Promise<Buffer> {
    const name = this.keys.pageCursorKey;
    const stored = await this.redis
      .set(name, randomBytes(32).toString("base64"), "NX")
      .then(() => this.redis.get(name))
      .catch(() => {
        throw new QueueUnavailableError();
      });
    const bytes = stored ? Buffer.from(stored, "base64") : undefined;
    if (bytes?.length !== 32) throw new Error(`${name} does not hold a 32-byte key`);
    return bytes;
  }

  /** A queue's connection errors go to the outage log (an EventEmitter's unheard 'error' would throw). */
  private watched<T extends ChangesQueue | WebhooksQueue>(queue: T, what: string): T {
    (queue as ChangesQueue).on("error", (error) => {
      if (this.logger) redisOutageLog.error(this.logger, error, what);
    });
    return queue;
  }

  /** Closes the store's queues, their connection and timers; the store's connection is its owner's to close. */
  async close(): Promise<void> {
    this.counters?.close();
    await Promise.all([this.changes.close(), this.webhooksQueue?.close()].map((closing) => closing?.catch(() => undefined)));
    this.queueConnection.disconnect();
  }
}

/** A pipeline's results, or its first error. */
async function execAll(results: Promise<Array<[Error | null, unknown]> | null>): Promise<void> {
  const settled = await results;
  const failed = settled?.find(([error]) => error);
  if (!settled || failed) throw failed?.[0] ?? new Error("pipeline discarded");
}

export function createJobStore(options: JobStoreOptions): JobStore {
  return new JobStore(options);
}

/**
 * Runs `send` (commands issued without awaiting each other) with the connection's socket corked, so they
 * leave in one write as a pipeline's would. Cluster connections and ones not ready yet (commands wait
 * in ioredis' offline queue) send as they are.
 */
function sentTogether<T>(redis: Redis, send: () => T): T {
  const socket = redis.status === "ready" ? (redis as unknown as { stream?: { cork?(): void; uncork(): void } }).stream : undefined;
  if (!socket?.cork) return send();
  socket.cork();
  try {
    return send();
  } finally {
    process.nextTick(() => socket.uncork());
  }
}
