import type { ApprovalDecision } from "../domain/governance.js";
import { parseDecision } from "../domain/governance.js";
import { JOB_FIELDS } from "./bullmq-layout.js";
import type { ChangesQueue } from "./queue.js";
import type { StoreContext } from "./store-context.js";

/**
 * Approvals in the store. A change that waits for approval is a BullMQ delayed job (see
 * domain/governance.ts); its approval is Pending while its hash has no `approval` field. The first
 * decision is written by one script (scripts/decide-approval-1.lua), so of two approvers, or an approver
 * and the worker's expiry, exactly one wins and the others are told what was decided.
 */

export type DecideOutcome =
  | { kind: "decided" }
  | { kind: "missing" }
  /** The job ended (canceled, expired) before the decision. */
  | { kind: "finished" }
  /** Someone decided first. */
  | { kind: "alreadyDecided"; decision: ApprovalDecision | undefined };

export async function decideApproval(store: StoreContext, queue: ChangesQueue, jobId: string, decision: ApprovalDecision): Promise<DecideOutcome> {
  const [outcome, current] = await store.redis.cmkDecideApproval(queue.toKey(jobId), JSON.stringify(decision));
  switch (outcome) {
    case "ok":
      return { kind: "decided" };
    case "missing":
      return { kind: "missing" };
    case "finished":
      return { kind: "finished" };
    default:
      return { kind: "alreadyDecided", decision: parseDecision(current) };
  }
}

/**
 * Moves an approved job from its wait for a decision to its window's start (`delayMs` from now), or
 * to the front of the queue (0). A job no longer delayed (a worker holds it) is left alone: the worker
 * reads the decision itself. Returns whether the job was moved.
 */
export async function releaseApproved(queue: ChangesQueue, jobId: string, delayMs: number): Promise<boolean> {
  const job = await queue.getJob(jobId);
  if (!job) return false;
  try {
    if (delayMs > 0) await job.changeDelay(delayMs);
    else await job.promote();
    return true;
  } catch {
    // Not in the delayed set any more: taken by a worker (which decides from the stored decision) or ended.
    return false;
  }
}

/** What a worker's gate reads before a job's first step: the decision, and whether a write was claimed. */
export async function gateState(store: StoreContext, queue: ChangesQueue, jobId: string): Promise<{ decision: ApprovalDecision | undefined; wrote: boolean }> {
  const results = (await store.redis.pipeline().hget(queue.toKey(jobId), JOB_FIELDS.approval).hget(store.keys.control(jobId), "committed").exec()) as Array<
    [Error | null, string | null]
  > | null;
  const [approvalError, approval] = results?.[0] ?? [new Error("pipeline discarded"), null];
  const [controlError, committed] = results?.[1] ?? [new Error("pipeline discarded"), null];
  if (approvalError || controlError) throw approvalError ?? controlError;
  return { decision: parseDecision(approval), wrote: typeof committed === "string" && committed !== "" };
}
