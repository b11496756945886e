import type { ChainableCommander, Redis } from "ioredis";
import { canonicalArmId } from "../domain/arm-ids.js";
import type { ChangeJobData } from "../domain/job-record.js";
import type { ApprovalState, JobStatus, JobStatusMonitor } from "../schemas/jobs.js";
import { invalidContinuationToken } from "../security/page-cursor.js";
import { subscriptionOfArmId } from "../security/subscription-scope.js";
import type { StoreContext } from "./store-context.js";

/**
 * List indexes for `GET /v1/jobs`.
 *
 * Every job is in `{prefix}:jobs:idx:all` and in one sorted set per FHIR service, per ticket id and per
 * subscription (for callers limited to some subscriptions, so their pages cost what anyone's do), written
 * in the round trip right after the job is added (and again, idempotently, when a worker starts it, in
 * case the API died in between). Operation has four values: it is checked on read, like status. Trimming
 * and expiry are the job end's business (`maintain`), not the accept path's. All members have score 0
 * and read `<inverted creation ms, 13 digits>:<jobId>`, so the sets are ordered newest first by
 * creation time, ties broken by job id: a strict total order, and a page is one ZRANGE BYLEX from the
 * last member shown (the position a continuation token seals, see page-cursor.ts), whatever the number of
 * jobs stored. A caller limited to several subscriptions walks their indexes merged.
 *
 * Status is NOT indexed: it changes inside BullMQ's own scripts, where no index could be updated in the
 * same step. It is checked on read against the stored job (read anyway to answer), walking the most
 * selective index in batches and skipping what does not match. A page therefore costs at most
 * MAX_SCAN job reads; when a selective filter finds fewer than `top` jobs within that budget, the page
 * is shorter (possibly empty) and still carries a nextLink. Paging stays exact when statuses change
 * between pages: the token is a position in creation order, so each job is considered exactly once,
 * and shown when it matches at the moment its page is read.
 *
 * Entries whose job BullMQ has removed (retention) are dropped from the index being walked when met;
 * each job's end trims entries older than twice the retention, and per-value sets expire when unused.
 */

const INVERTED_BASE = 9_999_999_999_999;
/** Jobs read per page at most (candidates that did not match included). */
export const MAX_SCAN = 500;
const MEMBER = /^\d{13}:[A-Za-z0-9-]{1,100}$/;

export function indexMember(createdMs: number, jobId: string): string {
  return `${String(INVERTED_BASE - createdMs).padStart(13, "0")}:${jobId}`;
}

function jobIdOf(member: string): string {
  return member.slice(member.indexOf(":") + 1);
}

/**
 * The indexes a job is in: every job's, then its FHIR service's, ticket's, subscription's and (a fleet
 * rotation's child) parent's. A fleet rotation names no service: it is in the index of the first of the
 * subscriptions it is limited to (a caller who may see it may use them all, and walks that one), or in
 * none when it covers every subscription.
 */
function indexKeysOf(store: StoreContext, data: ChangeJobData): { all: string; values: string[] } {
  const { keys } = store;
  const { fhirServiceId, ticket } = data.request;
  const values = fhirServiceId ? [keys.indexFhirService(fhirServiceId)] : [];
  if (ticket) values.push(keys.indexTicket(ticket.id));
  const subscriptionId = fhirServiceId ? subscriptionOfArmId(fhirServiceId) : [...(data.scope ?? [])].sort()[0]?.toLowerCase();
  if (subscriptionId) values.push(keys.indexSubscription(subscriptionId));
  if (data.fleet) values.push(keys.indexParent(data.fleet.parentJobId));
  return { all: keys.indexAll, values };
}

function memberOf(jobId: string, data: ChangeJobData): string {
  const created = Date.parse(data.createdDateTime);
  return indexMember(Number.isFinite(created) ? created : Date.now(), jobId);
}

/** Queues the job's index entries on `pipeline` (idempotent): one ZADD per index. */
export function queueIndexJob(store: StoreContext, pipeline: ChainableCommander, jobId: string, data: ChangeJobData): void {
  const member = memberOf(jobId, data);
  const { all, values } = indexKeysOf(store, data);
  for (const key of [all, ...values]) pipeline.zadd(key, 0, member);
}

/**
 * Queues the job's entries again with the upkeep of its indexes: entries older than twice the retention
 * trimmed, per-value sets set to expire when unused.
 */
export function queueMaintainIndexes(store: StoreContext, pipeline: ChainableCommander, jobId: string, data: ChangeJobData): void {
  const keepMs = 2 * store.keepMs;
  const cutoff = `[${String(INVERTED_BASE - (Date.now() - keepMs)).padStart(13, "0")}`;
  const member = memberOf(jobId, data);
  const { all, values } = indexKeysOf(store, data);
  for (const key of [all, ...values]) {
    pipeline.zadd(key, 0, member);
    pipeline.zremrangebylex(key, cutoff, "+");
  }
  for (const key of values) pipeline.pexpire(key, keepMs);
}

export interface JobListFilters {
  status?: JobStatus | undefined;
  operation?: string | undefined;
  fhirServiceId?: string | undefined;
  ticketId?: string | undefined;
  /** Checked on read, like status (a decision changes it). */
  approvalState?: ApprovalState | undefined;
  parentJobId?: string | undefined;
}

export interface JobListPage {
  value: JobStatusMonitor[];
  /** The last position considered, when more may follow (the route seals it into a continuation token). */
  after?: string;
}

export interface JobListSource {
  store: StoreContext;
  /** The stored jobs' monitors, in order; undefined for a job that no longer exists. */
  readMonitors(jobIds: readonly string[]): Promise<Array<JobStatusMonitor | undefined>>;
  /** Extra condition (e.g. the caller's subscription allow-list). */
  accept?(monitor: JobStatusMonitor): boolean;
  /** The caller's subscription allow-list (lower case): its jobs are walked through their own indexes. */
  subscriptions?: readonly string[] | undefined;
}

function matches(monitor: JobStatusMonitor, filters: JobListFilters): boolean {
  if (filters.status && monitor.status !== filters.status) return false;
  if (filters.operation && monitor.operation !== filters.operation) return false;
  if (filters.fhirServiceId && (!monitor.fhirServiceId || canonicalArmId(monitor.fhirServiceId) !== canonicalArmId(filters.fhirServiceId))) return false;
  if (filters.ticketId && monitor.ticket?.id !== filters.ticketId) return false;
  if (filters.approvalState && monitor.approval?.state !== filters.approvalState) return false;
  if (filters.parentJobId && monitor.parentJobId?.toLowerCase() !== filters.parentJobId.toLowerCase()) return false;
  return true;
}

/**
 * The next `count` members after `after` of one index, or of several merged (members are unique to one
 * subscription's index, and all sort the same way); with the index each came from.
 */
async function nextMembers(redis: Redis, indexes: string[], after: string | undefined, count: number): Promise<Array<{ member: string; index: string }>> {
  const from = after ? `(${after}` : "-";
  const lists = await Promise.all(indexes.map((index) => redis.zrange(index, from, "+", "BYLEX", "LIMIT", 0, count)));
  return lists
    .flatMap((members, i) => members.map((member) => ({ member, index: indexes[i]! })))
    .sort((a, b) => (a.member < b.member ? -1 : a.member > b.member ? 1 : 0))
    .slice(0, count);
}

/** One page of jobs, newest first, after the position `after` (from a continuation token). */
export async function listJobs(source: JobListSource, filters: JobListFilters, top: number, after?: string): Promise<JobListPage> {
  if (after !== undefined && !MEMBER.test(after)) throw invalidContinuationToken();
  const { keys, redis } = source.store;

  // Walk the smallest index (or, for a scoped caller, set of per-subscription indexes) that applies; the
  // other filters are checked on each job.
  const candidates = [
    filters.fhirServiceId ? [keys.indexFhirService(filters.fhirServiceId)] : undefined,
    filters.ticketId ? [keys.indexTicket(filters.ticketId)] : undefined,
    filters.parentJobId ? [keys.indexParent(filters.parentJobId)] : undefined,
    source.subscriptions ? source.subscriptions.map((subscriptionId) => keys.indexSubscription(subscriptionId)) : undefined,
  ].filter((group): group is string[] => group !== undefined);
  let indexes = candidates[0] ?? [keys.indexAll];
  if (candidates.length > 1) {
    const sizes = await Promise.all(candidates.map(async (group) => (await Promise.all(group.map((key) => redis.zcard(key)))).reduce((sum, size) => sum + size, 0)));
    indexes = candidates[sizes.indexOf(Math.min(...sizes))]!;
  }
  // Every member of the walked index matches when it is the only condition: read no more than a page.
  const dense = !filters.status && !filters.operation && !filters.approvalState && candidates.length <= 1;
  const batchSize = dense ? Math.min(100, top + 1) : 100;

  const value: JobStatusMonitor[] = [];
  let scanned = 0;
  for (;;) {
    const batch = await nextMembers(redis, indexes, after, batchSize);
    if (batch.length === 0) return { value };
    const members = batch.map((entry) => entry.member);
    const monitors = await source.readMonitors(members.map(jobIdOf));
    const gone: Array<{ member: string; index: string }> = [];
    let full = false;
    for (let i = 0; i < members.length; i += 1) {
      if (value.length === top) {
        full = true;
        break;
      }
      const member = members[i]!;
      const monitor = monitors[i];
      after = member;
      scanned += 1;
      if (!monitor) gone.push(batch[i]!);
      else if (matches(monitor, filters) && (source.accept?.(monitor) ?? true)) value.push(monitor);
    }
    if (gone.length > 0) {
      const multi = redis.multi();
      for (const entry of gone) multi.zrem(entry.index, entry.member);
      await multi.exec();
    }
    // A member after the last one shown exists: there is a next page.
    if (full) return { value, after: after! };
    if (batch.length < batchSize) return { value };
    if (value.length === top) {
      const more = await nextMembers(redis, indexes, after, 1);
      return more.length > 0 ? { value, after: after! } : { value };
    }
    if (scanned >= MAX_SCAN) return { value, after: after! };
  }
}
