import { approvalFor, type ApprovalPolicy } from "../domain/governance.js";
import type { FollowMove } from "../domain/compliance/follow.js";
import type { ChangeJobData } from "../domain/job-record.js";
import type { AddOutcome } from "./job-store.js";
import type { ComplianceReports } from "./compliance-reports.js";

export type { FollowMove };

/** Who following the latest key version acts as (the monitor's createdBy, the audit's principal). */
export const FOLLOW_PRINCIPAL = "policy:follow-latest-key-version";


export interface FollowOutcome {
  started: number;
  /** Moves a RotateKey was started for before (by a scan or an event). */
  already: number;
  /** Services with another change running: not started (claim given back), the next scan or event tries again. */
  busy: number;
}

/**
 * CMK_FOLLOW_LATEST_KEY_VERSION: one RotateKey (`useLatestExistingVersion`) per service behind its key's
 * newest version, added as any change is (one unfinished job per service, CMK_APPROVALS, the worker's ARM
 * pacing), created by FOLLOW_PRINCIPAL. A move is claimed first (SET NX per service and target version,
 * one pipeline for all): a scan and an event, or two workers, never start two jobs for the same move.
 */
export async function followLatestVersion(
  store: { addChange(data: ChangeJobData): Promise<AddOutcome>; compliance: ComplianceReports },
  moves: readonly FollowMove[],
  approvals: ApprovalPolicy | undefined,
): Promise<FollowOutcome> {
  const claims = await store.compliance.claimFollow(moves);
  const claimed = moves.filter((_, i) => claims[i]);
  const outcome: FollowOutcome = { started: 0, already: moves.length - claimed.length, busy: 0 };
  const giveBack: FollowMove[] = [];
  for (const move of claimed) {
    const now = new Date();
    const request = { operation: "RotateKey" as const, fhirServiceId: move.fhirServiceId, useLatestExistingVersion: true };
    const approval = approvalFor(request, approvals, now);
    try {
      const added = await store.addChange({ request, createdBy: FOLLOW_PRINCIPAL, createdById: FOLLOW_PRINCIPAL, createdDateTime: now.toISOString(), ...(approval ? { approval } : {}) });
      if (added.accepted) outcome.started += 1;
      else {
        outcome.busy += 1;
        giveBack.push(move);
      }
    } catch (error) {
      giveBack.push(move, ...claimed.slice(claimed.indexOf(move) + 1));
      await store.compliance.releaseFollow(giveBack).catch(() => undefined);
      throw error;
    }
  }
  await store.compliance.releaseFollow(giveBack);
  return outcome;
}
