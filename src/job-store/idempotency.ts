import { createHash } from "node:crypto";
import type { JobStatusMonitor } from "../schemas/jobs.js";
import type { StoreContext } from "./store-context.js";

/**
 * Idempotency-Key for change requests: the first accepted answer is returned to every retry with the same
 * key and body (for at least 24 hours); the same key with another body is refused.
 *
 * The record is written once, with the job's add and in the same script (job-store.ts, scripts/accept-
 * with-key-10.lua), and names the job: `SET NX GET` claims the key and reads what an earlier request left
 * in one command, BullMQ's add follows only when the key was free, and no second write follows. An add
 * refused (the FHIR service has an unfinished job) gives the claim back in the same script. A retry finds the job and answers what the first request answered (the new job's monitor, a
 * pure function of the job's data). A record whose job does not exist is a request still adding it, or
 * one that died before it could: after PENDING_MS it is taken over (a compare-and-set, so of two retries
 * one wins). A request that was refused releases the key, so a retry is judged afresh.
 */

export type Reservation =
  | { kind: "reserved" }
  /** The first request's job: answer what it answered (the job's monitor as it was added). */
  | { kind: "replay"; monitor: JobStatusMonitor }
  | { kind: "mismatch" }
  | { kind: "inProgress" };

/**
 * How long a record without its job counts as a request still adding it. The API gives up on Redis after
 * 2.5 s, so a record older than this belongs to a request that failed (and, in an outage, could not
 * release it).
 */
export const PENDING_MS = 5000;

/** A request's claim on its Idempotency-Key: the record to write (naming its job) and where. */
export interface IdempotencyClaim {
  key: string;
  record: string;
  keepSeconds: number;
  fingerprint: string;
}

interface IdempotencyRecord {
  fingerprint: string;
  jobId: string;
  /** When the key was claimed (ms). */
  at: number;
}

/** What the version before kept (during a rolling upgrade its records are still read): a claim, then the answer. */
interface EarlierRecord {
  pending?: true;
  body?: JobStatusMonitor;
}

/** JSON with sorted keys, so the same body in another key order has the same fingerprint. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

export function fingerprint(body: unknown): string {
  return createHash("sha256").update(canonicalJson(body)).digest("hex");
}

export class IdempotencyKeys {
  constructor(
    private readonly store: StoreContext,
    /** The monitor the job a record names had when it was added; undefined while it does not exist. */
    private readonly addedMonitor: (jobId: string) => Promise<JobStatusMonitor | undefined>,
    private readonly now: () => number = Date.now,
  ) {}

  private key(principal: string, idempotencyKey: string): string {
    return this.store.keys.idempotency(createHash("sha256").update(`${principal}\n${idempotencyKey}`).digest("hex"));
  }

  private get keepSeconds(): number {
    return Math.ceil(this.store.keepMs / 1000);
  }

  /** What claims the key for a request about to add job `jobId`: with the add, in one script (job-store.ts). */
  claim(principal: string, idempotencyKey: string, bodyFingerprint: string, jobId: string): IdempotencyClaim {
    return {
      key: this.key(principal, idempotencyKey),
      record: JSON.stringify({ fingerprint: bodyFingerprint, jobId, at: this.now() } satisfies IdempotencyRecord),
      keepSeconds: this.keepSeconds,
      fingerprint: bodyFingerprint,
    };
  }

  /** Claims the key for a request about to add job `jobId`, or says what an earlier request with it left. */
  async reserve(principal: string, idempotencyKey: string, bodyFingerprint: string, jobId: string): Promise<Reservation> {
    const claim = this.claim(principal, idempotencyKey, bodyFingerprint, jobId);
    const existing = await this.store.redis.set(claim.key, claim.record, "EX", claim.keepSeconds, "NX", "GET");
    return existing === null ? { kind: "reserved" } : this.judge(claim, existing);
  }

  /**
   * What the record `existing` an earlier request left means for `claim`: the same body again (replay, or
   * still in progress), another body (mismatch), or a record whose job never came (taken over after
   * PENDING_MS: then the key is the claim's, "reserved").
   */
  async judge(claim: IdempotencyClaim, existing: string): Promise<Reservation> {
    let earlier: Partial<IdempotencyRecord> & EarlierRecord;
    try {
      earlier = JSON.parse(existing) as Partial<IdempotencyRecord> & EarlierRecord;
    } catch {
      earlier = {};
    }
    if (earlier.fingerprint !== claim.fingerprint) return { kind: "mismatch" };
    if (earlier.body) return { kind: "replay", monitor: earlier.body };
    if (earlier.pending) return { kind: "inProgress" };
    const monitor = typeof earlier.jobId === "string" ? await this.addedMonitor(earlier.jobId) : undefined;
    if (monitor) return { kind: "replay", monitor };
    if (this.now() - Number(earlier.at ?? 0) < PENDING_MS) return { kind: "inProgress" };
    const taken = await this.store.redis.cmkTakeOverIdempotencyKey(claim.key, existing, claim.record, claim.keepSeconds);
    if (taken === 1) return { kind: "reserved" };
    const current = await this.store.redis.set(claim.key, claim.record, "EX", claim.keepSeconds, "NX", "GET");
    return current === null ? { kind: "reserved" } : this.judge(claim, current);
  }

  /** The request was not accepted: a retry with the key is judged afresh. */
  async release(principal: string, idempotencyKey: string): Promise<void> {
    await this.store.redis.del(this.key(principal, idempotencyKey));
  }
}
