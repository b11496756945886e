import { createHash } from "node:crypto";
import type { StoreContext } from "./store-context.js";
import { keyEventKeys } from "./keys.js";
import type { KeyVersionEvent } from "../domain/key-vault-events.js";

export type { KeyVersionEvent };

/** Event Grid retries for up to 24 hours (its longest time to live): a duplicate can come that late, so twice that. */
export const SEEN_TTL_MS = 48 * 3_600_000;
/** Pending events kept per key: the follow step needs the latest few, not the history. */
export const MAX_PENDING_PER_KEY = 100;

function eventDigest(source: string, eventId: string): string {
  return createHash("sha256").update(`${source.toLowerCase()}\n${eventId}`).digest("hex").slice(0, 40);
}

/**
 * Key Vault events from Event Grid, in the job store: duplicate suppression (Event Grid delivers at least
 * once) and, per versionless key, a bounded stream of pending events that the compliance scan and
 * follow-latest-version steps consume. Two round trips per delivery, whatever its size: the claims, then
 * the new events' records.
 */
export class KeyVaultEventStore {
  private readonly keys: ReturnType<typeof keyEventKeys>;

  constructor(private readonly store: StoreContext) {
    this.keys = keyEventKeys(store.keys.prefix);
  }

  /**
   * Claims each event (SET NX with a TTL, all in one pipeline): true for an event seen for the first
   * time, false for a duplicate. Identity is Event Grid's: the source and the event id.
   */
  async claim(events: ReadonlyArray<{ source: string; eventId: string }>): Promise<boolean[]> {
    if (events.length === 0) return [];
    const pipeline = this.store.redis.pipeline();
    for (const event of events) pipeline.set(this.keys.seen(eventDigest(event.source, event.eventId)), "1", "PX", SEEN_TTL_MS, "NX");
    const results = (await pipeline.exec()) ?? [];
    return events.map((_, i) => {
      const [error, reply] = results[i] ?? [new Error("discarded"), null];
      if (error) throw error;
      return reply === "OK";
    });
  }

  /** Gives claims back (a delivery that could not be recorded): Event Grid's retry is then not taken for a duplicate. */
  async release(events: ReadonlyArray<{ source: string; eventId: string }>): Promise<void> {
    if (events.length === 0) return;
    await this.store.redis.del(...events.map((event) => this.keys.seen(eventDigest(event.source, event.eventId))));
  }

  /** Appends the events to their keys' pending streams (capped) and indexes the keys, in one round trip. */
  async record(events: readonly KeyVersionEvent[]): Promise<void> {
    if (events.length === 0) return;
    const multi = this.store.redis.multi();
    for (const event of events) {
      const stream = this.keys.pending(event.versionlessKeyUrl);
      multi.xadd(stream, "MAXLEN", "~", String(MAX_PENDING_PER_KEY), "*", "event", JSON.stringify(event));
      multi.pexpire(stream, this.store.keepMs);
      multi.zadd(this.keys.keysWithPending, Date.parse(event.receivedDateTime), event.versionlessKeyUrl.toLowerCase());
    }
    const results = (await multi.exec()) ?? [];
    const failed = results.find(([error]) => error);
    if (failed) throw failed[0];
  }

  /** The key's pending events, oldest first (with their stream ids, for a consumer to trim what it handled). */
  async pending(versionlessKeyUrl: string, count = MAX_PENDING_PER_KEY): Promise<Array<{ streamId: string; event: KeyVersionEvent }>> {
    const entries = await this.store.redis.xrange(this.keys.pending(versionlessKeyUrl), "-", "+", "COUNT", count);
    return entries.flatMap(([streamId, fields]) => {
      const index = fields.indexOf("event");
      try {
        return index >= 0 ? [{ streamId, event: JSON.parse(fields[index + 1] ?? "") as KeyVersionEvent }] : [];
      } catch {
        return [];
      }
    });
  }

  /** Versionless key URLs (lower case) with pending events, the most recent first. */
  async keysWithPending(limit = 1000): Promise<string[]> {
    return this.store.redis.zrevrange(this.keys.keysWithPending, 0, limit - 1);
  }
}
