import { createHash } from "node:crypto";
import { Queue, type JobsOptions } from "bullmq";
import type { Redis } from "ioredis";
import type { ChangeJobData, JobRequest } from "../domain/job-record.js";
import type { JobStatusMonitor } from "../schemas/jobs.js";
import { webhookAttempts } from "../domain/webhooks.js";
import { CHANGES_QUEUE, fhirServiceKey, WEBHOOKS_QUEUE } from "./keys.js";

export type ChangesQueue = Queue<ChangeJobData>;

export interface WebhookJobData {
  jobId: string;
  url: string;
  /** The status monitor as sent: the same body on every attempt. */
  body: string;
  ticketId?: string;
  /** Absent for the webhook of the job's end; otherwise its type (e.g. job.approval_requested). */
  type?: WebhookType;
}

/** Webhooks a job sends besides the one when it ends. */
export type WebhookType = "job.approval_requested";

export type WebhooksQueue = Queue<WebhookJobData>;

/** Retries for transient Azure trouble: 6 attempts, exponential from 2 s with jitter (about 1 minute in all). */
export const CHANGE_JOB_ATTEMPTS = 6;

export function changeJobOptions(retentionHours: number): JobsOptions {
  const age = retentionHours * 3600;
  return {
    attempts: CHANGE_JOB_ATTEMPTS,
    backoff: { type: "exponential", delay: 2000, jitter: 0.5 },
    removeOnComplete: { age },
    removeOnFail: { age },
  };
}

export function createChangesQueue(connection: Redis, prefix: string, retentionHours: number): ChangesQueue {
  return new Queue<ChangeJobData>(CHANGES_QUEUE, { connection, prefix, defaultJobOptions: changeJobOptions(retentionHours) });
}

export function createWebhooksQueue(connection: Redis, prefix: string): WebhooksQueue {
  return new Queue<WebhookJobData>(WEBHOOKS_QUEUE, { connection, prefix });
}

/**
 * One deduplication id per FHIR service: BullMQ keeps it until the job completes or fails, so the check
 * "no unfinished job on this service" and the add are one Lua script inside BullMQ.
 */
export const exclusivityId = fhirServiceKey;

/**
 * The lock a job holds while unfinished: its FHIR service; for a fleet rotation its key (any version: two
 * would race to make new versions and move the same services); one compliance scan at a time (a scheduled
 * tick and an operator's request included).
 */
export function exclusivityIdOf(request: JobRequest): string {
  switch (request.operation) {
    case "RotateFleet":
      return `fleet-${createHash("sha256").update(request.keyUrl.toLowerCase().replace(/\/[0-9a-z]{32}$/, "")).digest("hex").slice(0, 40)}`;
    case "ComplianceScan":
      return "compliance-scan";
    default:
      return exclusivityId(request.fhirServiceId);
  }
}

/**
 * The delivery job of a finished job's webhook, keyed by the job's id: queued once per job. Another type
 * (job.approval_requested) is keyed by the job's id and the type, and its body is Standard Webhooks'
 * payload shape, `{ type, timestamp, data: <monitor> }`; the end's body stays the monitor itself.
 */
export async function enqueueWebhook(
  queue: WebhooksQueue,
  monitor: JobStatusMonitor,
  url: string,
  settings: { backoffMs: number; keepSeconds: number; type?: WebhookType },
): Promise<void> {
  const { callback: _omitted, ...data } = monitor;
  const { type } = settings;
  const body = type ? { type, timestamp: new Date().toISOString(), data } : data;
  await queue.add(
    "deliver",
    { jobId: monitor.id, url, body: JSON.stringify(body), ...(monitor.ticket ? { ticketId: monitor.ticket.id } : {}), ...(type ? { type } : {}) },
    {
      jobId: webhookJobId(monitor.id, type),
      attempts: webhookAttempts(settings.backoffMs),
      backoff: { type: "webhook", delay: settings.backoffMs },
      removeOnComplete: { age: settings.keepSeconds },
      removeOnFail: { age: settings.keepSeconds },
    },
  );
}

/** The webhooks queue's id of a job's webhook of `type` (the end's: the job's own id). */
export function webhookJobId(jobId: string, type?: WebhookType): string {
  return type ? `${jobId}-${type.replace(/\./g, "-")}` : jobId;
}
