/**
 * A read-through, single-flight cache for Azure lookups, so that a burst of validations or diagnoses
 * cannot spend the service's ARM and Key Vault read budget: identical lookups running at the same time
 * share one request, and an answer is kept `ttlMs` (0: not kept; concurrent lookups are still shared,
 * being the same moment). Only answers are kept, never errors; `keep` can refuse an answer too (e.g. a
 * fact Azure could not give). Writes call `forget` for what they change, and reads that must see the
 * latest state (before and after a write) do not go through the cache at all.
 */
export interface ReadCache {
  read<T>(key: string, load: () => Promise<T>, keep?: (value: T) => boolean): Promise<T>;
  /** Drops every entry whose key starts with `prefix`, including lookups still running. */
  forget(prefix: string): void;
  /**
   * Runs a write that changes what the entries under `prefix` hold: they are forgotten before it starts
   * and again once it is over (a read that began meanwhile saw the old state).
   */
  writing<T>(prefix: string, write: () => Promise<T>): Promise<T>;
}

interface Entry {
  promise: Promise<unknown>;
  /** Infinity while the lookup runs. */
  expiresAt: number;
}

/** Enough for every distinct lookup of a busy minute; the oldest go first beyond it. */
const MAX_ENTRIES = 10_000;

export function createReadCache(ttlMs: number, now: () => number = Date.now): ReadCache {
  const entries = new Map<string, Entry>();

  const sweep = () => {
    const time = now();
    for (const [key, entry] of entries) if (entry.expiresAt <= time) entries.delete(key);
    for (const key of entries.keys()) {
      if (entries.size <= MAX_ENTRIES) break;
      entries.delete(key);
    }
  };

  const forget = (prefix: string) => {
    for (const key of entries.keys()) if (key.startsWith(prefix)) entries.delete(key);
  };

  return {
    read<T>(key: string, load: () => Promise<T>, keep: (value: T) => boolean = () => true): Promise<T> {
      const existing = entries.get(key);
      if (existing && existing.expiresAt > now()) return existing.promise as Promise<T>;
      if (entries.size >= MAX_ENTRIES) sweep();
      const entry: Entry = { promise: Promise.resolve(), expiresAt: Infinity };
      // Only this entry's own outcome may touch the map: `forget` or a newer lookup may have replaced it.
      const settle = (kept: boolean) => {
        if (entries.get(key) !== entry) return;
        if (kept && ttlMs > 0) entry.expiresAt = now() + ttlMs;
        else entries.delete(key);
      };
      const promise = load().then(
        (value) => {
          settle(keep(value));
          return value;
        },
        (error: unknown) => {
          settle(false);
          throw error;
        },
      );
      entry.promise = promise;
      entries.set(key, entry);
      return promise;
    },

    forget,

    async writing(prefix, write) {
      forget(prefix);
      try {
        return await write();
      } finally {
        forget(prefix);
      }
    },
  };
}
