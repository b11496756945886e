import { createHash } from "node:crypto";
import { canonicalArmId } from "../domain/arm-ids.js";

/** The queue every change request goes through, and the one that delivers webhooks. */
export const CHANGES_QUEUE = "changes";
export const WEBHOOKS_QUEUE = "webhooks";
/** BullMQ's job schedulers (scheduled compliance scans): each tick adds the real job to the changes queue. */
export const SCHEDULES_QUEUE = "schedules";

/**
 * Every Redis key the service uses, under one prefix (CMK_QUEUE_PREFIX), so one prefix holds a whole
 * deployment. BullMQ's own keys are `{prefix}:changes:*` and `{prefix}:webhooks:*` (its layout: see
 * bullmq-layout.ts); beside them, per change job, `{prefix}:jobs:*`; and per deployment the audit trail,
 * idempotency records, rate-limit counters and the page-cursor key. Nothing outside src/job-store builds
 * a key.
 */
export function storeKeys(prefix: string) {
  const base = `${prefix}:jobs`;
  return {
    prefix,
    /** Sorted set of every job (list index, see job-index.ts). */
    indexAll: `${base}:idx:all`,
    indexFhirService: (fhirServiceId: string) => `${base}:idx:fhir:${fhirServiceKey(fhirServiceId)}`,
    indexTicket: (ticketId: string) => `${base}:idx:ticket:${encodeURIComponent(ticketId)}`,
    /** Jobs of one subscription (lower-case id): scoped callers page through these. */
    indexSubscription: (subscriptionId: string) => `${base}:idx:subscription:${subscriptionId.toLowerCase()}`,
    /** Children of one fleet rotation (GET /v1/jobs?parentJobId=). */
    indexParent: (parentJobId: string) => `${base}:idx:parent:${parentJobId.toLowerCase()}`,
    /** Hash of a fleet rotation's own records: its discovered services, target, shared pre-flight facts (fleet-store.ts). */
    fleet: (jobId: string) => `${base}:${jobId}:fleet`,
    /** Hash principal id → role assignments at the key's vault, read once per fleet for every child. */
    fleetRoles: (jobId: string) => `${base}:${jobId}:fleet:roles`,
    /** ARM request budget of one subscription and kind (reads, writes), shared by every worker (arm-budget.ts). */
    armBudget: (subscriptionId: string, kind: string) => `${prefix}:arm-budget:${subscriptionId.toLowerCase()}:${kind}`,
    /** Redis stream of the job's status monitors, one entry per change (the ids are the SSE event ids). */
    events: (jobId: string) => `${base}:${jobId}:events`,
    /** Hash: `cancel` (who asked, when) and `committed` (the step that began writing, or how the job ended). */
    control: (jobId: string) => `${base}:${jobId}:control`,
    /** List of webhook delivery attempts (JSON), oldest first. */
    callback: (jobId: string) => `${base}:${jobId}:callback`,
    /** Pub/sub channel every event-log entry is published on (one subscription per API process). */
    eventsChannel: `${base}:events`,
    /** Idempotency-Key record of one principal's key (a hash of both). */
    idempotency: (digest: string) => `${prefix}:idempotency:${digest}`,
    /** The audit trail (stream) and the summaries of refusals anyone can send (a stream and cap of their own). */
    audit: `${prefix}:audit`,
    auditSummaries: `${prefix}:audit:summaries`,
    /** Request counter of one rate-limit bucket in its current window. */
    rateLimit: (bucket: string) => `${prefix}:rate-limit:${bucket}`,
    /** The AES key continuation tokens are sealed with (security/page-cursor.ts). */
    pageCursorKey: `${prefix}:page-cursor-key`,
  };
}

export type StoreKeys = ReturnType<typeof storeKeys>;

/** FHIR service ids compare case-insensitively (ARM ids do); keys use a hash of the canonical id. */
export function fhirServiceKey(fhirServiceId: string): string {
  return createHash("sha256").update(canonicalArmId(fhirServiceId)).digest("hex").slice(0, 40);
}

/**
 * Keys of Key Vault events received from Event Grid (`POST /v1/events/key-vault`), under the same prefix:
 * one marker per event seen (duplicate suppression), a bounded stream of pending events per versionless
 * key, and a sorted set of the keys that have pending events (by the time of their latest event).
 */
export function keyEventKeys(prefix: string) {
  const base = `${prefix}:key-events`;
  return {
    /** String, set NX with a TTL: the event (source and id) was seen. */
    seen: (eventDigest: string) => `${base}:seen:${eventDigest}`,
    /** Stream of the key's pending events (JSON), newest last, capped. */
    pending: (versionlessKeyUrl: string) => `${base}:pending:${keyDigest(versionlessKeyUrl)}`,
    /** Sorted set: versionless key URL → ms of its latest event. */
    keysWithPending: `${base}:keys`,
  };
}

/** Key Vault key names and hosts compare without case: one digest per versionless key. */
export function keyDigest(versionlessKeyUrl: string): string {
  return createHash("sha256").update(versionlessKeyUrl.toLowerCase()).digest("hex").slice(0, 40);
}

/**
 * Keys of compliance scans (`POST /v1/compliance-scans`, `GET /v1/compliance`): the latest finished
 * report, a scan's report until it is complete, and the markers of RotateKeys started by following the
 * latest key version (one per FHIR service and target version).
 */
export function complianceKeys(prefix: string) {
  const base = `${prefix}:compliance`;
  return {
    /** String: the latest finished scan's report, gzipped JSON. */
    latest: `${base}:latest`,
    /** String: the latest report's counts and the scan's duration (JSON, small: what metrics read). */
    stats: `${base}:stats`,
    /** String: a scan's report (gzipped JSON), from Evaluate until Store makes it the latest. */
    pending: (jobId: string) => `${base}:pending:${jobId}`,
    /** String, set NX: a RotateKey was started for this service and key version by following. */
    followed: (fhirServiceId: string, keyVersionUrl: string) =>
      `${base}:followed:${createHash("sha256").update(`${canonicalArmId(fhirServiceId)}\n${keyVersionUrl.toLowerCase()}`).digest("hex").slice(0, 40)}`,
  };
}
