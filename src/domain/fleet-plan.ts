import { createHash } from "node:crypto";
import { canonicalArmId } from "./arm-ids.js";
import { formatKeyUrl, parseKeyUrl, type KeyUrl } from "./key-url.js";
import type { JobErrorBody, JobStatus } from "../schemas/jobs.js";
import type { FleetServiceCounts } from "../schemas/key-rotations.js";

/**
 * Fleet rotation, the pure part: which discovered FHIR services are on the key, which of them move and
 * which are already on the target (skipped), the children's deterministic job ids, which version is the
 * target, and the parent's counts and outcome from its children's states. No I/O.
 */

/** A FHIR service as discovery lists it: just what planning needs (the child reads the rest itself). */
export interface FleetService {
  id: string;
  keyEncryptionKeyUrl?: string;
  /** Its user-assigned identities, whose principals the parent reads once for all children. */
  userAssignedIdentityIds?: string[];
  /** Region, identity type and system-assigned principal, as the list shows them (what a compliance scan judges from). */
  location?: string;
  identityType?: string;
  principalId?: string;
}

export interface FleetPlan {
  /** Services on the key but not on the target version: one child each. */
  move: FleetService[];
  /** Services already on the target version. */
  skip: FleetService[];
}

/** True when `url` is a version (any) of the versionless `key`: same vault host and key name, any case. */
export function namesKey(key: Pick<KeyUrl, "host" | "keyName">, url: string | undefined): boolean {
  const parsed = url ? parseKeyUrl(url.toLowerCase()) : undefined;
  return parsed !== undefined && parsed.host === key.host.toLowerCase() && parsed.keyName === key.keyName.toLowerCase();
}

/** Which services on `key` move to `target` (a versioned URL of it) and which already use it; services on other keys are not the fleet's. */
export function planFleet(services: readonly FleetService[], key: Pick<KeyUrl, "host" | "keyName">, target: string): FleetPlan {
  const plan: FleetPlan = { move: [], skip: [] };
  const seen = new Set<string>();
  for (const service of services) {
    const id = canonicalArmId(service.id);
    if (seen.has(id) || !namesKey(key, service.keyEncryptionKeyUrl)) continue;
    seen.add(id);
    (service.keyEncryptionKeyUrl!.toLowerCase() === target.toLowerCase() ? plan.skip : plan.move).push(service);
  }
  return { move: interleaveBySubscription(plan.move), skip: plan.skip };
}

/**
 * The services taken in turn from each subscription (in the order the subscriptions first appear). Each
 * subscription has its own ARM write budget and workers take children first in, first out: in discovery
 * order the first subscription's children would fill every worker slot, all waiting for that one budget,
 * while the other subscriptions' budgets went unused (the fleet would write at 1/n of what ARM allows).
 */
export function interleaveBySubscription<T extends { id: string }>(services: readonly T[]): T[] {
  const bySubscription = new Map<string, T[]>();
  for (const service of services) {
    const subscription = /^\/subscriptions\/([^/]+)/i.exec(service.id)?.[1]?.toLowerCase() ?? "";
    const list = bySubscription.get(subscription) ?? [];
    if (list.length === 0) bySubscription.set(subscription, list);
    list.push(service);
  }
  const lists = [...bySubscription.values()];
  const interleaved: T[] = [];
  for (let index = 0; interleaved.length < services.length; index += 1) {
    for (const list of lists) if (index < list.length) interleaved.push(list[index]!);
  }
  return interleaved;
}

/**
 * The child job id of one service of one fleet rotation: the same on every attempt of the parent, so a
 * parent that fans out again after a restart adds no second child (BullMQ keeps one job per id). Shaped as
 * a UUID, as every job id is.
 */
export function fleetChildJobId(parentJobId: string, fhirServiceId: string): string {
  return derivedJobId(`${parentJobId.toLowerCase()}\n${canonicalArmId(fhirServiceId)}`);
}

/** A job id (UUID form, version 8: custom) derived from `text`: the same text, the same job, however often it is added. */
export function derivedJobId(text: string): string {
  const hex = createHash("sha256").update(text).digest("hex");
  const variant = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

export interface KeyVersionFacts {
  /** Versioned key URL. */
  url: string;
  enabled: boolean;
  createdOn?: Date;
  notBefore?: Date;
  expiresOn?: Date;
}

/** The newest enabled version usable now (created last; inside its nbf/exp), or undefined. */
export function newestEnabledVersion(versions: readonly KeyVersionFacts[], now: Date): KeyVersionFacts | undefined {
  const usable = versions.filter(
    (version) => version.enabled && (!version.notBefore || version.notBefore <= now) && (!version.expiresOn || version.expiresOn > now),
  );
  return usable.sort((a, b) => (b.createdOn?.getTime() ?? 0) - (a.createdOn?.getTime() ?? 0))[0];
}

/** The version a `createNewVersion` attempt made: one that was not there before it. */
export function versionMadeSince(before: readonly string[], now: readonly KeyVersionFacts[]): KeyVersionFacts | undefined {
  const known = new Set(before.map((url) => url.toLowerCase()));
  return now.filter((version) => !known.has(version.url.toLowerCase())).sort((a, b) => (b.createdOn?.getTime() ?? 0) - (a.createdOn?.getTime() ?? 0))[0];
}

/** The versioned URL of `version` of the versionless `key`. */
export function targetUrl(key: Pick<KeyUrl, "vaultUrl" | "keyName">, version: string): string {
  return formatKeyUrl(key.vaultUrl, key.keyName, version);
}

/** A child's state as the parent sees it: not added yet (its service has another change running), unfinished, or how it ended. */
export type ChildState = "Waiting" | "Running" | Extract<JobStatus, "Succeeded" | "Failed" | "Canceled">;

export function isChildEnded(state: ChildState): boolean {
  return state === "Succeeded" || state === "Failed" || state === "Canceled";
}

/** The parent's `result.services` from its plan and its children's states. */
export function fleetCounts(plan: { move: number; skip: number }, states: Iterable<ChildState>): FleetServiceCounts {
  const counts: FleetServiceCounts = { total: plan.move + plan.skip, succeeded: 0, failed: 0, skipped: plan.skip, canceled: 0 };
  for (const state of states) {
    if (state === "Succeeded") counts.succeeded += 1;
    else if (state === "Failed") counts.failed += 1;
    else if (state === "Canceled") counts.canceled += 1;
  }
  return counts;
}

/** Share of the children that ended (0-1); 1 with none to move. */
export function fleetFraction(counts: FleetServiceCounts): number {
  const moving = counts.total - counts.skipped;
  return moving === 0 ? 1 : (counts.succeeded + counts.failed + counts.canceled) / moving;
}

/** The parent's error when children failed: FleetPartiallyFailed, one detail per failed child. */
export function fleetFailure(keyUrl: string, counts: FleetServiceCounts, failed: ReadonlyArray<{ fhirServiceId: string; jobId: string; error?: { code: string; message: string } }>): JobErrorBody | undefined {
  if (counts.failed === 0) return undefined;
  return {
    code: "FleetPartiallyFailed",
    message: `${counts.failed} of ${counts.total - counts.skipped} services could not be moved (${counts.succeeded} succeeded, ${counts.skipped} already on the target, ${counts.canceled} canceled); see details and GET /v1/jobs?parentJobId=.`,
    target: keyUrl,
    details: failed.map((child) => ({
      code: child.error?.code ?? "Failed",
      message: `Job ${child.jobId}: ${child.error?.message ?? "failed"}`,
      target: child.fhirServiceId,
    })),
  };
}
