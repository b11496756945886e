import { createHmac, randomBytes } from "node:crypto";
import { Queue, UnrecoverableError, Worker, type Job, type MinimalJob } from "bullmq";
import { Redis } from "ioredis";
import type { FastifyBaseLogger } from "fastify";
import type { JobStatusMonitor, CallbackDelivery, CallbackInfo } from "../schemas/jobs.js";
import { jobKeys } from "../job-store/keys.js";
import { redisOutageLog } from "../job-store/outage-log.js";

/**
 * Signed webhooks (Standard Webhooks, https://www.standardwebhooks.com): when a job with a
 * `callbackUrl` ends, its status monitor is POSTed there with
 *   webhook-id: msg_<jobId>              (the same on every retry: receivers de-duplicate on it)
 *   webhook-timestamp: <unix seconds>    (of this attempt)
 *   webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>" keyed with the secret's bytes>
 * Deliveries go through their own BullMQ queue (`webhooks`), retried with exponential backoff capped
 * at one hour for at least 24 hours; each attempt and its outcome is kept beside the job and shown in
 * its status monitor (`callback.deliveries`). Redirects are not followed; each attempt has a timeout;
 * any 2xx is delivered.
 */

export const WEBHOOKS_QUEUE = "webhooks";
const HOUR_MS = 3_600_000;
const MIN_RETRY_SPAN_MS = 24 * HOUR_MS;
/** Deliveries kept per job (the newest ones). */
const MAX_DELIVERIES = 100;

export interface WebhookJobData {
  jobId: string;
  url: string;
  /** The status monitor as sent: the same body on every attempt. */
  body: string;
  ticketId?: string;
}

/** Delay before retry `retry` (1 = the first retry): doubling from `baseMs`, at most an hour. */
export function webhookRetryDelay(retry: number, baseMs: number): number {
  return Math.min(baseMs * 2 ** Math.max(0, retry - 1), Math.max(baseMs, HOUR_MS));
}

/** Attempts (the first one and its retries) whose retry delays add up to at least 24 hours. */
export function webhookAttempts(baseMs: number): number {
  let total = 0;
  let retries = 0;
  while (total < MIN_RETRY_SPAN_MS) {
    retries += 1;
    total += webhookRetryDelay(retries, baseMs);
  }
  return retries + 1;
}

export function createWebhooksQueue(connection: Redis, prefix: string): Queue<WebhookJobData> {
  return new Queue<WebhookJobData>(WEBHOOKS_QUEUE, { connection, prefix });
}

export interface WebhookSettings {
  backoffMs: number;
  retentionHours: number;
}

/** Queues the delivery of `monitor` (a terminal one) to the job's callbackUrl; once per job. */
export async function enqueueWebhook(queue: Queue<WebhookJobData>, monitor: JobStatusMonitor, url: string, settings: WebhookSettings): Promise<void> {
  const age = Math.max(24, settings.retentionHours) * 3600;
  const { callback: _omitted, ...body } = monitor;
  await queue.add(
    "deliver",
    { jobId: monitor.id, url, body: JSON.stringify(body), ...(monitor.ticket ? { ticketId: monitor.ticket.id } : {}) },
    {
      jobId: monitor.id,
      attempts: webhookAttempts(settings.backoffMs),
      backoff: { type: "webhook", delay: settings.backoffMs },
      removeOnComplete: { age },
      removeOnFail: { age },
    },
  );
}

/** `whsec_` + base64 of 32 random bytes. */
export function generateWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString("base64")}`;
}

export function secretBytes(secret: string): Buffer {
  return Buffer.from(secret.startsWith("whsec_") ? secret.slice("whsec_".length) : secret, "base64");
}

/** The Standard Webhooks signature header value. */
export function signWebhook(secret: string, messageId: string, timestampSeconds: number, body: string): string {
  const mac = createHmac("sha256", secretBytes(secret)).update(`${messageId}.${timestampSeconds}.${body}`).digest("base64");
  return `v1,${mac}`;
}

export function webhookMessageId(jobId: string): string {
  return `msg_${jobId}`;
}

/** What callers are shown of a callback URL: no query string or fragment (they may hold tokens). */
export function displayCallbackUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return "(invalid)";
  }
}

/** Adds `callback` (URL, status and delivery attempts) to the monitor of a job that has a callbackUrl. */
export async function withCallback(redis: Redis, prefix: string, monitor: JobStatusMonitor, callbackUrl: string | undefined): Promise<JobStatusMonitor> {
  if (!callbackUrl) return monitor;
  const deliveries = (await redis.lrange(jobKeys(prefix).callback(monitor.id), 0, -1)).flatMap((text) => {
    try {
      return [JSON.parse(text) as CallbackDelivery];
    } catch {
      return [];
    }
  });
  return { ...monitor, callback: callbackInfo(callbackUrl, deliveries) };
}

export function callbackInfo(url: string, deliveries: CallbackDelivery[]): CallbackInfo {
  const last = deliveries.at(-1);
  const status = !last ? "Pending" : last.outcome === "Delivered" ? "Delivered" : last.outcome === "Retrying" ? "Retrying" : "Failed";
  return { url: displayCallbackUrl(url), status, deliveries };
}

interface AttemptResult {
  delivered: boolean;
  statusCode?: number;
  error?: string;
}

/** One POST; never follows redirects, gives up after `timeoutMs`. */
export async function postWebhook(url: string, body: string, headers: Record<string, string>, timeoutMs: number): Promise<AttemptResult> {
  try {
    const response = await fetch(url, {
      method: "POST",
      body,
      headers: { "content-type": "application/json", "user-agent": "cmk-service-webhooks/1", ...headers },
      redirect: "manual",
      signal: AbortSignal.timeout(timeoutMs),
    });
    await response.body?.cancel().catch(() => undefined);
    if (response.status >= 200 && response.status < 300) return { delivered: true, statusCode: response.status };
    if (response.status >= 300 && response.status < 400) return { delivered: false, statusCode: response.status, error: "Redirects are not followed." };
    return { delivered: false, statusCode: response.status, error: `HTTP ${response.status}` };
  } catch (error) {
    const name = (error as Error).name;
    if (name === "TimeoutError" || name === "AbortError") return { delivered: false, error: `No answer within ${timeoutMs} ms.` };
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    return { delivered: false, error: cause?.code ?? cause?.message ?? (error as Error).message };
  }
}

export interface WebhookWorkerOptions extends WebhookSettings {
  redisUrl: string;
  prefix: string;
  /** Undefined: deliveries are recorded as failed (nothing can be signed). */
  secret: string | undefined;
  timeoutMs: number;
  concurrency?: number;
  logger: FastifyBaseLogger;
}

export interface RunningWebhookWorker {
  worker: Worker<WebhookJobData>;
  close(force?: boolean): Promise<void>;
}

/** The delivery worker; runs wherever the change worker runs. */
export function startWebhookWorker(options: WebhookWorkerOptions): RunningWebhookWorker {
  const connection = new Redis(options.redisUrl, { maxRetriesPerRequest: null });
  redisOutageLog.watch(connection, options.logger, "webhook worker redis connection error");
  const keys = jobKeys(options.prefix);
  const ttlMs = Math.max(24, options.retentionHours) * HOUR_MS;

  const deliver = async (job: Job<WebhookJobData>): Promise<void> => {
    const { jobId, url, body, ticketId } = job.data;
    const log = options.logger.child({ jobId, ...(ticketId ? { ticketId } : {}), webhookAttempt: job.attemptsMade + 1 });
    const attempt = job.attemptsMade + 1;
    const maxAttempts = job.opts.attempts ?? 1;
    const started = new Date();
    let result: AttemptResult;
    if (!options.secret) {
      result = { delivered: false, error: "CMK_WEBHOOK_SECRET is not set: nothing can be signed." };
    } else {
      const timestamp = Math.floor(started.getTime() / 1000);
      const messageId = webhookMessageId(jobId);
      result = await postWebhook(
        url,
        body,
        { "webhook-id": messageId, "webhook-timestamp": String(timestamp), "webhook-signature": signWebhook(options.secret, messageId, timestamp, body) },
        options.timeoutMs,
      );
    }
    const retrying = !result.delivered && options.secret !== undefined && attempt < maxAttempts;
    const delay = webhookRetryDelay(attempt, (job.opts.backoff as { delay?: number } | undefined)?.delay ?? options.backoffMs);
    const record: CallbackDelivery = {
      attempt,
      dateTime: started.toISOString(),
      durationMs: Date.now() - started.getTime(),
      outcome: result.delivered ? "Delivered" : retrying ? "Retrying" : "Failed",
      ...(result.statusCode !== undefined ? { statusCode: result.statusCode } : {}),
      ...(result.error ? { error: result.error } : {}),
      ...(retrying ? { nextAttemptDateTime: new Date(Date.now() + delay).toISOString() } : {}),
    };
    await connection
      .multi()
      .rpush(keys.callback(jobId), JSON.stringify(record))
      .ltrim(keys.callback(jobId), -MAX_DELIVERIES, -1)
      .pexpire(keys.callback(jobId), ttlMs)
      .exec();
    if (result.delivered) {
      log.info({ statusCode: result.statusCode }, "webhook delivered");
      return;
    }
    log.warn({ statusCode: result.statusCode, reason: result.error, nextAttemptDateTime: record.nextAttemptDateTime }, retrying ? "webhook delivery failed; will retry" : "webhook delivery failed; giving up");
    // Nothing more to try: end the delivery job without another attempt.
    if (!retrying) throw new UnrecoverableError(result.error ?? "delivery failed");
    throw new Error(result.error ?? "delivery failed");
  };

  const worker = new Worker<WebhookJobData>(WEBHOOKS_QUEUE, deliver, {
    connection,
    prefix: options.prefix,
    concurrency: options.concurrency ?? 10,
    settings: {
      backoffStrategy: (attemptsMade: number, _type?: string, _error?: Error, job?: MinimalJob) =>
        webhookRetryDelay(attemptsMade, (job?.opts.backoff as { delay?: number } | undefined)?.delay ?? options.backoffMs),
    },
  });
  worker.on("error", (error) => redisOutageLog.error(options.logger, error, "webhook worker error"));
  return {
    worker,
    close: async (force = false) => {
      await worker.close(force).catch(() => undefined);
      connection.disconnect();
    },
  };
}
