import { createHash } from "node:crypto";
import { canonicalArmId } from "../domain/arm-ids.js";

/**
 * Redis keys the service keeps beside BullMQ's own (`{prefix}:changes:*`, `{prefix}:webhooks:*`) for
 * each change job: list indexes, the event log behind `/events`, the cancel/write control record and
 * webhook deliveries. All under `{prefix}:jobs:`, so one prefix still holds a whole deployment.
 */
export function jobKeys(prefix: string) {
  const base = `${prefix}:jobs`;
  return {
    /** Sorted set of every job (list index, see job-index.ts). */
    indexAll: `${base}:idx:all`,
    indexOperation: (operation: string) => `${base}:idx:operation:${operation}`,
    indexFhirService: (fhirServiceId: string) => `${base}:idx:fhir:${fhirServiceKey(fhirServiceId)}`,
    indexTicket: (ticketId: string) => `${base}:idx:ticket:${encodeURIComponent(ticketId)}`,
    /** Jobs of one subscription (lower-case id): scoped callers page through these. */
    indexSubscription: (subscriptionId: string) => `${base}:idx:subscription:${subscriptionId.toLowerCase()}`,
    /** Redis stream of the job's status monitors, one entry per change (the ids are the SSE event ids). */
    events: (jobId: string) => `${base}:${jobId}:events`,
    /** Hash: `cancel` (who asked, when) and `committed` (the step that began writing, or how the job ended). */
    control: (jobId: string) => `${base}:${jobId}:control`,
    /** List of webhook delivery attempts (JSON), oldest first. */
    callback: (jobId: string) => `${base}:${jobId}:callback`,
    /** Pub/sub channel every event-log entry is published on (one subscription per API process). */
    eventsChannel: `${base}:events`,
  };
}

export type JobKeys = ReturnType<typeof jobKeys>;

/** FHIR service ids compare case-insensitively (ARM ids do); the index key uses a hash of the canonical id. */
export function fhirServiceKey(fhirServiceId: string): string {
  return createHash("sha256").update(canonicalArmId(fhirServiceId)).digest("hex").slice(0, 40);
}
