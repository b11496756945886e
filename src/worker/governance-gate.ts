import { DelayedError, UnrecoverableError, type Job } from "bullmq";
import { AWAITING_APPROVAL, AWAITING_CHANGE_WINDOW, gateDecision, type GateDecision } from "../domain/governance.js";
import { canceledProgress, jobTarget, type ChangeJobData, type JobProgress } from "../domain/job-record.js";
import { stepPlanOf } from "../domain/operation-plans.js";
import type { JobStore } from "../job-store/job-store.js";

/**
 * The worker's side of change governance, before a job's first step (domain/governance.ts): a job whose
 * approval or window is not there yet goes back to the delayed set (no slot held while it waits), one
 * whose approval expired, was rejected or whose window closed ends Canceled with that code, having
 * written nothing. An expiry is decided by the same script as an approval, so an approver and the
 * expiry never both win.
 */
export async function passGovernanceGate(job: Job<ChangeJobData>, token: string | undefined, store: JobStore, nowMs = Date.now()): Promise<void> {
  const { data } = job;
  if (data.request.dryRun || (!data.approval && !data.request.schedule)) return;
  const { decision, wrote } = await store.gateState(job.id!);
  let verdict: GateDecision = gateDecision(data, decision, nowMs, wrote);
  if (verdict.kind === "end" && verdict.expire) {
    const outcome = await store.decideApproval(job.id!, { state: "Expired", decidedDateTime: new Date(nowMs).toISOString() });
    if (outcome.kind === "alreadyDecided") verdict = gateDecision(data, outcome.decision, nowMs, wrote);
  }
  switch (verdict.kind) {
    case "run":
      return;
    case "wait":
      await job.moveToDelayed(verdict.untilMs, token);
      throw new DelayedError(`waiting (${verdict.step}) until ${new Date(verdict.untilMs).toISOString()}`);
    case "end": {
      const now = new Date(nowMs);
      const saved = job.progress as JobProgress | number | undefined;
      const progress = canceledProgress(
        typeof saved === "object" && saved !== null && Array.isArray(saved.steps) ? saved : undefined,
        stepPlanOf(data.request.operation),
        { by: "governance", dateTime: now.toISOString() },
        jobTarget(data.request),
        now,
        { code: verdict.code, message: verdict.message, target: jobTarget(data.request) },
      );
      // What it was waiting for when it ended.
      const waitedFor = verdict.code === "ChangeWindowMissed" && (!data.approval || decision?.state === "Approved") ? AWAITING_CHANGE_WINDOW : AWAITING_APPROVAL;
      const ranStep = progress.steps.some((step) => step.startedDateTime !== undefined);
      await job.updateProgress({ ...progress, currentStep: ranStep ? progress.currentStep : waitedFor } as unknown as object);
      throw new UnrecoverableError(`${verdict.code}: ${verdict.message}`);
    }
  }
}
