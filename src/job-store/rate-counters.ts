import type { StoreContext } from "./store-context.js";

/**
 * Request counters for rate limits, shared by every API process through Redis without a Redis call on
 * any request's way: each process counts locally and, every `syncMs`, adds what it counted to the
 * bucket's counter in Redis (INCRBY) and learns the total all processes counted (the reply). A bucket's
 * window starts with its first request; the first process to flush it sets the Redis counter to expire at
 * the window's end (PEXPIRE NX) and every process takes that end from the counter's PTTL.
 *
 * One process counts exactly. Several processes can let a caller go over by what the others counted
 * since their last flush (at most syncMs worth of that caller's requests each); a limit of requests per
 * minute does not need more. While Redis is away the counts are local and flushed once it is back.
 */

interface Bucket {
  /** The total in Redis at the last flush (every process's counts up to then). */
  counted: number;
  /** Counted here since then. */
  pending: number;
  /** Being flushed now. */
  flushing: number;
  windowEnds: number;
  windowMs: number;
}

/** Buckets one process tracks at most (callers and addresses); the oldest windows go first. */
const MAX_BUCKETS = 10_000;

export class RateCounters {
  private readonly buckets = new Map<string, Bucket>();
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly store: StoreContext,
    syncMs = 250,
    private readonly now: () => number = Date.now,
  ) {
    this.timer = setInterval(() => void this.flush().catch(() => undefined), syncMs);
    this.timer.unref();
  }

  /** Counts one request of `bucket`: the requests counted in its window (this one included) and the ms left of it. */
  hit(bucket: string, windowMs: number): { current: number; ttl: number } {
    const now = this.now();
    let entry = this.buckets.get(bucket);
    if (!entry || entry.windowEnds <= now) {
      if (entry) this.buckets.delete(bucket);
      else if (this.buckets.size >= MAX_BUCKETS) this.buckets.delete(this.buckets.keys().next().value!);
      entry = { counted: 0, pending: 0, flushing: 0, windowEnds: now + windowMs, windowMs };
      this.buckets.set(bucket, entry);
    }
    entry.pending += 1;
    return { current: entry.counted + entry.flushing + entry.pending, ttl: entry.windowEnds - now };
  }

  /** Adds the local counts to Redis and reads the totals back (one round trip for every bucket). */
  flush(): Promise<void> {
    this.flushing ??= this.flushNow().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  private async flushNow(): Promise<void> {
    const now = this.now();
    const due: Array<[string, Bucket]> = [];
    for (const [name, entry] of this.buckets) {
      if (entry.windowEnds <= now) this.buckets.delete(name);
      else if (entry.pending > 0) due.push([name, entry]);
    }
    if (due.length === 0) return;
    const pipeline = this.store.redis.pipeline();
    for (const [name, entry] of due) {
      entry.flushing = entry.pending;
      entry.pending = 0;
      const key = this.store.keys.rateLimit(name);
      pipeline.incrby(key, entry.flushing).pexpire(key, entry.windowMs, "NX").pttl(key);
    }
    let results: Array<[Error | null, unknown]> | null;
    try {
      results = await pipeline.exec();
    } catch (error) {
      for (const [, entry] of due) this.unflushed(entry);
      throw error;
    }
    due.forEach(([, entry], i) => {
      const [total, , ttl] = [results?.[3 * i], results?.[3 * i + 1], results?.[3 * i + 2]];
      if (!total || total[0] || !ttl || ttl[0]) return this.unflushed(entry);
      entry.counted = Number(total[1]);
      entry.flushing = 0;
      // The window as Redis keeps it: the same for every process.
      if (Number(ttl[1]) > 0) entry.windowEnds = this.now() + Number(ttl[1]);
    });
  }

  /** A flush that did not reach Redis: its counts go with the next one. */
  private unflushed(entry: Bucket): void {
    entry.pending += entry.flushing;
    entry.flushing = 0;
  }

  close(): void {
    clearInterval(this.timer);
  }
}
