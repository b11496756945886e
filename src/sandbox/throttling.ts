import { isRecord } from "./http/responses.js";

/**
 * ARM request throttling as ARM's current model does it (azure-contracts.md 2.1, 2.3): token buckets per
 * subscription + principal + operation kind (reads 250 refilling 25/s, writes and deletes 200 refilling
 * 10/s), the same sizes per tenant + principal for requests outside a subscription, and a
 * subscription-wide bucket shared by every principal at 15 times the per-principal size. Every answer
 * says what is left (`x-ms-ratelimit-remaining-subscription-reads`, `…-subscription-global-writes`,
 * `…-tenant-reads`, …); a request that finds a bucket empty gets 429 with `Retry-After`.
 * `PUT /_sandbox/throttling` changes the sizes.
 */

export type OperationKind = "reads" | "writes" | "deletes";
const KINDS: readonly OperationKind[] = ["reads", "writes", "deletes"];

export interface BucketLimits {
  capacity: number;
  refillPerSecond: number;
}

export type ThrottleOptions = Partial<Record<OperationKind, BucketLimits>>;

export const DEFAULT_THROTTLE_LIMITS: Record<OperationKind, BucketLimits> = {
  reads: { capacity: 250, refillPerSecond: 25 },
  writes: { capacity: 200, refillPerSecond: 10 },
  deletes: { capacity: 200, refillPerSecond: 10 },
};

/** The subscription-wide limit is this many times the per-principal one ([ARM-LIMITS]; real traffic: writes 199 beside global-writes 2999). */
export const GLOBAL_LIMIT_FACTOR = 15;

export function operationKind(method: string): OperationKind {
  if (method === "GET" || method === "HEAD") return "reads";
  if (method === "DELETE") return "deletes";
  return "writes";
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

export interface ThrottleDecision {
  allowed: boolean;
  /** Seconds until the empty bucket holds a token again, when refused. */
  retryAfterSeconds: number;
  /** `x-ms-ratelimit-remaining-*` headers: whole tokens left after this request. */
  headers: Record<string, string>;
}

export class ThrottleValidationError extends Error {}

/** `PUT /_sandbox/throttling` body: `{ reads?, writes?, deletes? }`, each `{ capacity, refillPerSecond }`. */
export function parseThrottleOptions(body: unknown): ThrottleOptions {
  if (!isRecord(body)) throw new ThrottleValidationError("body must be an object");
  const unknown = Object.keys(body).filter((name) => !KINDS.includes(name as OperationKind));
  if (unknown.length > 0) throw new ThrottleValidationError(`unknown properties: ${unknown.join(", ")} (use reads, writes, deletes)`);
  const options: ThrottleOptions = {};
  for (const kind of KINDS) {
    const value = body[kind];
    if (value === undefined) continue;
    if (!isRecord(value)) throw new ThrottleValidationError(`${kind} must be an object`);
    const { capacity, refillPerSecond, ...extra } = value;
    if (Object.keys(extra).length > 0) throw new ThrottleValidationError(`${kind} has unknown properties: ${Object.keys(extra).join(", ")}`);
    if (!Number.isInteger(capacity) || (capacity as number) < 1) throw new ThrottleValidationError(`${kind}.capacity must be a positive integer`);
    if (typeof refillPerSecond !== "number" || !(refillPerSecond > 0) || !Number.isFinite(refillPerSecond)) {
      throw new ThrottleValidationError(`${kind}.refillPerSecond must be a positive number`);
    }
    options[kind] = { capacity: capacity as number, refillPerSecond };
  }
  return options;
}

export class Throttling {
  private readonly buckets = new Map<string, Bucket>();
  private limits: Record<OperationKind, BucketLimits>;

  /** `now`: the emulator clock (tests pass their own), which refills the buckets. */
  constructor(
    private readonly initial: ThrottleOptions | undefined,
    private readonly now: () => number,
  ) {
    this.limits = { ...DEFAULT_THROTTLE_LIMITS, ...initial };
  }

  /** The bucket sizes in force. */
  snapshot(): Record<OperationKind, BucketLimits> {
    return structuredClone(this.limits);
  }

  /** New sizes for the kinds given (the others keep theirs); every bucket starts full again. */
  configure(options: ThrottleOptions): void {
    this.limits = { ...this.limits, ...options };
    this.buckets.clear();
  }

  /**
   * Takes a token for a request of `principalId` in `subscriptionId` (undefined: a tenant-level request
   * such as `GET /subscriptions` or `/providers/...`, counted per tenant).
   */
  take(scope: { subscriptionId?: string; tenantId: string }, principalId: string, kind: OperationKind): ThrottleDecision {
    const limits = this.limits[kind];
    const principal = principalId.toLowerCase();
    const now = this.now();
    if (scope.subscriptionId === undefined) {
      const bucket = this.bucket(`tenant|${scope.tenantId.toLowerCase()}|${principal}|${kind}`, limits, now);
      const allowed = bucket.tokens >= 1;
      if (allowed) bucket.tokens -= 1;
      return { allowed, retryAfterSeconds: allowed ? 0 : retryAfter(bucket, limits), headers: { [`x-ms-ratelimit-remaining-tenant-${kind}`]: String(Math.floor(bucket.tokens)) } };
    }
    const subscription = scope.subscriptionId.toLowerCase();
    const own = this.bucket(`subscription|${subscription}|${principal}|${kind}`, limits, now);
    const globalLimits = { capacity: limits.capacity * GLOBAL_LIMIT_FACTOR, refillPerSecond: limits.refillPerSecond * GLOBAL_LIMIT_FACTOR };
    const shared = this.bucket(`global|${subscription}|${kind}`, globalLimits, now);
    const allowed = own.tokens >= 1 && shared.tokens >= 1;
    if (allowed) {
      own.tokens -= 1;
      shared.tokens -= 1;
    }
    const wait = allowed ? 0 : Math.max(own.tokens < 1 ? retryAfter(own, limits) : 0, shared.tokens < 1 ? retryAfter(shared, globalLimits) : 0);
    return {
      allowed,
      retryAfterSeconds: wait,
      headers: {
        [`x-ms-ratelimit-remaining-subscription-${kind}`]: String(Math.floor(own.tokens)),
        [`x-ms-ratelimit-remaining-subscription-global-${kind}`]: String(Math.floor(shared.tokens)),
      },
    };
  }

  /** Back to the sizes the sandbox started with, every bucket full. */
  clear(): void {
    this.limits = { ...DEFAULT_THROTTLE_LIMITS, ...this.initial };
    this.buckets.clear();
  }

  private bucket(key: string, limits: BucketLimits, now: number): Bucket {
    const bucket = this.buckets.get(key) ?? { tokens: limits.capacity, updatedAt: now };
    bucket.tokens = Math.min(limits.capacity, bucket.tokens + (Math.max(0, now - bucket.updatedAt) / 1000) * limits.refillPerSecond);
    bucket.updatedAt = now;
    this.buckets.set(key, bucket);
    return bucket;
  }
}

function retryAfter(bucket: Bucket, limits: BucketLimits): number {
  return Math.max(1, Math.ceil((1 - bucket.tokens) / limits.refillPerSecond));
}
