import type { CallbackDelivery, CallbackInfo, JobStatusMonitor } from "../schemas/jobs.js";

/**
 * What the webhook of a finished job looks like to its caller and when its deliveries are retried.
 * Pure: the API shows deliveries in the status monitor, the store queues the delivery job with these
 * retries, and the worker (worker/webhook-delivery.ts) sends it.
 */

const HOUR_MS = 3_600_000;
const MIN_RETRY_SPAN_MS = 24 * HOUR_MS;

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

/**
 * The Standard Webhooks message id: the same on every attempt, so receivers de-duplicate on it. The end's
 * is `msg_<jobId>`; another type's adds the type (`msg_<jobId>_approval_requested`).
 */
export function webhookMessageId(jobId: string, type?: string): string {
  return type ? `msg_${jobId}_${type.replace(/^job\./, "")}` : `msg_${jobId}`;
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

export function callbackInfo(url: string, deliveries: CallbackDelivery[]): CallbackInfo {
  // The status is the end's webhook's; other types' deliveries are listed with their `type`.
  const last = deliveries.filter((delivery) => delivery.type === undefined).at(-1);
  const status = !last ? "Pending" : last.outcome === "Delivered" ? "Delivered" : last.outcome === "Retrying" ? "Retrying" : "Failed";
  return { url: displayCallbackUrl(url), status, deliveries };
}

/** The monitor with its `callback` (URL, status, attempts) when the job has a callbackUrl. */
export function withCallback(monitor: JobStatusMonitor, callbackUrl: string | undefined, deliveries: CallbackDelivery[]): JobStatusMonitor {
  return callbackUrl ? { ...monitor, callback: callbackInfo(callbackUrl, deliveries) } : monitor;
}
