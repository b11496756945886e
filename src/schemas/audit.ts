import { Type, type Static } from "@sinclair/typebox";
import { DateTime, FhirServiceId, PlainText } from "./common.js";

export const AuditOutcome = Type.Union(
  [
    Type.Literal("Accepted"),
    Type.Literal("Refused"),
    Type.Literal("Succeeded"),
    Type.Literal("Failed"),
    Type.Literal("Canceled"),
    Type.Literal("Approved"),
    Type.Literal("Rejected"),
    Type.Literal("RefusedSummary"),
  ],
  {
    description:
      "Accepted or Refused: the API's answer to a change request (or rollback) of an authenticated caller; Succeeded, Failed or Canceled: how its job ended " +
      "(Canceled with code Rejected, ApprovalExpired or ChangeWindowMissed when governance ended it); Approved or Rejected: an approver's decision, by the approver. " +
      "RefusedSummary: change requests refused without a valid credential (401) or over the rate limit (429), counted per principal and " +
      "minute; kept apart and listed only with outcome=RefusedSummary, so they never push a real entry out of the trail.",
  },
);
export type AuditOutcome = Static<typeof AuditOutcome>;

const Bounded = (maxLength: number, description: string) => Type.String({ maxLength, description });

export const AuditEntry = Type.Object(
  {
    id: Type.String({ description: "Position in the audit stream (unique, newest highest)." }),
    dateTime: DateTime("When it happened."),
    outcome: AuditOutcome,
    code: Type.Optional(Bounded(100, "Refused: the problem code (e.g. Unauthorized, ValidationFailed); Failed/Canceled: the job's error code.")),
    httpStatus: Type.Optional(Type.Integer({ description: "Accepted and Refused: the HTTP status answered." })),
    principal: Type.Object(
      {
        name: Bounded(200, "API key name or token subject; `anonymous` when no valid credential was sent."),
        kind: Type.Optional(
          Type.Union([Type.Literal("apiKey"), Type.Literal("token"), Type.Literal("anonymous")], {
            description: "How the caller authenticated (absent on job outcomes, which carry the submitter's name).",
          }),
        ),
      },
      { description: "Who asked for the change." },
    ),
    client: Type.Optional(
      Type.Object(
        { ip: Bounded(100, "Client address as the API saw it."), userAgent: Type.Optional(Bounded(200, "User-Agent header, truncated.")) },
        { description: "Where the request came from (API answers only)." },
      ),
    ),
    requestId: Type.Optional(Bounded(100, "The server's id of the request (`reqId` in the logs).")),
    clientRequestId: Type.Optional(Bounded(128, "The caller's X-Request-Id, when it was 1-128 characters of A-Z, a-z, 0-9 and . _ : - (otherwise ignored).")),
    jobId: Type.Optional(Bounded(100, "The job that carries the change.")),
    operation: Type.Optional(Bounded(50, "SetKey, CreateService, RotateKey or RecoverKeyAccess.")),
    fhirServiceId: Type.Optional(Bounded(400, "The FHIR service (as sent, for refusals).")),
    ticket: Type.Optional(
      Type.Object(
        { system: Type.Optional(Bounded(50, "Ticketing system.")), id: Type.Optional(Bounded(100, "Ticket id.")), url: Type.Optional(Bounded(2000, "Link to the ticket.")) },
        { description: "The change ticket." },
      ),
    ),
    previousKeyEncryptionKeyUrl: Type.Optional(Bounded(400, "Key URL before the change (job outcomes).")),
    keyEncryptionKeyUrl: Type.Optional(Bounded(400, "Key URL requested (API answers) or in use after the change (job outcomes).")),
    previousIdentityType: Type.Optional(Bounded(50, "Identity type before the change (job outcomes).")),
    identityType: Type.Optional(Bounded(50, "Identity type requested or in use after the change.")),
    dryRun: Type.Optional(Type.Boolean({ description: "A dry run: nothing was to be changed." })),
    comment: Type.Optional(Bounded(1000, "Approved and Rejected: the approver's comment.")),
    rollbackOf: Type.Optional(Bounded(100, "The job whose change this one rolls back.")),
    replayed: Type.Optional(Type.Boolean({ description: "An Idempotency-Key replay of an earlier answer; no new job." })),
    summary: Type.Optional(
      Type.Object(
        {
          since: DateTime("Start of the counted period; the entry's dateTime is its end."),
          count: Type.Integer({ minimum: 1, description: "Change requests this entry stands for." }),
          unauthenticated: Type.Integer({ minimum: 0, description: "Refused 401: no or a bad credential." }),
          rateLimited: Type.Integer({ minimum: 0, description: "Refused 429: over the rate limit." }),
          clients: Type.Array(
            Type.Object({ ip: Bounded(100, "Client address."), count: Type.Integer({ minimum: 1, description: "Requests from it." }) }),
            { maxItems: 5, description: "The addresses that sent the most, most first." },
          ),
        },
        { description: "RefusedSummary: what was refused in one API process during the period." },
      ),
    ),
  },
  { $id: "AuditEntry", description: "One accepted, refused or finished change." },
);
export type AuditEntry = Static<typeof AuditEntry>;
/** What is written; the stream assigns the id. */
export type AuditRecord = Omit<AuditEntry, "id">;

export const AuditPage = Type.Object(
  {
    value: Type.Array(Type.Ref(AuditEntry)),
    nextLink: Type.Optional(Type.String({ description: "The next (older) page, with the same filters." })),
  },
  { $id: "AuditPage", description: "Audit entries, newest first." },
);
export type AuditPage = Static<typeof AuditPage>;

export const AuditQuery = Type.Object(
  {
    fhirServiceId: Type.Optional(FhirServiceId),
    principal: Type.Optional(PlainText({ minLength: 1, maxLength: 200, description: "Part of the principal name (case-insensitive)." })),
    outcome: Type.Optional(AuditOutcome),
    ticketId: Type.Optional(PlainText({ minLength: 1, maxLength: 100, description: "Ticket id (exact)." })),
    from: Type.Optional(DateTime("Entries at or after this time.")),
    to: Type.Optional(DateTime("Entries at or before this time.")),
    top: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20, description: "Page size." })),
    continuationToken: Type.Optional(
      Type.String({ minLength: 1, maxLength: 500, pattern: "^[A-Za-z0-9_-]+$", description: "From the previous page's nextLink (opaque; valid for the same filters and credential)." }),
    ),
  },
  { additionalProperties: false },
);
export type AuditQuery = Static<typeof AuditQuery>;

export const auditSchemas = [AuditEntry, AuditPage];
