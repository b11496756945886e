import type { Redis } from "ioredis";
import type { FastifyBaseLogger } from "fastify";
import type { JobStatusMonitor } from "../schemas/jobs.js";
import { isTerminal } from "../domain/job-record.js";
import { compareEventIds, type JobEvent, type JobEventLog } from "../job-store/job-events.js";

/**
 * Live events for `GET /v1/jobs/{jobId}/events`, over the job store's event log (job-store/job-events.ts).
 *
 * Each API process holds ONE subscription and fans entries out in memory to the open streams of that job;
 * a heartbeat tick re-reads the log of each followed job (entries missed while the subscription
 * reconnected) and, when a job has been quiet, compares it with the stored job (a worker that died
 * between finishing a job and appending its last monitor). A job whose log has not started (nobody
 * followed it, no worker saved it yet) gets it started with its current monitor.
 */

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

export interface JobEventHubOptions {
  events: JobEventLog;
  /** Opens the connection the subscription runs on (a subscribed connection runs nothing else). */
  subscriber(): Redis;
  heartbeatMs: number;
  /** The stored job's current monitor (undefined: the job no longer exists). */
  readMonitor(jobId: string): Promise<JobStatusMonitor | undefined>;
  logger: Pick<FastifyBaseLogger, "warn" | "info" | "debug">;
}

export class JobEventHub {
  private readonly events: JobEventLog;
  private readonly channels = new Map<string, Channel>();
  private subscriber: Redis | undefined;
  private subscribed: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: JobEventHubOptions) {
    this.events = options.events;
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
      let latest = await this.events.latest(jobId);
      if (!latest) {
        // No log yet: start it from the job, unless a worker started it meanwhile.
        const monitor = await this.options.readMonitor(jobId);
        const started = monitor ? await this.events.start(monitor) : undefined;
        if (started) backlog = [started];
        else if (monitor) latest = await this.events.latest(jobId);
      }
      if (!latest) {
        // Started above, or no such job.
      } else if (lastEventId === undefined) {
        backlog = [latest];
      } else if (compareEventIds(latest.id, lastEventId) > 0) {
        backlog = await this.events.after(jobId, lastEventId);
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
      const subscriber = this.options.subscriber();
      this.subscriber = subscriber;
      // After a reconnect (ioredis subscribes again by itself), catch up on what was published meanwhile.
      let first = true;
      subscriber.on("ready", () => {
        if (!first) void this.tick(false);
        first = false;
      });
      await this.events.listen(
        subscriber,
        (jobId) => this.channels.has(jobId),
        (jobId, event) => this.dispatch(jobId, event),
      );
    })().catch((error: unknown) => {
      this.subscribed = undefined;
      this.subscriber?.disconnect();
      this.subscriber = undefined;
      throw error;
    });
    return this.subscribed;
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
    const missed = await this.events.after(jobId, oldest);
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
      await this.events.append(monitor);
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
