import { Redis } from "ioredis";
import type { FastifyBaseLogger } from "fastify";
import type { JobStatusMonitor } from "../schemas/jobs.js";
import { isTerminal } from "../domain/job-record.js";
import { jobKeys, type JobKeys } from "./keys.js";
import { RedisScript } from "./redis-script.js";
import { redisOutageLog } from "./outage-log.js";

/**
 * The event log behind `GET /v1/jobs/{jobId}/events`.
 *
 * Whoever changes a job's status monitor (the API when it enqueues or cancels, the worker at every
 * saved step and when the job ends) appends the new monitor to the job's Redis stream and publishes the
 * same entry on one pub/sub channel, in one Lua script: stream order and publish order are the same,
 * and an entry is in the stream before anyone can hear of it. Stream ids (`<ms>-<seq>`, increasing) are
 * the SSE event ids, so a client that reconnects with `Last-Event-ID` is sent exactly the entries after
 * it (XRANGE), then the live ones.
 *
 * Each API process holds ONE subscription (JobEventHub) and fans entries out in memory to the open
 * streams of that job; a heartbeat tick re-reads the stream of each followed job (entries missed while
 * the subscription reconnected) and, when a job has been quiet, compares it with the stored job (a
 * worker that died between finishing a job and appending its last monitor).
 */

/** Entries kept per job (approximately); a reconnecting client older than that gets the newest ones. */
const MAX_ENTRIES = 500;

const APPEND = new RedisScript(`
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'm', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5] .. ' ' .. id .. ' ' .. ARGV[2])
return id
`);

export interface JobEvent {
  id: string;
  monitor: JobStatusMonitor;
}

export interface EventLogOptions {
  prefix: string;
  /** How long a job's event log is kept after its last entry. */
  retentionHours: number;
}

/** Appends `monitor` to its job's event log and publishes it; returns the entry id. */
export async function appendJobEvent(redis: Redis, options: EventLogOptions, monitor: JobStatusMonitor): Promise<string> {
  const keys = jobKeys(options.prefix);
  const ttlMs = Math.max(24, options.retentionHours) * 3_600_000;
  return String(await APPEND.run(redis, [keys.events(monitor.id)], [MAX_ENTRIES, JSON.stringify(monitor), ttlMs, keys.eventsChannel, monitor.id]));
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

/** Entries after `afterId` (exclusive), oldest first. */
export async function jobEventsAfter(redis: Redis, keys: JobKeys, jobId: string, afterId: string, count = MAX_ENTRIES * 2): Promise<JobEvent[]> {
  return parseEntries((await redis.xrange(keys.events(jobId), `(${afterId}`, "+", "COUNT", count)) as Array<[string, string[]]>);
}

export async function latestJobEvent(redis: Redis, keys: JobKeys, jobId: string): Promise<JobEvent | undefined> {
  return parseEntries((await redis.xrevrange(keys.events(jobId), "+", "-", "COUNT", 1)) as Array<[string, string[]]>)[0];
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

/** One open event stream, as the hub sees it. */
export interface EventSink {
  /** Writes an event; the hub ends the sink after a terminal monitor. */
  event(event: JobEvent): void;
  heartbeat(): void;
  end(): void;
}

interface Follower {
  sink: EventSink;
  lastId: string | undefined;
  /** Live entries that came while the backlog was being read. */
  buffer: JobEvent[] | undefined;
  ended: boolean;
}

interface Channel {
  followers: Set<Follower>;
  lastEntryAt: number;
  lastStatus: string | undefined;
  checking: boolean;
}

export interface JobEventHubOptions extends EventLogOptions {
  redisUrl: string;
  /** Commands (XRANGE, appends); the hub makes its own connection for the subscription. */
  redis: Redis;
  heartbeatMs: number;
  /** The stored job's current monitor (undefined: the job no longer exists). */
  readMonitor(jobId: string): Promise<JobStatusMonitor | undefined>;
  logger: Pick<FastifyBaseLogger, "warn" | "info" | "debug">;
}

export class JobEventHub {
  private readonly keys: JobKeys;
  private readonly channels = new Map<string, Channel>();
  private subscriber: Redis | undefined;
  private subscribed: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: JobEventHubOptions) {
    this.keys = jobKeys(options.prefix);
  }

  /** How many streams are open now (for tests and metrics). */
  get openStreams(): number {
    let count = 0;
    for (const channel of this.channels.values()) count += channel.followers.size;
    return count;
  }

  /**
   * Follows `jobId` into `sink`: first the entries after `lastEventId` (without one: the newest entry
   * only), then every new one, until a terminal monitor has been sent or `unfollow` is called.
   * Returns the unfollow function.
   */
  async follow(jobId: string, lastEventId: string | undefined, sink: EventSink): Promise<() => void> {
    await this.subscribe();
    const follower: Follower = { sink, lastId: lastEventId, buffer: [], ended: false };
    let channel = this.channels.get(jobId);
    if (!channel) {
      channel = { followers: new Set(), lastEntryAt: Date.now(), lastStatus: undefined, checking: false };
      this.channels.set(jobId, channel);
    }
    channel.followers.add(follower);
    this.startTimer();
    const unfollow = () => this.remove(jobId, follower);
    try {
      let backlog: JobEvent[] = [];
      const latest = await latestJobEvent(this.options.redis, this.keys, jobId);
      if (!latest) {
        // No log for this job (older than the log, or its first entry was lost): start it from the job.
        const monitor = await this.options.readMonitor(jobId);
        if (monitor) backlog = [{ id: await appendJobEvent(this.options.redis, this.options, monitor), monitor }];
      } else if (lastEventId === undefined) {
        backlog = [latest];
      } else if (compareEventIds(latest.id, lastEventId) > 0) {
        backlog = await jobEventsAfter(this.options.redis, this.keys, jobId, lastEventId);
      } else if (isTerminal(latest.monitor.status)) {
        // The client has seen the end already.
        follower.ended = true;
        sink.end();
      } else {
        channel.lastStatus = latest.monitor.status;
      }
      const buffered = follower.buffer ?? [];
      follower.buffer = undefined;
      for (const event of [...backlog, ...buffered]) this.deliver(follower, event, channel);
    } catch (error) {
      unfollow();
      throw error;
    }
    if (follower.ended) unfollow();
    return unfollow;
  }

  private deliver(follower: Follower, event: JobEvent, channel: Channel): void {
    if (follower.ended) return;
    if (follower.buffer) {
      follower.buffer.push(event);
      return;
    }
    if (follower.lastId !== undefined && compareEventIds(event.id, follower.lastId) <= 0) return;
    follower.lastId = event.id;
    channel.lastStatus = event.monitor.status;
    follower.sink.event(event);
    if (isTerminal(event.monitor.status)) {
      follower.ended = true;
      follower.sink.end();
    }
  }

  private dispatch(jobId: string, event: JobEvent): void {
    const channel = this.channels.get(jobId);
    if (!channel) return;
    channel.lastEntryAt = Date.now();
    for (const follower of [...channel.followers]) {
      this.deliver(follower, event, channel);
      if (follower.ended) this.remove(jobId, follower);
    }
  }

  private remove(jobId: string, follower: Follower): void {
    follower.ended = true;
    const channel = this.channels.get(jobId);
    if (!channel) return;
    channel.followers.delete(follower);
    if (channel.followers.size === 0) this.channels.delete(jobId);
    if (this.channels.size === 0) this.stopTimer();
  }

  private subscribe(): Promise<void> {
    if (this.closed) return Promise.reject(new Error("event hub closed"));
    this.subscribed ??= (async () => {
      const subscriber = new Redis(this.options.redisUrl, { maxRetriesPerRequest: null, retryStrategy: (times) => Math.min(times * 250, 2000) });
      this.subscriber = subscriber;
      redisOutageLog.watch(subscriber, this.options.logger, "job events subscription error");
      subscriber.on("message", (_channel: string, message: string) => this.onMessage(message));
      // After a reconnect (ioredis subscribes again by itself), catch up on what was published meanwhile.
      let first = true;
      subscriber.on("ready", () => {
        if (!first) void this.tick(false);
        first = false;
      });
      await subscriber.subscribe(this.keys.eventsChannel);
    })().catch((error: unknown) => {
      this.subscribed = undefined;
      this.subscriber?.disconnect();
      this.subscriber = undefined;
      throw error;
    });
    return this.subscribed;
  }

  private onMessage(message: string): void {
    const first = message.indexOf(" ");
    const second = message.indexOf(" ", first + 1);
    if (first < 0 || second < 0) return;
    const jobId = message.slice(0, first);
    if (!this.channels.has(jobId)) return;
    try {
      this.dispatch(jobId, { id: message.slice(first + 1, second), monitor: JSON.parse(message.slice(second + 1)) as JobStatusMonitor });
    } catch {
      // Not ours or malformed: ignored.
    }
  }

  private startTimer(): void {
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => void this.tick(true), this.options.heartbeatMs);
    this.timer.unref();
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Heartbeats, then per followed job: missed entries, and for a quiet job, a look at the stored job. */
  private async tick(heartbeat: boolean): Promise<void> {
    for (const [jobId, channel] of this.channels) {
      if (heartbeat) for (const follower of channel.followers) if (!follower.buffer && !follower.ended) follower.sink.heartbeat();
      if (channel.checking) continue;
      channel.checking = true;
      void this.catchUp(jobId, channel)
        .catch((error: Error) => this.options.logger.debug({ jobId, err: error.message }, "job events catch-up failed"))
        .finally(() => (channel.checking = false));
    }
  }

  private async catchUp(jobId: string, channel: Channel): Promise<void> {
    const ids = [...channel.followers].filter((follower) => !follower.buffer).map((follower) => follower.lastId);
    if (ids.length === 0) return;
    const oldest = ids.includes(undefined) ? "0-0" : ids.reduce((a, b) => (compareEventIds(a!, b!) <= 0 ? a : b))!;
    const missed = await jobEventsAfter(this.options.redis, this.keys, jobId, oldest);
    for (const event of missed) this.dispatch(jobId, event);
    if (missed.length > 0 || Date.now() - channel.lastEntryAt < this.options.heartbeatMs) return;
    // Quiet for a whole interval: is the stored job further along than its log?
    const monitor = await this.options.readMonitor(jobId);
    if (!monitor) {
      for (const follower of [...channel.followers]) {
        follower.sink.end();
        this.remove(jobId, follower);
      }
      return;
    }
    if (monitor.status !== channel.lastStatus && (isTerminal(monitor.status) || channel.lastStatus === undefined)) {
      await appendJobEvent(this.options.redis, this.options, monitor);
    }
  }

  /** Ends every open stream and the subscription (before the HTTP server closes). */
  async close(): Promise<void> {
    this.closed = true;
    this.stopTimer();
    for (const [jobId, channel] of this.channels) {
      for (const follower of [...channel.followers]) {
        follower.sink.end();
        this.remove(jobId, follower);
      }
    }
    this.subscriber?.disconnect();
  }
}

export interface EventStreamLimits {
  /** Streams one credential may hold open in this process. */
  perCredential: number;
  /** Streams this process holds open at most. */
  total: number;
}

/** Which cap a refused stream ran into. */
export type EventStreamCap = { scope: "credential" | "process"; limit: number };

/**
 * Places for open event streams, per credential and per process: each stream holds a file descriptor
 * and buffers, and nothing else bounds how many one key opens. `take` returns the release (idempotent)
 * or the cap that is full; a route releases when its stream closes, however it closes.
 */
export class EventStreamSlots {
  private readonly held = new Map<string, number>();
  private total = 0;

  constructor(private readonly limits: EventStreamLimits) {}

  /** Streams open now. */
  get open(): number {
    return this.total;
  }

  take(credential: string): { release: () => void } | { full: EventStreamCap } {
    const held = this.held.get(credential) ?? 0;
    if (held >= this.limits.perCredential) return { full: { scope: "credential", limit: this.limits.perCredential } };
    if (this.total >= this.limits.total) return { full: { scope: "process", limit: this.limits.total } };
    this.held.set(credential, held + 1);
    this.total += 1;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.total -= 1;
        const left = (this.held.get(credential) ?? 1) - 1;
        if (left > 0) this.held.set(credential, left);
        else this.held.delete(credential);
      },
    };
  }
}
