import type { Redis } from "ioredis";
import type { Job } from "bullmq";
import { endStep, newProgress, type ChangeJobData, type JobProgress, type StepPlan } from "../domain/job-record.js";
import type { Operation } from "../schemas/change-requests.js";
import type { JobErrorBody } from "../schemas/jobs.js";
import type { AzureAdapters } from "../azure/adapters.js";
import { SET_KEY_STEPS } from "../worker/operations/set-key.js";
import { CREATE_SERVICE_STEPS } from "../worker/operations/create-service.js";
import { ROTATE_KEY_STEPS } from "../worker/operations/rotate-key.js";
import { RECOVER_KEY_ACCESS_STEPS } from "../worker/operations/recover-key-access.js";
import type { ChangesQueue } from "./queue.js";
import { jobKeys } from "./keys.js";
import { RedisScript } from "./redis-script.js";

/**
 * Cancellation, race-free with the worker.
 *
 * Each job has a small control hash beside it (`{prefix}:jobs:{id}:control`):
 * - `cancel`: who asked for the cancel, and when;
 * - `committed`: the step that began writing to Azure (or how the job ended).
 *
 * Two Lua scripts decide between them atomically. The API's CANCEL script refuses when `committed` is
 * set, and otherwise either takes a job that no worker holds (waiting, or delayed between retries) out
 * of BullMQ's waiting structures and moves it to `failed` with the Canceled record in one step, or, for a
 * job a worker holds, sets `cancel`. The worker's CLAIM script, run right before every Azure write (and
 * before a job ends), refuses when `cancel` is set and otherwise sets `committed`. So a cancel that was
 * accepted is always seen before any write, and a write that was claimed always makes cancel answer 409.
 */

export interface CancelRecord {
  by: string;
  dateTime: string;
}

/** Thrown inside the worker when a cancel was asked for; JobSteps turns it into the Canceled ending. */
export class JobCanceledError extends Error {
  constructor(readonly record: CancelRecord) {
    super(`Canceled by ${record.by} at ${record.dateTime}`);
    this.name = "JobCanceledError";
  }
}

export function canceledError(record: CancelRecord, fhirServiceId: string, detail = "no Azure write was sent"): JobErrorBody {
  return { code: "Canceled", message: `Canceled by ${record.by} at ${record.dateTime}; ${detail}.`, target: fhirServiceId };
}

/** The steps an operation runs (used to show a job canceled before it started). */
export function planFor(operation: Operation): readonly StepPlan[] {
  switch (operation) {
    case "SetKey":
      return SET_KEY_STEPS;
    case "CreateService":
      return CREATE_SERVICE_STEPS;
    case "RotateKey":
      return ROTATE_KEY_STEPS;
    case "RecoverKeyAccess":
      return RECOVER_KEY_ACCESS_STEPS;
    default:
      return [];
  }
}

/** The record a job has once canceled: unfinished steps Skipped, `error.code` Canceled. */
export function canceledProgress(progress: JobProgress | undefined, plan: readonly StepPlan[], record: CancelRecord, fhirServiceId: string, now: Date): JobProgress {
  let next = progress ?? newProgress(plan, now);
  for (const step of next.steps) {
    if (step.status === "NotStarted") next = endStep(next, step.name, { status: "Skipped", message: "Canceled before this step ran." }, now);
    else if (step.status === "Running") next = endStep(next, step.name, { status: "Skipped", message: "Canceled before this step finished; it wrote nothing." }, now);
  }
  const lastRun = [...next.steps].reverse().find((step) => step.startedDateTime !== undefined);
  return { ...next, currentStep: lastRun?.name ?? next.currentStep, error: canceledError(record, fhirServiceId), lastUpdatedDateTime: now.toISOString() };
}

const CLAIM = new RedisScript(`
local cancel = redis.call('HGET', KEYS[1], 'cancel')
if cancel then return {'canceled', cancel} end
redis.call('HSET', KEYS[1], 'committed', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {'ok', ''}
`);

/** The worker's side of one job's control record. */
export class JobControl {
  private readonly key: string;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    jobId: string,
    private readonly ttlMs: number,
  ) {
    this.key = jobKeys(prefix).control(jobId);
  }

  /** Throws JobCanceledError when a cancel was asked for. */
  async throwIfCanceled(): Promise<void> {
    const cancel = await this.redis.hget(this.key, "cancel");
    if (cancel) throw new JobCanceledError(parseRecord(cancel));
  }

  /**
   * Atomically: throws JobCanceledError when a cancel was asked for; otherwise records that `what` (a step
   * about to write, or how the job ends) is under way, after which cancel answers 409.
   */
  async claim(what: string): Promise<void> {
    const [outcome, cancel] = (await CLAIM.run(this.redis, [this.key], [what, this.ttlMs])) as [string, string];
    if (outcome === "canceled") throw new JobCanceledError(parseRecord(cancel));
  }
}

function parseRecord(text: string): CancelRecord {
  try {
    const parsed = JSON.parse(text) as Partial<CancelRecord>;
    return { by: String(parsed.by ?? "unknown"), dateTime: String(parsed.dateTime ?? new Date().toISOString()) };
  } catch {
    return { by: "unknown", dateTime: new Date().toISOString() };
  }
}

/**
 * Adapter methods that only read. Every other method of the Azure adapters counts as a write and is
 * guarded, so a write method added later is guarded without anyone remembering to.
 */
const READ_METHODS: Record<string, ReadonlySet<string>> = {
  fhirServices: new Set(["get", "read", "workspace", "waitUntilSettled", "follow"]),
  keyVault: new Set(["keyFacts", "latestVersionUrl", "deletedKey"]),
  vaults: new Set(["vaultFacts"]),
  identities: new Set(["userAssignedIdentity"]),
  roleAssignments: new Set(["forPrincipal"]),
  fhirDataPlane: new Set(["metadataStatus"]),
};

/** The adapters with `beforeWrite` run (and awaited) before any write method is called. */
export function guardAzureWrites<T extends AzureAdapters>(deps: T, beforeWrite: () => Promise<void>): T {
  const guarded: Record<string, unknown> = { ...(deps as object) };
  for (const [name, adapter] of Object.entries(deps)) {
    if (typeof adapter !== "object" || adapter === null || name === "cloud") continue;
    const reads = READ_METHODS[name] ?? new Set<string>();
    guarded[name] = new Proxy(adapter as object, {
      get(target, property, receiver) {
        const value: unknown = Reflect.get(target, property, receiver);
        if (typeof value !== "function" || typeof property !== "string" || reads.has(property)) return value;
        return async (...args: unknown[]) => {
          await beforeWrite();
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
  }
  return guarded as T;
}

const CANCEL = new RedisScript(`
local jobKey, control = KEYS[1], KEYS[2]
local jobId = ARGV[1]
if redis.call('EXISTS', jobKey) == 0 then return {'missing', ''} end
if redis.call('ZSCORE', KEYS[7], jobId) or redis.call('ZSCORE', KEYS[8], jobId) then return {'finished', ''} end
local committed = redis.call('HGET', control, 'committed')
if committed then return {'committed', committed} end
local waiting = redis.call('LPOS', KEYS[3], jobId) or redis.call('LPOS', KEYS[4], jobId)
  or redis.call('ZSCORE', KEYS[5], jobId) or redis.call('ZSCORE', KEYS[6], jobId)
if not waiting then
  if redis.call('HSETNX', control, 'cancel', ARGV[6]) == 0 then return {'already', ''} end
  redis.call('PEXPIRE', control, ARGV[8])
  return {'flagged', ''}
end
local current = redis.call('HGET', jobKey, 'progress') or ''
if current ~= ARGV[2] then return {'changed', ''} end
redis.call('LREM', KEYS[3], 0, jobId)
redis.call('LREM', KEYS[4], 0, jobId)
redis.call('ZREM', KEYS[5], jobId)
redis.call('ZREM', KEYS[6], jobId)
redis.call('HSET', jobKey, 'progress', ARGV[3], 'failedReason', ARGV[5], 'finishedOn', ARGV[4])
redis.call('ZADD', KEYS[7], ARGV[4], jobId)
local deid = redis.call('HGET', jobKey, 'deid')
if deid then
  local dedupKey = ARGV[7] .. 'de:' .. deid
  if redis.call('GET', dedupKey) == jobId then redis.call('DEL', dedupKey) end
end
redis.call('HSET', control, 'cancel', ARGV[6], 'committed', 'Canceled')
redis.call('PEXPIRE', control, ARGV[8])
redis.call('XADD', KEYS[9], '*', 'event', 'failed', 'jobId', jobId, 'failedReason', ARGV[5], 'prev', 'waiting')
return {'finalized', ''}
`);

export type CancelOutcome =
  /** The job was waiting (or between retries) and is Canceled now. */
  | { kind: "canceled"; job: Job<ChangeJobData> }
  /** A worker holds the job: it ends Canceled at its next step or before its next write. */
  | { kind: "requested" }
  | { kind: "alreadyRequested" }
  | { kind: "notFound" }
  | { kind: "ended"; job: Job<ChangeJobData> }
  /** A step began writing to Azure (or the job is finishing): too late. */
  | { kind: "committed"; step: string };

/** The API's side: cancels `jobId` if it has not begun writing. */
export async function requestCancel(queue: ChangesQueue, redis: Redis, prefix: string, jobId: string, record: CancelRecord, retentionHours: number): Promise<CancelOutcome> {
  const keys = queue.keys;
  const controlKey = jobKeys(prefix).control(jobId);
  const ttlMs = Math.max(24, retentionHours) * 3_600_000;
  for (let round = 0; round < 10; round += 1) {
    const job = await queue.getJob(jobId);
    if (!job) return { kind: "notFound" };
    const raw = (await redis.hget(queue.toKey(jobId), "progress")) ?? "";
    const saved = parseProgress(raw);
    const now = new Date();
    const progress = canceledProgress(saved, planFor(job.data.request.operation), record, job.data.request.fhirServiceId, now);
    const [outcome, detail] = (await CANCEL.run(
      redis,
      [queue.toKey(jobId), controlKey, keys.wait!, keys.paused!, keys.delayed!, keys.prioritized!, keys.failed!, keys.completed!, keys.events!],
      [jobId, raw, JSON.stringify(progress), now.getTime(), `Canceled: ${progress.error!.message}`, JSON.stringify(record), queue.toKey(""), ttlMs],
    )) as [string, string];
    switch (outcome) {
      case "missing":
        return { kind: "notFound" };
      case "finished":
        return { kind: "ended", job };
      case "committed":
        return { kind: "committed", step: detail };
      case "flagged":
        return { kind: "requested" };
      case "already":
        return { kind: "alreadyRequested" };
      case "finalized":
        return { kind: "canceled", job: (await queue.getJob(jobId)) ?? job };
      default:
      // "changed": a worker moved the job between our read and the script; look again.
    }
  }
  return { kind: "requested" };
}

function parseProgress(raw: string): JobProgress | undefined {
  if (raw === "") return undefined;
  try {
    const parsed = JSON.parse(raw) as unknown;
    return typeof parsed === "object" && parsed !== null && Array.isArray((parsed as JobProgress).steps) ? (parsed as JobProgress) : undefined;
  } catch {
    return undefined;
  }
}
