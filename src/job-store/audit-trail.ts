import type { ChainableCommander } from "ioredis";
import type { FastifyBaseLogger } from "fastify";
import type { AuditEntry, AuditOutcome, AuditRecord } from "../schemas/audit.js";
import { canonicalArmId } from "../domain/arm-ids.js";
import { subscriptionOfArmId } from "../security/subscription-scope.js";
import type { StoreContext } from "./store-context.js";

/**
 * The audit trail: one append-only Redis stream per deployment, `{CMK_QUEUE_PREFIX}:audit`. Entries are
 * kept 400 days (longer than any job, at most 365 days) and the stream is capped at about 100,000
 * entries so a flood of refused requests cannot exhaust Redis (which must not evict BullMQ's keys): each
 * XADD caps the length itself; age is trimmed at most once a minute per process, with an append.
 * Only authenticated callers' requests and job outcomes go there; the summaries of what anyone can send
 * (RefusedSummary: 401s and 429s, refusal-summary.ts) have a stream and cap of their own,
 * `{CMK_QUEUE_PREFIX}:audit:summaries`, so they never push a real entry out.
 * Every entry is also logged, for log shipping to a SIEM that keeps it longer.
 */
export const AUDIT_RETENTION_DAYS = 400;
export const AUDIT_MAX_ENTRIES = 100_000;
export const AUDIT_SUMMARY_MAX_ENTRIES = 10_000;
/** Stream entries one query reads at most; a page may come back short, with a nextLink to go on. */
const MAX_SCAN = 5000;
const BATCH = 200;
const MAX_STREAM_ID_PART = 18_446_744_073_709_551_615n;
/** How often a process trims the streams by age. */
const TRIM_PERIOD_MS = 60_000;

/** A stream id Redis accepts (both parts fit 64 bits): the only continuation tokens queried. */
export function isStreamId(text: string): boolean {
  const match = /^(\d{1,20})-(\d{1,20})$/.exec(text);
  return !!match && BigInt(match[1]!) <= MAX_STREAM_ID_PART && BigInt(match[2]!) <= MAX_STREAM_ID_PART;
}

export interface AuditFilter {
  fhirServiceId?: string | undefined;
  /** Part of the principal name, case-insensitive. */
  principal?: string | undefined;
  outcome?: AuditOutcome | undefined;
  ticketId?: string | undefined;
  from?: Date | undefined;
  to?: Date | undefined;
  /** Only entries about these (lower-case) subscriptions: the reader's allow-list; undefined: all. */
  subscriptions?: readonly string[] | undefined;
}

function matches(entry: AuditEntry, filter: AuditFilter): boolean {
  if (filter.outcome && entry.outcome !== filter.outcome) return false;
  if (filter.ticketId && entry.ticket?.id !== filter.ticketId) return false;
  if (filter.principal && !entry.principal.name.toLowerCase().includes(filter.principal.toLowerCase())) return false;
  if (filter.fhirServiceId && (!entry.fhirServiceId || canonicalArmId(entry.fhirServiceId) !== canonicalArmId(filter.fhirServiceId))) return false;
  if (filter.subscriptions) {
    const subscription = subscriptionOfArmId(entry.fhirServiceId);
    if (!subscription || !filter.subscriptions.includes(subscription)) return false;
  }
  return true;
}

function parseEntry(id: string, fields: string[]): AuditEntry | undefined {
  const index = fields.indexOf("entry");
  if (index < 0 || index + 1 >= fields.length) return undefined;
  try {
    return { id, ...(JSON.parse(fields[index + 1]!) as AuditRecord) };
  } catch {
    return undefined;
  }
}

/** Stream ids are milliseconds since the epoch: a time filter is a range of ids. */
function streamTime(date: Date): string {
  return String(Math.max(0, date.getTime()));
}

/** Summaries go to their own stream; everything else to the trail. */
function streamOf(outcome: AuditOutcome | undefined): { summaries: boolean; maxEntries: number } {
  return outcome === "RefusedSummary" ? { summaries: true, maxEntries: AUDIT_SUMMARY_MAX_ENTRIES } : { summaries: false, maxEntries: AUDIT_MAX_ENTRIES };
}

export class AuditTrail {
  readonly key: string;
  readonly summaryKey: string;
  private trimmedAt: number;

  constructor(
    private readonly store: StoreContext,
    private readonly logger?: Pick<FastifyBaseLogger, "info">,
    private readonly now: () => number = Date.now,
  ) {
    this.key = store.keys.audit;
    this.summaryKey = store.keys.auditSummaries;
    this.trimmedAt = now();
  }

  /** Appends one entry; returns its id. */
  async append(record: AuditRecord): Promise<string> {
    return (await this.appendAll([record]))[0]!;
  }

  /** Appends entries (in one round trip), each to its stream; returns their ids. */
  async appendAll(records: readonly AuditRecord[]): Promise<string[]> {
    if (records.length === 0) return [];
    const pipeline = this.store.redis.pipeline();
    const positions = records.map((record) => {
      const position = pipeline.length;
      this.queueAppend(pipeline, record);
      return position;
    });
    const results = (await pipeline.exec()) ?? [];
    return positions.map((position) => {
      const added = results[position];
      if (!added || added[0]) throw added?.[0] ?? new Error("audit append was discarded");
      return added[1] as string;
    });
  }

  /**
   * Queues one entry on `pipeline` (the round trip that accepts a change, or ends a job, carries its
   * entry), and once a minute the trim by age after it. Every entry is also logged.
   */
  queueAppend(pipeline: ChainableCommander, record: AuditRecord, logger = this.logger): void {
    logger?.info({ audit: record }, "audit");
    const summaries = streamOf(record.outcome).summaries;
    pipeline.xadd(summaries ? this.summaryKey : this.key, "MAXLEN", "~", summaries ? AUDIT_SUMMARY_MAX_ENTRIES : AUDIT_MAX_ENTRIES, "*", "entry", JSON.stringify(record));
    const now = this.now();
    if (now - this.trimmedAt < TRIM_PERIOD_MS) return;
    this.trimmedAt = now;
    const oldest = String(Math.max(0, now - AUDIT_RETENTION_DAYS * 86_400_000));
    pipeline.xtrim(this.key, "MINID", "~", oldest);
    pipeline.xtrim(this.summaryKey, "MINID", "~", oldest);
  }

  /**
   * Newest first, `top` at most, starting after `continuationToken`. The returned token is set when
   * older entries may match (the stream is read in batches; at most MAX_SCAN entries per call).
   */
  async query(filter: AuditFilter, top: number, continuationToken?: string): Promise<{ entries: AuditEntry[]; continuationToken?: string }> {
    const key = streamOf(filter.outcome).summaries ? this.summaryKey : this.key;
    let end = continuationToken ? `(${continuationToken}` : filter.to ? streamTime(filter.to) : "+";
    const start = filter.from ? streamTime(filter.from) : "-";
    const entries: AuditEntry[] = [];
    let scanned = 0;
    while (scanned < MAX_SCAN) {
      const batch = await this.store.redis.xrevrange(key, end, start, "COUNT", BATCH);
      for (const [id, fields] of batch) {
        scanned += 1;
        const entry = parseEntry(id, fields);
        if (!entry || !matches(entry, filter)) continue;
        // One match more than a page: there is a next page, and it starts after the last entry shown.
        if (entries.length === top) return { entries, continuationToken: entries[top - 1]!.id };
        entries.push(entry);
      }
      if (batch.length < BATCH) return { entries };
      end = `(${batch[batch.length - 1]![0]}`;
    }
    return { entries, continuationToken: end.slice(1) };
  }
}
