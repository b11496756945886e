import type { Schedule, Ticket } from "../schemas/common.js";
import type { SetKeyRequest } from "../schemas/change-requests.js";
import type { JobStatusMonitor } from "../schemas/jobs.js";
import type { ChangeJobData, JobProgress } from "./job-record.js";

/**
 * Rollback (api-contract v1.1 "Change governance"): a Succeeded SetKey or RotateKey is undone by a new
 * SetKey that restores the key URL and identity the job replaced, as its worker recorded them right
 * before its first write (`JobProgress.replaced`). Pure.
 *
 * A job that replaced a Microsoft-managed key cannot be undone: the REST definition of
 * Microsoft.HealthcareApis (workspaces/fhirservices, `Encryption`) has `keyEncryptionKeyUrl` as an
 * optional, writable string with no x-ms-mutability limit, so a PUT may leave it out; but nothing
 * defines that leaving it out returns the service to Microsoft-managed keys (the documentation only
 * describes setting and rotating a customer-managed key, and Azure API for FHIR documents that CMK
 * cannot be turned off). A PUT without the key would at best keep the key and at worst be refused, so
 * the service refuses to promise it.
 */

export interface RollbackOptions {
  schedule?: Schedule | undefined;
  ticket?: Ticket | undefined;
  callbackUrl?: string | undefined;
}

export type RollbackPlan = { request: SetKeyRequest } | { reason: string; code: string };

const ROLLBACKABLE = new Set(["SetKey", "RotateKey"]);

export function rollbackPlan(job: { data: ChangeJobData; progress: JobProgress | undefined; monitor: JobStatusMonitor }, options: RollbackOptions = {}): RollbackPlan {
  const { data, progress, monitor } = job;
  const { request } = data;
  if (!ROLLBACKABLE.has(request.operation) || request.operation === "RotateFleet" || request.operation === "ComplianceScan") {
    return { code: "OperationNotRollbackable", reason: `Only SetKey, RotateKey and fleet rotations can be rolled back; job ${monitor.id} is ${request.operation}.` };
  }
  if (monitor.status !== "Succeeded") return { code: "NotSucceeded", reason: `Job ${monitor.id} did not succeed (it is ${monitor.status}); only a Succeeded change can be rolled back.` };
  if (request.dryRun) return { code: "NoWrite", reason: `Job ${monitor.id} was a dry run: it made no write, so there is nothing to restore.` };
  const replaced = progress?.replaced;
  if (!replaced || monitor.result?.armWrites === 0) {
    return { code: "NoWrite", reason: `Job ${monitor.id} made no write (the service already had the key and identity it asked for): there is nothing to restore.` };
  }
  if (!replaced.keyEncryptionKeyUrl) {
    return {
      code: "MicrosoftManagedKey",
      reason:
        `Job ${monitor.id} replaced a Microsoft-managed key. ARM cannot restore one: the FHIR service's REST definition lets a PUT leave keyEncryptionKeyUrl out, ` +
        "but does not define that this returns the service to Microsoft-managed keys, and the documentation offers no way back. Move the service to another customer-managed key with SetKey instead.",
    };
  }
  if (!replaced.identity) {
    return {
      code: "NoSingleIdentity",
      reason: `Before job ${monitor.id} the service had identity ${replaced.identityType}, which no change request can name: send a SetKey with the identity it should use.`,
    };
  }
  const identityTypeChanges = replaced.identity.type !== (monitor.result?.identityType ?? replaced.identity.type);
  return {
    request: {
      operation: "SetKey",
      fhirServiceId: request.fhirServiceId,
      keyEncryptionKeyUrl: replaced.keyEncryptionKeyUrl,
      identity: replaced.identity,
      ...(identityTypeChanges ? { acknowledgeIdentityTypeChange: true } : {}),
      ...((options.ticket ?? request.ticket) ? { ticket: options.ticket ?? request.ticket } : {}),
      ...(options.callbackUrl ? { callbackUrl: options.callbackUrl } : {}),
      ...(options.schedule ? { schedule: options.schedule } : {}),
    },
  };
}

/**
 * Whether a fleet rotation's parent can be rolled back: it has ended (not a dry run) and at least one of
 * its children moved a service. The rollback is a new parent (`rollbackOf`) whose worker finds, among the
 * original's children, each Succeeded one that wrote and adds one SetKey child per such child
 * (`fleetChildRollbacks`); children with nothing to restore count as skipped.
 */
export function fleetRollbackRefusal(monitor: JobStatusMonitor): { reason: string; code: string } | undefined {
  if (monitor.status !== "Succeeded" && monitor.status !== "Failed" && monitor.status !== "Canceled") {
    return { code: "NotSucceeded", reason: `Fleet rotation ${monitor.id} has not ended (it is ${monitor.status}); roll it back when its last child has ended.` };
  }
  if (monitor.dryRun) return { code: "NoWrite", reason: `Fleet rotation ${monitor.id} was a dry run: it made no write, so there is nothing to restore.` };
  if (!monitor.result?.services?.succeeded) {
    return { code: "NoWrite", reason: `No child of fleet rotation ${monitor.id} moved a service (${monitor.status}${monitor.error ? `, ${monitor.error.code}` : ""}): there is nothing to restore.` };
  }
  return undefined;
}

/** One rollback child of a fleet rollback: the SetKey that undoes child `rollbackOf`, and the key its service is on now. */
export interface FleetChildRollback {
  rollbackOf: string;
  request: SetKeyRequest;
  currentKeyEncryptionKeyUrl: string | undefined;
}

/**
 * The rollback children of a fleet rollback from the original's children: one per Succeeded child that
 * wrote, each restoring what that child replaced (`rollbackPlan`); the others, with why, are skipped.
 */
export function fleetChildRollbacks(
  children: ReadonlyArray<{ data: ChangeJobData; progress: JobProgress | undefined; monitor: JobStatusMonitor }>,
  options: RollbackOptions,
): { rollbacks: FleetChildRollback[]; skipped: Array<{ jobId: string; code: string }> } {
  const rollbacks: FleetChildRollback[] = [];
  const skipped: Array<{ jobId: string; code: string }> = [];
  for (const child of children) {
    const plan = rollbackPlan(child, options);
    if ("reason" in plan) skipped.push({ jobId: child.monitor.id, code: plan.code });
    else rollbacks.push({ rollbackOf: child.monitor.id, request: plan.request, currentKeyEncryptionKeyUrl: child.monitor.result?.keyEncryptionKeyUrl });
  }
  return { rollbacks, skipped };
}
