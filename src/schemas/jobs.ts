import { Type, type Static } from "@sinclair/typebox";
import { DateTime, FhirServiceId, Ticket } from "./common.js";

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

export const JobResult = Type.Object(
  {
    keyEncryptionKeyUrl: Type.String({ description: "The key URL the FHIR service uses now." }),
    previousKeyEncryptionKeyUrl: Type.Optional(Type.String({ description: "The key URL before the change, if it had one." })),
    identityType: Type.String({ description: "The identity type the FHIR service uses now." }),
    previousIdentityType: Type.Optional(Type.String()),
    provisioningState: Type.String({ description: "ARM provisioning state after the change." }),
    armWrites: Type.Optional(Type.Integer({ description: "How many ARM writes the job sent (0 when the service already matched)." })),
    dryRun: Type.Optional(Type.Boolean({ description: "True for a dry run: nothing was sent to Azure." })),
    resourceBody: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), { description: "Dry runs: the full FHIR service body the change would PUT (SDK model: properties flattened)." }),
    ),
  },
  { $id: "JobResult", additionalProperties: true },
);
export type JobResult = Static<typeof JobResult>;

export const JobStatusMonitor = Type.Object(
  {
    id: Type.String({ description: "Job id." }),
    operation: Type.String({ description: "SetKey, CreateService, RotateKey or RecoverKeyAccess." }),
    status: JobStatus,
    percentComplete: Type.Integer({ minimum: 0, maximum: 100 }),
    currentStep: Type.Optional(Type.String({ description: "The step running now, or the last one that ran." })),
    steps: Type.Array(JobStep),
    fhirServiceId: FhirServiceId,
    dryRun: Type.Optional(Type.Boolean()),
    ticket: Type.Optional(Type.Ref(Ticket)),
    createdBy: Type.String({ description: "API key name or token subject that submitted the change." }),
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
  },
  { $id: "JobStatusMonitor", description: "The status monitor of a change job." },
);
export type JobStatusMonitor = Static<typeof JobStatusMonitor>;

export const JobIdParams = Type.Object({
  jobId: Type.String({ minLength: 1, maxLength: 100, pattern: "^[A-Za-z0-9-]+$", description: "Job id from Operation-Location." }),
});

export const jobSchemas = [JobError, JobResult, JobStatusMonitor];
