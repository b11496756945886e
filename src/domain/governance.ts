import type { FieldError } from "../errors.js";
import type { Schedule } from "../schemas/common.js";
import type { Approval, ApprovalState } from "../schemas/jobs.js";
import type { ChangeJobData } from "./job-record.js";

/**
 * Change governance (api-contract v1.1): approvals (four eyes), change windows. Pure: the API decides
 * with these when it accepts and when an approver decides, the worker when a waiting job comes due.
 *
 * A change that needs approval, or whose window opens later, is added to the queue as a BullMQ delayed
 * job: it holds its FHIR service's lock (the deduplication id) but no worker slot, and nothing polls it.
 * It comes due at the earliest moment something can happen without a caller: the approval's expiry or
 * the window's end (still awaiting approval), or the window's start (approved). An approval moves it
 * forward to its window's start, or to now.
 */

/** Error codes that end a job Canceled rather than Failed: nothing was written, by someone's decision or by time. */
export const CANCELED_CODES: ReadonlySet<string> = new Set(["Canceled", "Rejected", "ApprovalExpired", "ChangeWindowMissed"]);

/** Steps a waiting job shows as its currentStep. */
export const AWAITING_APPROVAL = "AwaitingApproval";
export const AWAITING_CHANGE_WINDOW = "AwaitingChangeWindow";

/** What a job ended by governance before any step was waiting for (a worker's gate knows it exactly). */
export function awaitedBefore(code: string): string | undefined {
  if (code === "Rejected" || code === "ApprovalExpired") return AWAITING_APPROVAL;
  if (code === "ChangeWindowMissed") return AWAITING_CHANGE_WINDOW;
  return undefined;
}

/** How far ahead a window may open or close. */
export const MAX_SCHEDULE_AHEAD_MS = 90 * 24 * 3_600_000;

/** An approver's decision as stored beside the job (its `approval` hash field); absent while Pending. */
export interface ApprovalDecision {
  state: Exclude<ApprovalState, "Pending">;
  decidedBy?: string;
  /** The principal id (apiKey:<name> / token:<subject>), never shown. */
  decidedById?: string;
  decidedDateTime: string;
  comment?: string;
}

/** CMK_APPROVALS and CMK_APPROVAL_TTL_HOURS. */
export interface ApprovalPolicy {
  required: boolean;
  ttlMs: number;
}

/**
 * The approval a new job waits for, if any: every change that would write to Azure under
 * CMK_APPROVALS=required. Dry runs and compliance scans write nothing; a fleet rotation is approved once,
 * on its parent.
 */
export function approvalFor(request: Pick<ChangeJobData["request"], "operation" | "dryRun">, policy: ApprovalPolicy | undefined, now: Date): ChangeJobData["approval"] {
  if (!policy?.required || request.dryRun || request.operation === "ComplianceScan") return undefined;
  return { expiresDateTime: new Date(now.getTime() + policy.ttlMs).toISOString() };
}

/** Whether `data` waits for an approval: set once, when the change was accepted. */
export function needsApproval(data: Pick<ChangeJobData, "approval">): boolean {
  return data.approval !== undefined;
}

/** The approval as the monitor shows it: Pending until a decision is stored. */
export function approvalView(data: Pick<ChangeJobData, "approval">, decision: ApprovalDecision | undefined): Approval | undefined {
  if (!data.approval) return undefined;
  if (!decision) return { state: "Pending", expiresDateTime: data.approval.expiresDateTime };
  return {
    state: decision.state,
    ...(decision.decidedBy ? { decidedBy: decision.decidedBy } : {}),
    decidedDateTime: decision.decidedDateTime,
    ...(decision.comment ? { comment: decision.comment } : {}),
  };
}

export function parseDecision(raw: string | undefined | null): ApprovalDecision | undefined {
  if (!raw) return undefined;
  try {
    const parsed = JSON.parse(raw) as ApprovalDecision;
    return typeof parsed === "object" && parsed !== null && typeof parsed.state === "string" ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A window's problems, each naming its field: notAfter not after notBefore, notAfter already past, either
 * more than 90 days ahead. A notBefore in the past is an open window (the change may start now).
 */
export function scheduleProblems(schedule: Schedule | undefined, now: Date, base = "/body/schedule"): FieldError[] {
  if (!schedule) return [];
  const problems: FieldError[] = [];
  const nowMs = now.getTime();
  const notBefore = schedule.notBefore === undefined ? undefined : Date.parse(schedule.notBefore);
  const notAfter = schedule.notAfter === undefined ? undefined : Date.parse(schedule.notAfter);
  for (const [field, value] of [["notBefore", notBefore], ["notAfter", notAfter]] as const) {
    if (value !== undefined && value - nowMs > MAX_SCHEDULE_AHEAD_MS) {
      problems.push({ path: `${base}/${field}`, message: `must be at most 90 days ahead (before ${new Date(nowMs + MAX_SCHEDULE_AHEAD_MS).toISOString()})` });
    }
  }
  if (notAfter !== undefined && notBefore !== undefined && notAfter <= notBefore) {
    problems.push({ path: `${base}/notAfter`, message: `must be after notBefore (${schedule.notBefore}): the window would be empty` });
  } else if (notAfter !== undefined && notAfter <= nowMs) {
    problems.push({ path: `${base}/notAfter`, message: `is in the past (now ${now.toISOString()}): send a window that has not closed yet` });
  }
  return problems;
}

function ms(dateTime: string | undefined): number | undefined {
  if (dateTime === undefined) return undefined;
  const value = Date.parse(dateTime);
  return Number.isFinite(value) ? value : undefined;
}

/** When a change that waits for nobody may start: its window's start, or now. */
export function releaseAtMs(data: Pick<ChangeJobData, "request">, nowMs: number): number {
  return Math.max(nowMs, ms(data.request.schedule?.notBefore) ?? nowMs);
}

/**
 * The delay a new job is added with (0: none): until its approval's expiry or its window's end, while it
 * awaits approval; until its window's start otherwise. Dry runs never wait.
 */
export function initialDelayMs(data: Pick<ChangeJobData, "request" | "approval">, nowMs: number): number {
  if (data.request.dryRun) return 0;
  if (data.approval) {
    const until = Math.min(ms(data.approval.expiresDateTime) ?? nowMs, ms(data.request.schedule?.notAfter) ?? Number.POSITIVE_INFINITY);
    return Math.max(0, until - nowMs);
  }
  return releaseAtMs(data, nowMs) - nowMs;
}

export type GateDecision =
  | { kind: "run" }
  /** Not yet: back to the delayed set until `untilMs`. */
  | { kind: "wait"; untilMs: number; step: typeof AWAITING_APPROVAL | typeof AWAITING_CHANGE_WINDOW }
  /** Ends Canceled with `code`, nothing written. `expire`: the approval must first be marked Expired (atomically). */
  | { kind: "end"; code: "Rejected" | "ApprovalExpired" | "ChangeWindowMissed"; message: string; expire?: boolean };

/**
 * What a worker does with a change job it has just taken, before any step: run it, put it back until
 * later, or end it. `wrote`: an earlier attempt began writing to Azure (then the change must finish,
 * window or not).
 */
export function gateDecision(data: ChangeJobData, decision: ApprovalDecision | undefined, nowMs: number, wrote: boolean): GateDecision {
  if (data.request.dryRun || wrote) return { kind: "run" };
  const notBefore = ms(data.request.schedule?.notBefore);
  const notAfter = ms(data.request.schedule?.notAfter);
  const windowMissed = (why: string): GateDecision => ({
    kind: "end",
    code: "ChangeWindowMissed",
    message: `The change window closed at ${data.request.schedule!.notAfter} ${why}; nothing was written. Submit it again with a new window.`,
  });
  if (data.approval) {
    if (decision?.state === "Rejected") {
      return { kind: "end", code: "Rejected", message: `Rejected by ${decision.decidedBy ?? "an approver"} at ${decision.decidedDateTime}${decision.comment ? `: ${decision.comment}` : ""}; nothing was written.` };
    }
    if (decision?.state === "Expired") return approvalExpired(data);
    if (decision === undefined) {
      const expires = ms(data.approval.expiresDateTime) ?? nowMs;
      if (notAfter !== undefined && nowMs >= notAfter && notAfter < expires) return windowMissed("while the change was still awaiting approval");
      if (nowMs >= expires) return { ...approvalExpired(data), expire: true };
      return { kind: "wait", untilMs: Math.min(expires, notAfter ?? Number.POSITIVE_INFINITY), step: AWAITING_APPROVAL };
    }
  }
  if (notAfter !== undefined && nowMs >= notAfter) return windowMissed("before the change could start");
  if (notBefore !== undefined && nowMs < notBefore) return { kind: "wait", untilMs: notBefore, step: AWAITING_CHANGE_WINDOW };
  return { kind: "run" };
}

function approvalExpired(data: ChangeJobData): Extract<GateDecision, { kind: "end" }> {
  return {
    kind: "end",
    code: "ApprovalExpired",
    message: `No approver decided before ${data.approval!.expiresDateTime} (CMK_APPROVAL_TTL_HOURS); nothing was written. Submit the change again.`,
  };
}

/**
 * What a job that has run no step waits for now, as its monitor shows it (undefined: nothing). Read-time,
 * so a job whose window has opened stops showing AwaitingChangeWindow before a worker takes it.
 */
export function awaiting(data: ChangeJobData, decision: ApprovalDecision | undefined, nowMs: number): string | undefined {
  if (data.request.dryRun) return undefined;
  if (data.approval && decision === undefined) return AWAITING_APPROVAL;
  const notBefore = ms(data.request.schedule?.notBefore);
  if (notBefore !== undefined && nowMs < notBefore && (!data.approval || decision?.state === "Approved")) return AWAITING_CHANGE_WINDOW;
  return undefined;
}
