import type { Principal } from "../security/principal.js";
import type { AuditRecord } from "../schemas/audit.js";
import type { JobStatusMonitor } from "../schemas/jobs.js";
import { isTerminal } from "../domain/job-record.js";

/** The API's answer to one change request, as the audit trail needs it. Pure: no I/O. */
export interface ChangeRequestAnswer {
  principal: Principal | null;
  ip: string;
  userAgent: string | undefined;
  /** The server's own request id. */
  requestId: string;
  /** The caller's X-Request-Id, when it passed `clientRequestIdOf`. */
  clientRequestId: string | undefined;
  statusCode: number;
  /** The body as sent: untrusted when the request was refused. */
  body: unknown;
  /** The status monitor of an accepted request. */
  monitor: JobStatusMonitor | undefined;
  /** The problem `code` of a refused request. */
  problemCode: string | undefined;
  replayed: boolean;
  now: Date;
  /** A rollback: the job whose change it undoes. */
  rollbackOf?: string | undefined;
}

/** A string from untrusted input, cut to the audit schema's bound; anything else is dropped. */
function bounded(value: unknown, max: number): string | undefined {
  return typeof value === "string" && value !== "" ? value.slice(0, max) : undefined;
}

function member(container: unknown, name: string): unknown {
  return typeof container === "object" && container !== null ? (container as Record<string, unknown>)[name] : undefined;
}

/** Drops undefined members, so stored entries stay small and the response schema sees no holes. */
function compact<T extends object>(record: T): T {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined)) as T;
}

function ticketOf(ticket: unknown): AuditRecord["ticket"] {
  if (typeof ticket !== "object" || ticket === null) return undefined;
  const result = compact({ system: bounded(member(ticket, "system"), 50), id: bounded(member(ticket, "id"), 100), url: bounded(member(ticket, "url"), 2000) });
  return Object.keys(result).length > 0 ? result : undefined;
}

/** Accepted (2xx) or Refused (4xx); undefined for answers that are neither (5xx: nothing was decided). */
export function changeRequestRecord(answer: ChangeRequestAnswer): AuditRecord | undefined {
  const accepted = answer.statusCode >= 200 && answer.statusCode < 300;
  if (!accepted && (answer.statusCode < 400 || answer.statusCode >= 500)) return undefined;
  const { body, principal } = answer;
  return compact<AuditRecord>({
    dateTime: answer.now.toISOString(),
    outcome: accepted ? "Accepted" : "Refused",
    code: accepted ? undefined : bounded(answer.problemCode, 100),
    httpStatus: answer.statusCode,
    principal: principal ? { name: principal.name, kind: principal.kind } : { name: "anonymous", kind: "anonymous" },
    client: compact({ ip: answer.ip.slice(0, 100), userAgent: bounded(answer.userAgent, 200) }),
    requestId: bounded(answer.requestId, 100),
    clientRequestId: bounded(answer.clientRequestId, 128),
    jobId: answer.monitor?.id,
    operation: bounded(member(body, "operation"), 50),
    fhirServiceId: bounded(member(body, "fhirServiceId"), 400),
    ticket: ticketOf(member(body, "ticket")),
    keyEncryptionKeyUrl: bounded(member(body, "keyEncryptionKeyUrl") ?? member(body, "keyUrl"), 400),
    identityType: bounded(member(member(body, "identity"), "type"), 50),
    dryRun: member(body, "dryRun") === true ? true : undefined,
    replayed: answer.replayed ? true : undefined,
    rollbackOf: answer.rollbackOf,
  });
}

/** An approver's decision on a job waiting for approval: who decided, when, and the comment. */
export function approvalDecisionRecord(
  monitor: JobStatusMonitor,
  decision: { state: "Approved" | "Rejected"; comment?: string | undefined },
  principal: Principal,
  origin: { ip: string; userAgent: string | undefined; requestId: string; clientRequestId: string | undefined },
  now: Date,
): AuditRecord {
  return compact<AuditRecord>({
    dateTime: now.toISOString(),
    outcome: decision.state,
    principal: { name: principal.name, kind: principal.kind },
    client: compact({ ip: origin.ip.slice(0, 100), userAgent: bounded(origin.userAgent, 200) }),
    requestId: bounded(origin.requestId, 100),
    clientRequestId: bounded(origin.clientRequestId, 128),
    jobId: monitor.id,
    operation: monitor.operation,
    fhirServiceId: monitor.fhirServiceId,
    ticket: monitor.ticket,
    comment: bounded(decision.comment, 1000),
    rollbackOf: monitor.rollbackOf,
  });
}

/** How a job ended (Succeeded, Failed, Canceled); undefined while it is not terminal. */
export function jobOutcomeRecord(monitor: JobStatusMonitor, now: Date): AuditRecord | undefined {
  if (!isTerminal(monitor.status)) return undefined;
  const { result } = monitor;
  return compact<AuditRecord>({
    dateTime: now.toISOString(),
    outcome: monitor.status as AuditRecord["outcome"],
    code: monitor.error?.code,
    principal: { name: monitor.createdBy },
    jobId: monitor.id,
    operation: monitor.operation,
    fhirServiceId: monitor.fhirServiceId,
    ticket: monitor.ticket,
    previousKeyEncryptionKeyUrl: result?.previousKeyEncryptionKeyUrl,
    keyEncryptionKeyUrl: result?.keyEncryptionKeyUrl ?? result?.targetKeyEncryptionKeyUrl,
    previousIdentityType: result?.previousIdentityType,
    identityType: result?.identityType,
    dryRun: monitor.dryRun ? true : undefined,
    rollbackOf: monitor.rollbackOf,
  });
}
