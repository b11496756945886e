import type { ChainableCommander, Redis } from "ioredis";
import type { JobStatusMonitor } from "../schemas/jobs.js";
import type { StoreContext } from "./store-context.js";

/**
 * The event log behind `GET /v1/jobs/{jobId}/events`: one Redis stream per job, each entry a status
 * monitor, appended and published on one pub/sub channel in one script (scripts/append-event-1.lua), so
 * stream order and publish order are the same and an entry is in the stream before anyone can hear of
 * it. Stream ids (`<ms>-<seq>`, increasing) are the SSE event ids: a client that reconnects with
 * `Last-Event-ID` is sent exactly the entries after it.
 *
 * A job's log starts when someone follows it or a worker first saves its record, whichever comes first
 * (accepting a change writes none): `start` writes the current monitor only into an empty log, so a
 * follower and a worker that start it at once never put an older monitor after a newer one.
 */

/** Entries kept per job (approximately); a reconnecting client older than that gets the newest ones. */
export const MAX_EVENT_ENTRIES = 500;

export interface JobEvent {
  id: string;
  monitor: JobStatusMonitor;
}

export const EVENT_ID_PATTERN = /^\d{1,20}-\d{1,20}$/;

/** Orders stream ids (`<ms>-<seq>`). */
export function compareEventIds(a: string, b: string): number {
  const [aMs, aSeq] = a.split("-").map((part) => BigInt(part));
  const [bMs, bSeq] = b.split("-").map((part) => BigInt(part));
  if (aMs! !== bMs!) return aMs! < bMs! ? -1 : 1;
  if (aSeq! !== bSeq!) return aSeq! < bSeq! ? -1 : 1;
  return 0;
}

function parseEntries(entries: Array<[string, string[]]>): JobEvent[] {
  const events: JobEvent[] = [];
  for (const [id, fields] of entries) {
    const index = fields.indexOf("m");
    if (index < 0 || index + 1 >= fields.length) continue;
    try {
      events.push({ id, monitor: JSON.parse(fields[index + 1]!) as JobStatusMonitor });
    } catch {
      // A malformed entry is skipped, never sent.
    }
  }
  return events;
}

export class JobEventLog {
  constructor(private readonly store: StoreContext) {}

  /** Appends `monitor` to its job's log and publishes it; returns the entry id. */
  async append(monitor: JobStatusMonitor): Promise<string> {
    return this.store.redis.cmkAppendEvent(...this.appendArgs(monitor));
  }

  /** The same append, queued on a pipeline (a job's end writes it with its other records). */
  queueAppend(pipeline: ChainableCommander, monitor: JobStatusMonitor): void {
    pipeline.cmkAppendEvent(...this.appendArgs(monitor));
  }

  private appendArgs(monitor: JobStatusMonitor) {
    const { keys, keepMs } = this.store;
    return [keys.events(monitor.id), MAX_EVENT_ENTRIES, JSON.stringify(monitor), keepMs, keys.eventsChannel, monitor.id] as const;
  }

  /** Starts the job's log with `monitor` unless it has an entry; the entry, or undefined when it had one. */
  async start(monitor: JobStatusMonitor): Promise<JobEvent | undefined> {
    const { keys, keepMs, redis } = this.store;
    const id = await redis.cmkStartEventLog(keys.events(monitor.id), JSON.stringify(monitor), keepMs, keys.eventsChannel, monitor.id);
    return id ? { id, monitor } : undefined;
  }

  /** Entries after `afterId` (exclusive), oldest first. */
  async after(jobId: string, afterId: string, count = MAX_EVENT_ENTRIES * 2): Promise<JobEvent[]> {
    return parseEntries((await this.store.redis.xrange(this.store.keys.events(jobId), `(${afterId}`, "+", "COUNT", count)) as Array<[string, string[]]>);
  }

  async latest(jobId: string): Promise<JobEvent | undefined> {
    return parseEntries((await this.store.redis.xrevrange(this.store.keys.events(jobId), "+", "-", "COUNT", 1)) as Array<[string, string[]]>)[0];
  }

  /**
   * Subscribes `subscriber` (a connection of its own: a subscribed connection runs nothing else) to every
   * job's entries; `onEvent` gets those of the jobs `wants` names as they are published. Resolves once
   * subscribed.
   */
  async listen(subscriber: Redis, wants: (jobId: string) => boolean, onEvent: (jobId: string, event: JobEvent) => void): Promise<void> {
    subscriber.on("message", (_channel: string, message: string) => {
      const first = message.indexOf(" ");
      const second = message.indexOf(" ", first + 1);
      if (first < 0 || second < 0) return;
      const jobId = message.slice(0, first);
      if (!wants(jobId)) return;
      try {
        onEvent(jobId, { id: message.slice(first + 1, second), monitor: JSON.parse(message.slice(second + 1)) as JobStatusMonitor });
      } catch {
        // Malformed: ignored.
      }
    });
    await subscriber.subscribe(this.store.keys.eventsChannel);
  }
}
