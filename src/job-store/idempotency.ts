import { createHash } from "node:crypto";
import type { Redis } from "ioredis";

/**
 * Idempotency-Key for change requests: the first accepted answer is kept (at least 24 hours) and
 * returned to every retry with the same key and body; the same key with another body is refused.
 */

export interface StoredAnswer {
  fingerprint: string;
  statusCode: number;
  headers: Record<string, string>;
  body: unknown;
}

export type Reservation =
  | { kind: "reserved" }
  | { kind: "replay"; answer: StoredAnswer }
  | { kind: "mismatch" }
  | { kind: "inProgress" };

/**
 * How long a claim lives before its answer is stored. The API gives up on Redis after 2.5 s, so a claim
 * older than this belongs to a request that failed (and, in an outage, could not release it).
 */
const PENDING_TTL_SECONDS = 5;

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

export class IdempotencyStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly retentionSeconds: number,
  ) {}

  private key(principal: string, idempotencyKey: string): string {
    const digest = createHash("sha256").update(`${principal}\n${idempotencyKey}`).digest("hex");
    return `${this.prefix}:idempotency:${digest}`;
  }

  /** Claims the key for this request, or says what an earlier request with it left. */
  async reserve(principal: string, idempotencyKey: string, bodyFingerprint: string): Promise<Reservation> {
    const key = this.key(principal, idempotencyKey);
    const pending = JSON.stringify({ pending: true, fingerprint: bodyFingerprint });
    const claimed = await this.redis.set(key, pending, "EX", PENDING_TTL_SECONDS, "NX");
    if (claimed === "OK") return { kind: "reserved" };
    const existing = await this.redis.get(key);
    if (!existing) return this.reserve(principal, idempotencyKey, bodyFingerprint);
    const parsed = JSON.parse(existing) as (StoredAnswer & { pending?: undefined }) | { pending: true; fingerprint: string };
    if (parsed.fingerprint !== bodyFingerprint) return { kind: "mismatch" };
    if (parsed.pending) return { kind: "inProgress" };
    return { kind: "replay", answer: parsed };
  }

  async complete(principal: string, idempotencyKey: string, answer: StoredAnswer): Promise<void> {
    await this.redis.set(this.key(principal, idempotencyKey), JSON.stringify(answer), "EX", this.retentionSeconds);
  }

  /** The request was not accepted: a retry with the key is judged afresh. */
  async release(principal: string, idempotencyKey: string): Promise<void> {
    await this.redis.del(this.key(principal, idempotencyKey));
  }
}
