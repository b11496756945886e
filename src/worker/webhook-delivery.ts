import { createHmac, randomBytes } from "node:crypto";
import { UnrecoverableError, Worker, type Job, type MinimalJob } from "bullmq";
import type { FastifyBaseLogger } from "fastify";
import type { CallbackDelivery } from "../schemas/jobs.js";
import { webhookMessageId, webhookRetryDelay } from "../domain/webhooks.js";
import { createJobStore } from "../job-store/job-store.js";
import { WEBHOOKS_QUEUE } from "../job-store/keys.js";
import { redisOutageLog } from "../job-store/outage-log.js";
import type { WebhookJobData } from "../job-store/queue.js";
import { createRedisConnection, type RedisTarget } from "../job-store/redis-connection.js";

/**
 * Signed webhooks (Standard Webhooks, https://www.standardwebhooks.com): when a job with a
 * `callbackUrl` ends, its status monitor is POSTed there with
 *   webhook-id: msg_<jobId>              (the same on every retry: receivers de-duplicate on it)
 *   webhook-timestamp: <unix seconds>    (of this attempt)
 *   webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>" keyed with the secret's bytes>
 * Deliveries go through their own BullMQ queue (`webhooks`, queued by the job store when a job ends),
 * retried with exponential backoff capped at one hour for at least 24 hours (domain/webhooks.ts); each
 * attempt and its outcome is kept beside the job and shown in its status monitor (`callback.deliveries`).
 * Redirects are not followed; each attempt has a timeout; any 2xx is delivered.
 */

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

export interface WebhookWorkerOptions {
  redis: RedisTarget;
  prefix: string;
  /** How long delivery records are kept (CMK_JOB_RETENTION_HOURS, at least 24). */
  retentionHours: number;
  /** First retry delay (CMK_WEBHOOK_BACKOFF_MS). */
  backoffMs: number;
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
  const connection = createRedisConnection(options.redis, "worker", { log: { logger: options.logger, what: "webhook worker redis connection error" } });
  const store = createJobStore({ redis: connection, prefix: options.prefix, retentionHours: options.retentionHours, logger: options.logger });

  const deliver = async (job: Job<WebhookJobData>): Promise<void> => {
    const { jobId, url, body, ticketId, type } = job.data;
    const log = options.logger.child({ jobId, ...(ticketId ? { ticketId } : {}), webhookAttempt: job.attemptsMade + 1 });
    const attempt = job.attemptsMade + 1;
    const maxAttempts = job.opts.attempts ?? 1;
    const started = new Date();
    let result: AttemptResult;
    if (!options.secret) {
      result = { delivered: false, error: "CMK_WEBHOOK_SECRET is not set: nothing can be signed." };
    } else {
      const timestamp = Math.floor(started.getTime() / 1000);
      const messageId = webhookMessageId(jobId, type);
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
      ...(type ? { type } : {}),
      dateTime: started.toISOString(),
      durationMs: Date.now() - started.getTime(),
      outcome: result.delivered ? "Delivered" : retrying ? "Retrying" : "Failed",
      ...(result.statusCode !== undefined ? { statusCode: result.statusCode } : {}),
      ...(result.error ? { error: result.error } : {}),
      ...(retrying ? { nextAttemptDateTime: new Date(Date.now() + delay).toISOString() } : {}),
    };
    await store.recordDelivery(jobId, record);
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
      await store.close();
    },
  };
}
