import type { Redis } from "ioredis";
import type { StoreKeys } from "./keys.js";

/** What every part of the store shares: the connection, the key layout and how long records are kept. */
export interface StoreContext {
  readonly redis: Redis;
  readonly keys: StoreKeys;
  /** How long finished jobs are kept (CMK_JOB_RETENTION_HOURS). */
  readonly retentionHours: number;
  /** How long a job's own records (event log, control record, deliveries) and idempotency records live: the retention, at least 24 h. */
  readonly keepMs: number;
}
