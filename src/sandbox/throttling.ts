/**
 * ARM request throttling: one token bucket per subscription + principal + operation kind, with the
 * limits of ARM's current model (azure-contracts.md 2.1): reads 250 refilling 25/s, writes and
 * deletes 200 refilling 10/s.
 */

export type OperationKind = "reads" | "writes" | "deletes";

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
  /** Whole tokens left after this request, for `x-ms-ratelimit-remaining-subscription-*`. */
  remaining: number;
  /** Seconds until a token is available again, when refused. */
  retryAfterSeconds: number;
}

export class Throttling {
  private readonly buckets = new Map<string, Bucket>();
  private readonly limits: Record<OperationKind, BucketLimits>;

  constructor(options: ThrottleOptions = {}, private readonly now: () => number = Date.now) {
    this.limits = { ...DEFAULT_THROTTLE_LIMITS, ...options };
  }

  take(subscriptionId: string, principalId: string, kind: OperationKind): ThrottleDecision {
    const limits = this.limits[kind];
    const key = `${subscriptionId.toLowerCase()}|${principalId.toLowerCase()}|${kind}`;
    const now = this.now();
    const bucket = this.buckets.get(key) ?? { tokens: limits.capacity, updatedAt: now };
    bucket.tokens = Math.min(limits.capacity, bucket.tokens + ((now - bucket.updatedAt) / 1000) * limits.refillPerSecond);
    bucket.updatedAt = now;
    this.buckets.set(key, bucket);
    if (bucket.tokens < 1) {
      const retryAfterSeconds = Math.max(1, Math.ceil((1 - bucket.tokens) / limits.refillPerSecond));
      return { allowed: false, remaining: 0, retryAfterSeconds };
    }
    bucket.tokens -= 1;
    return { allowed: true, remaining: Math.floor(bucket.tokens), retryAfterSeconds: 0 };
  }

  clear(): void {
    this.buckets.clear();
  }
}
