import { Type, type Static } from "@sinclair/typebox";
import { DateTime, FhirServiceId, PlainText, Schedule, Ticket } from "./common.js";
import { FleetServiceCounts } from "./key-rotations.js";

export const JobStatus = Type.Union(
  [Type.Literal("NotStarted"), Type.Literal("Running"), Type.Literal("Succeeded"), Type.Literal("Failed"), Type.Literal("Canceled")],
  { description: "Job status; Succeeded, Failed and Canceled are terminal." },
);
export type JobStatus = Static<typeof JobStatus>;

export const StepStatus = Type.Union(
  [Type.Literal("NotStarted"), Type.Literal("Running"), Type.Literal("Succeeded"), Type.Literal("Failed"), Type.Literal("Skipped")],
  { description: "Step status." },
);
export type StepStatus = Static<typeof StepStatus>;

export const JobErrorDetail = Type.Object({
  code: Type.String(),
  message: Type.String(),
  target: Type.Optional(Type.String()),
});

export const JobError = Type.Object(
  {
    code: Type.String({ description: "Stable code, e.g. FhirServiceNotFound, PreflightFailed, ArmOperationFailed." }),
    message: Type.String(),
    target: Type.Optional(Type.String({ description: "What the error is about, e.g. the FHIR service id or a check id." })),
    details: Type.Optional(Type.Array(JobErrorDetail)),
  },
  { $id: "JobError" },
);
export type JobErrorBody = Static<typeof JobError>;

export const JobStep = Type.Object({
  name: Type.String({ description: "Step name, e.g. ReadFhirService, StartArmUpdate, FollowOperation." }),
  status: StepStatus,
  startedDateTime: Type.Optional(DateTime("When the step started.")),
  endedDateTime: Type.Optional(DateTime("When the step ended.")),
  message: Type.Optional(Type.String({ description: "What the step found or did." })),
});
export type JobStep = Static<typeof JobStep>;

export const NotListedSubscription = Type.Object(
  {
    subscriptionId: Type.String(),
    reason: Type.String({ description: "Why, as Azure said it: the permission and scope a 403 names, e.g. no access: the service's identity lacks 'Microsoft.HealthcareApis/workspaces/read' at /subscriptions/… (AuthorizationFailed)." }),
    remediation: Type.String({ description: "What to grant or check." }),
  },
  { $id: "NotListedSubscription", additionalProperties: false },
);
export type NotListedSubscription = Static<typeof NotListedSubscription>;

export const JobResult = Type.Object(
  {
    keyEncryptionKeyUrl: Type.Optional(Type.String({ description: "The key URL the FHIR service uses now (not on RotateFleet)." })),
    previousKeyEncryptionKeyUrl: Type.Optional(Type.String({ description: "The key URL before the change, if it had one." })),
    identityType: Type.Optional(Type.String({ description: "The identity type the FHIR service uses now (not on RotateFleet)." })),
    previousIdentityType: Type.Optional(Type.String()),
    provisioningState: Type.Optional(Type.String({ description: "ARM provisioning state after the change (not on RotateFleet)." })),
    armWrites: Type.Optional(Type.Integer({ description: "How many ARM writes the job sent (0 when the service already matched)." })),
    dryRun: Type.Optional(Type.Boolean({ description: "True for a dry run: nothing was sent to Azure." })),
    previousVersionEnabled: Type.Optional(Type.Boolean({ description: "RotateKey: whether the previous key version is still enabled (it must stay so)." })),
    targetKeyEncryptionKeyUrl: Type.Optional(Type.String({ description: "RotateFleet: the key version every service is moved to." })),
    services: Type.Optional(Type.Ref(FleetServiceCounts)),
    previousVersionsDisabled: Type.Optional(Type.Array(Type.String(), { description: "RotateFleet: versions services moved away from that are disabled (data encrypted with them may be unreadable: enable them again)." })),
    wouldChange: Type.Optional(Type.Array(Type.String(), { description: "RotateFleet dry runs: the FHIR services a rotation would move." })),
    changes: Type.Optional(Type.Array(Type.String(), { description: "RecoverKeyAccess: every change the job made, in order." })),
    scannedServices: Type.Optional(Type.Integer({ minimum: 0, description: "ComplianceScan: FHIR services in its report (GET /v1/compliance)." })),
    findings: Type.Optional(
      Type.Object(
        { High: Type.Integer({ minimum: 0 }), Medium: Type.Integer({ minimum: 0 }), Low: Type.Integer({ minimum: 0 }) },
        { description: "ComplianceScan: findings by severity." },
      ),
    ),
    notListed: Type.Optional(
      Type.Array(Type.Ref(NotListedSubscription), {
        description: "RotateFleet and ComplianceScan: subscriptions whose FHIR services could not be listed (403, 404); their services are in neither the rotation nor the report.",
      }),
    ),
    keysRead: Type.Optional(Type.Integer({ minimum: 0, description: "ComplianceScan: distinct keys read from Key Vault (each once)." })),
    followStarted: Type.Optional(Type.Integer({ minimum: 0, description: "ComplianceScan with CMK_FOLLOW_LATEST_KEY_VERSION: RotateKey jobs it started." })),
    resourceBody: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), { description: "Dry runs: the full FHIR service body the change would PUT (SDK model: properties flattened)." }),
    ),
  },
  { $id: "JobResult", additionalProperties: true },
);
export type JobResult = Static<typeof JobResult>;

export const CallbackDelivery = Type.Object(
  {
    attempt: Type.Integer({ minimum: 1, description: "1 for the first delivery attempt." }),
    type: Type.Optional(
      Type.Literal("job.approval_requested", { description: "Absent for the webhook of the job's end; job.approval_requested for the one sent when the job starts waiting for approval." }),
    ),
    dateTime: DateTime("When the attempt started."),
    durationMs: Type.Optional(Type.Integer({ minimum: 0 })),
    outcome: Type.Union([Type.Literal("Delivered"), Type.Literal("Retrying"), Type.Literal("Failed")], {
      description: "Delivered (2xx), Retrying (another attempt at nextAttemptDateTime) or Failed (no more attempts).",
    }),
    statusCode: Type.Optional(Type.Integer({ description: "The receiver's HTTP status, when it answered." })),
    error: Type.Optional(Type.String({ description: "Why the attempt failed (HTTP status, timeout, connection error, redirect)." })),
    nextAttemptDateTime: Type.Optional(DateTime("When the next attempt is due.")),
  },
  { $id: "CallbackDelivery" },
);
export type CallbackDelivery = Static<typeof CallbackDelivery>;

export const CallbackInfo = Type.Object(
  {
    url: Type.String({ description: "The callbackUrl, without query string or fragment." }),
    status: Type.Union([Type.Literal("Pending"), Type.Literal("Retrying"), Type.Literal("Delivered"), Type.Literal("Failed")], {
      description: "Pending until the job ends and the first attempt is made.",
    }),
    deliveries: Type.Array(Type.Ref(CallbackDelivery), { description: "Every delivery attempt, oldest first." }),
  },
  { $id: "CallbackInfo", description: "The signed webhook sent to callbackUrl when the job ends (Standard Webhooks)." },
);
export type CallbackInfo = Static<typeof CallbackInfo>;

export const ApprovalState = Type.Union([Type.Literal("Pending"), Type.Literal("Approved"), Type.Literal("Rejected"), Type.Literal("Expired")], {
  description: "Pending until an approver decides (or CMK_APPROVAL_TTL_HOURS passes: Expired).",
});
export type ApprovalState = Static<typeof ApprovalState>;

export const Approval = Type.Object(
  {
    state: ApprovalState,
    decidedBy: Type.Optional(Type.String({ description: "The approver (API key name or token subject) who approved or rejected." })),
    decidedDateTime: Type.Optional(DateTime("When it was decided (or expired).")),
    comment: Type.Optional(Type.String({ description: "The approver's comment." })),
    expiresDateTime: Type.Optional(DateTime("While Pending: when the change is Canceled (ApprovalExpired) unless decided.")),
  },
  { $id: "Approval", description: "The approval a change waits for (CMK_APPROVALS=required); absent when none is needed (dry runs, CMK_APPROVALS=none)." },
);
export type Approval = Static<typeof Approval>;

export const JobStatusMonitor = Type.Object(
  {
    id: Type.String({ description: "Job id." }),
    operation: Type.String({ description: "SetKey, CreateService, RotateKey, RecoverKeyAccess, RotateFleet or ComplianceScan." }),
    status: JobStatus,
    percentComplete: Type.Integer({ minimum: 0, maximum: 100 }),
    currentStep: Type.Optional(Type.String({ description: "The step running now, or the last one that ran." })),
    steps: Type.Array(JobStep),
    fhirServiceId: Type.Optional({ ...FhirServiceId, description: "The FHIR service the job changes (every job but RotateFleet)." }),
    parentJobId: Type.Optional(Type.String({ description: "The fleet rotation (RotateFleet) this job is a child of." })),
    keyUrl: Type.Optional(Type.String({ description: "RotateFleet: the versionless key whose services are moved." })),
    subscriptions: Type.Optional(Type.Array(Type.String(), { description: "RotateFleet and ComplianceScan: the subscriptions it was limited to, when it was." })),
    dryRun: Type.Optional(Type.Boolean()),
    ticket: Type.Optional(Type.Ref(Ticket)),
    createdBy: Type.String({ description: "API key name or token subject that submitted the change." }),
    approval: Type.Optional(Type.Ref(Approval)),
    schedule: Type.Optional(Type.Ref(Schedule)),
    rollbackOf: Type.Optional(
      Type.String({ description: "The Succeeded job whose change this job undoes (POST /v1/jobs/{jobId}/rollback); for a fleet rollback's parent, the fleet rotation's parent." }),
    ),
    createdDateTime: DateTime("When the change was accepted."),
    lastUpdatedDateTime: DateTime("Last change of this record."),
    attempts: Type.Integer({ minimum: 0, description: "How many times a worker started the job." }),
    retries: Type.Optional(
      Type.Array(
        Type.Object({
          attempt: Type.Integer({ description: "The attempt that stopped." }),
          step: Type.String({ description: "The step it stopped in." }),
          code: Type.String({ description: "Why, e.g. AzureUnavailable or ArmConflict." }),
          message: Type.String(),
          dateTime: DateTime("When it stopped."),
        }),
        { description: "Attempts that stopped on a transient failure and were retried." },
      ),
    ),
    result: Type.Optional(Type.Ref(JobResult)),
    error: Type.Optional(Type.Ref(JobError)),
    callback: Type.Optional(Type.Ref(CallbackInfo)),
  },
  { $id: "JobStatusMonitor", description: "The status monitor of a change job." },
);
export type JobStatusMonitor = Static<typeof JobStatusMonitor>;

export const JobIdParams = Type.Object({
  // Job ids are UUIDs: anything else could name one of BullMQ's own keys (meta, events, id) in Redis.
  jobId: Type.String({ minLength: 36, maxLength: 36, pattern: "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description: "Job id (a UUID) from Operation-Location." }),
});

export const JobListQuery = Type.Object(
  {
    status: Type.Optional(JobStatus),
    operation: Type.Optional(
      Type.Union([Type.Literal("SetKey"), Type.Literal("CreateService"), Type.Literal("RotateKey"), Type.Literal("RecoverKeyAccess"), Type.Literal("RotateFleet"), Type.Literal("ComplianceScan")], {
        description: "Only jobs of this operation.",
      }),
    ),
    parentJobId: Type.Optional({ ...JobIdParams.properties.jobId, description: "Only the children of this fleet rotation (RotateFleet job id)." }),
    fhirServiceId: Type.Optional({ ...FhirServiceId, description: "Only jobs for this FHIR service (ARM id, any case)." }),
    approvalState: Type.Optional({ ...ApprovalState, description: "Only jobs whose approval is in this state (Pending: the approvers' queue)." }),
    ticketId: Type.Optional(PlainText({ minLength: 1, maxLength: 100, description: "Only jobs whose ticket has this id." })),
    top: Type.Integer({ minimum: 1, maximum: 100, default: 20, description: "Page size (1-100)." }),
    continuationToken: Type.Optional(Type.String({ minLength: 1, maxLength: 500, description: "From the previous page's nextLink." })),
  },
  { additionalProperties: false },
);
export type JobListQuery = Static<typeof JobListQuery>;

const Comment = (required: boolean) =>
  PlainText({ minLength: required ? 1 : 0, maxLength: 1000, description: required ? "Why the change is rejected (shown on the monitor, in the audit trail and the webhook)." : "A note for the record (shown on the monitor, in the audit trail and the webhook)." });

export const ApproveBody = Type.Object({ comment: Type.Optional(Comment(false)) }, { additionalProperties: false });
export type ApproveBody = Static<typeof ApproveBody>;

export const RejectBody = Type.Object({ comment: Comment(true) }, { additionalProperties: false });
export type RejectBody = Static<typeof RejectBody>;

export const RollbackBody = Type.Object(
  {
    schedule: Type.Optional(Type.Ref(Schedule)),
    ticket: Type.Optional(Type.Ref(Ticket)),
    callbackUrl: Type.Optional(
      Type.String({ format: "uri", pattern: "^https?://", maxLength: 2000, description: "Signed webhook target of the rollback job (job.approval_requested, and its end)." }),
    ),
  },
  { additionalProperties: false, description: "Optional: the rollback's own window, ticket (default: the rolled-back job's) and callback." },
);
export type RollbackBody = Static<typeof RollbackBody>;

export const JobList = Type.Object(
  {
    value: Type.Array(Type.Ref(JobStatusMonitor), { description: "Status monitors, newest first." }),
    nextLink: Type.Optional(
      Type.String({
        description:
          "Relative URL of the next page (the same filters and a continuationToken). Present while older jobs may match; a page may hold fewer than `top` jobs (even none) when the filters are selective.",
      }),
    ),
  },
  { $id: "JobList" },
);

export const jobSchemas = [JobError, NotListedSubscription, JobResult, CallbackDelivery, CallbackInfo, Approval, JobStatusMonitor, JobList];
