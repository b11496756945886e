import type { JobErrorBody } from "./schemas/jobs.js";

/**
 * Every error the service reports has a stable PascalCase `code` callers can branch on and an HTTP
 * status. Routes throw these; the one error handler (plugins/app/error-handler.ts) turns them into
 * RFC 9457 problem details. Nothing else builds error responses.
 */

export interface FieldError {
  path: string;
  message: string;
}

export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  code: string;
  [extension: string]: unknown;
}

export class ApiError extends Error {
  constructor(
    readonly code: string,
    readonly statusCode: number,
    readonly title: string,
    detail: string,
    /** Extra problem members (e.g. `errors`, `activeJobId`); never secrets. */
    readonly extensions: Record<string, unknown> = {},
    /** Response headers that belong to this problem, e.g. Retry-After. */
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
    this.name = new.target.name;
  }
}

export class ValidationFailedError extends ApiError {
  constructor(errors: FieldError[], detail = describeFieldErrors(errors), extensions: Record<string, unknown> = {}) {
    super("ValidationFailed", 400, "The request is not valid", detail, { errors, ...extensions });
  }
}

export class UnauthorizedError extends ApiError {
  constructor(detail = "Send an API key in the x-api-key header or an Entra ID token in Authorization: Bearer.") {
    super("Unauthorized", 401, "Authentication is required", detail, {}, { "www-authenticate": 'Bearer realm="cmk-service", ApiKey header="x-api-key"' });
  }
}

export class ForbiddenError extends ApiError {
  constructor(requiredRole: string, detail = `This operation needs the ${requiredRole} role.`) {
    super("Forbidden", 403, "The credential's role is too low", detail, { requiredRole });
  }
}

/** The credential has the role but is limited to other subscriptions (its allow-list). */
export class SubscriptionNotAllowedError extends ApiError {
  /** `allowed` empty: a token that no CMK_TOKEN_SUBSCRIPTIONS entry names, which may act on none. */
  constructor(subscriptionId: string, allowed?: readonly string[]) {
    super(
      "Forbidden",
      403,
      "The credential may not act on this subscription",
      allowed?.length === 0
        ? `This credential may act on no subscription: CMK_TOKEN_SUBSCRIPTIONS names neither its application, its object id nor its groups; it may not act on subscription ${subscriptionId}.`
        : `This credential is limited to other subscriptions; it may not act on subscription ${subscriptionId}.`,
      { subscriptionId },
    );
  }
}

/**
 * Entra left the token's groups out (group overage: more groups than a token holds, `_claim_names` or
 * `hasgroups` instead of `groups`) and only groups could grant it subscriptions; Graph is not asked.
 */
export class TokenGroupOverageError extends ApiError {
  constructor() {
    super(
      "TokenGroupOverage",
      403,
      "The token's groups are not in it",
      "The token has more groups than Entra ID puts in a token (group overage: no groups claim), and group overage is not supported: " +
        "this API does not look groups up in Microsoft Graph, so CMK_TOKEN_SUBSCRIPTIONS cannot grant subscriptions by group. " +
        "Ask an administrator to list the application (client) id or the user's object id in CMK_TOKEN_SUBSCRIPTIONS, " +
        "or to have the API's app registration emit only the groups assigned to it (groupMembershipClaims: ApplicationGroup).",
    );
  }
}

export class TooManyRequestsError extends ApiError {
  constructor(retryAfterSeconds: number, what = "This credential (or address) sent too many requests") {
    const seconds = String(Math.max(1, Math.ceil(retryAfterSeconds)));
    super("TooManyRequests", 429, "Too many requests", `${what}; retry in ${seconds} s.`, {}, { "retry-after": seconds });
  }
}

/** GET /v1/jobs/{jobId}/events beyond CMK_SSE_MAX_STREAMS_PER_CREDENTIAL or CMK_SSE_MAX_STREAMS. */
export class TooManyEventStreamsError extends ApiError {
  constructor(scope: "credential" | "process", limit: number, retryAfterSeconds = 10) {
    super(
      "TooManyEventStreams",
      429,
      "Too many open event streams",
      scope === "credential"
        ? `This credential already holds ${limit} event streams open, the most one credential may; close one, or poll GET /v1/jobs/{jobId}.`
        : `This API process already holds ${limit} event streams open, the most it may; retry later, or poll GET /v1/jobs/{jobId}.`,
      { limit },
      { "retry-after": String(retryAfterSeconds) },
    );
  }
}

export class NotFoundError extends ApiError {
  constructor(what: string) {
    super("NotFound", 404, "Not found", `${what} was not found.`);
  }
}

export class FhirServiceNotFoundError extends ApiError {
  constructor(ref: { id: string; fhirService: string; workspace: string }) {
    super("FhirServiceNotFound", 404, "The FHIR service was not found", `FHIR service ${ref.fhirService} was not found in workspace ${ref.workspace}.`, { fhirServiceId: ref.id });
  }
}

export class FhirServiceExistsError extends ApiError {
  constructor(ref: { id: string; fhirService: string }) {
    super("FhirServiceExists", 409, "The FHIR service already exists", `FHIR service ${ref.fhirService} already exists: use SetKey to change its key.`, { fhirServiceId: ref.id });
  }
}

/** A well-formed request whose change no ARM deployment template can make (e.g. a Key Vault data-plane step). */
export class TemplateNotPossibleError extends ApiError {
  constructor(detail: string) {
    super("TemplateNotPossible", 409, "No deployment template can make this change", detail);
  }
}

export class ChangeInProgressError extends ApiError {
  constructor(fhirServiceId: string, activeJobId: string) {
    super(
      "ChangeInProgress",
      409,
      "A change is already running for this FHIR service",
      `Job ${activeJobId} has not finished for ${fhirServiceId}; follow it at /v1/jobs/${activeJobId} and submit again when it ends.`,
      { activeJobId, fhirServiceId },
    );
  }
}

export class NotCancellableError extends ApiError {
  constructor(jobId: string, detail: string, extensions: Record<string, unknown> = {}) {
    super("NotCancellable", 409, "The job can no longer be canceled", detail, { jobId, ...extensions });
  }
}

/** Four eyes: the job's creator may not approve it (compared by principal id, not display name). */
export class SelfApprovalForbiddenError extends ApiError {
  constructor(jobId: string) {
    super(
      "SelfApprovalForbidden",
      403,
      "The creator of a change may not approve it",
      `You submitted job ${jobId}; another approver must approve it (four eyes). You may still cancel it.`,
      { jobId },
    );
  }
}

export class NotAwaitingApprovalError extends ApiError {
  constructor(jobId: string, detail: string, extensions: Record<string, unknown> = {}) {
    super("NotAwaitingApproval", 409, "The job is not awaiting approval", detail, { jobId, ...extensions });
  }
}

export class NotRollbackableError extends ApiError {
  constructor(jobId: string, reason: string, extensions: Record<string, unknown> = {}) {
    super("NotRollbackable", 409, "The job's change cannot be rolled back", reason, { jobId, reason, ...extensions });
  }
}

export class IdempotencyKeyReusedError extends ApiError {
  constructor() {
    super(
      "IdempotencyKeyReused",
      422,
      "The Idempotency-Key was used with another body",
      "This Idempotency-Key was first sent with a different request body. Use a new key for a new request.",
    );
  }
}

export class RequestInProgressError extends ApiError {
  constructor() {
    super(
      "RequestInProgress",
      409,
      "The first request with this Idempotency-Key is still being handled",
      "Retry in a moment to get its answer.",
      {},
      { "retry-after": "1" },
    );
  }
}

export class AzureUnavailableError extends ApiError {
  constructor(what: string) {
    super("AzureUnavailable", 503, "Azure did not answer", `Could not read ${what} from Azure; nothing was changed. Retry later.`, {}, { "retry-after": "10" });
  }
}

export class QueueUnavailableError extends ApiError {
  constructor(retryAfterSeconds = 5) {
    super(
      "QueueUnavailable",
      503,
      "The job store is unavailable",
      "Redis does not answer; nothing was accepted. Retry later.",
      {},
      { "retry-after": String(retryAfterSeconds) },
    );
  }
}

export function describeFieldErrors(errors: FieldError[]): string {
  return errors.map((error) => `${error.path}: ${error.message}`).join("; ");
}

const PROBLEM_TYPE_BASE = "https://cmk-service.dev/problems/";

export function problemType(code: string): string {
  return PROBLEM_TYPE_BASE + code;
}


/**
 * A failure inside a job step. `retryable` errors are retried by BullMQ with backoff; the others end the
 * job at once.
 */
export class JobError extends Error {
  constructor(
    readonly body: JobErrorBody,
    readonly retryable = false,
  ) {
    super(body.message);
    this.name = "JobError";
  }
}
