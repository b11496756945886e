import {
  AzureUnavailableError,
  ChangeInProgressError,
  FhirServiceExistsError,
  FhirServiceNotFoundError,
  ForbiddenError,
  IdempotencyKeyReusedError,
  NotAwaitingApprovalError,
  NotCancellableError,
  NotRollbackableError,
  NotFoundError,
  QueueUnavailableError,
  RequestInProgressError,
  SelfApprovalForbiddenError,
  SubscriptionNotAllowedError,
  TemplateNotPossibleError,
  TokenGroupOverageError,
  TooManyEventStreamsError,
  TooManyRequestsError,
  UnauthorizedError,
  ValidationFailedError,
  type ProblemDetails,
} from "../errors.js";
import { toProblem } from "../problem-details.js";

/**
 * Every example in the OpenAPI document, in one place. Values come from the sandbox seed, so each one
 * works against `npm start`. Typed loosely (the schemas take their examples from here): test/openapi.test.ts
 * checks each one against its schema and the request examples against the routes.
 */

/** Values from the sandbox seed, so every example in the OpenAPI document works against `npm start`. */
const subscription = "22222222-2222-2222-2222-222222222222";
const resourceGroup = `/subscriptions/${subscription}/resourceGroups/rg-sandbox`;

export const SEED_EXAMPLES = {
  fhirSys: `${resourceGroup}/providers/Microsoft.HealthcareApis/workspaces/wssandbox/fhirservices/fhir-sys`,
  fhirUami: `${resourceGroup}/providers/Microsoft.HealthcareApis/workspaces/wssandbox/fhirservices/fhir-uami`,
  fhirNew: `${resourceGroup}/providers/Microsoft.HealthcareApis/workspaces/wssandbox/fhirservices/fhir-new`,
  uamiSandbox: `${resourceGroup}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uami-sandbox`,
  keyUrl: "https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048/00000000000000000000000000000002",
  keyUrlV1: "https://kvsandbox.vault.azure.net/keys/cmk-rsa-2048/00000000000000000000000000000001",
} as const;

/** An OpenAPI Example Object: Swagger UI lists these by `summary` in its example dropdown. */
export interface NamedExample<T> {
  summary: string;
  description?: string;
  value: T;
}

/**
 * One example per operation, by name. The first is what Swagger UI prefills: a SetKey that succeeds in
 * the sandbox (fhir-sys has no customer-managed key yet; its system-assigned identity holds the role).
 */
export const CHANGE_REQUEST_EXAMPLES = {
  SetKey: {
    summary: "SetKey: give fhir-sys a customer-managed key (system-assigned identity)",
    value: {
      operation: "SetKey",
      fhirServiceId: SEED_EXAMPLES.fhirSys,
      keyEncryptionKeyUrl: SEED_EXAMPLES.keyUrl,
      identity: { type: "SystemAssigned" },
      ticket: { system: "servicenow", id: "CHG0012345" },
    },
  },
  CreateService: {
    summary: "CreateService: a new FHIR service encrypted from the start (user-assigned identity)",
    value: {
      operation: "CreateService",
      fhirServiceId: SEED_EXAMPLES.fhirNew,
      location: "westus3",
      keyEncryptionKeyUrl: SEED_EXAMPLES.keyUrl,
      identity: { type: "UserAssigned", userAssignedIdentityId: SEED_EXAMPLES.uamiSandbox },
      ticket: { system: "servicenow", id: "CHG0012346" },
    },
  },
  RotateKey: {
    summary: "RotateKey: a new version of fhir-uami's key, and the service moved to it",
    value: { operation: "RotateKey", fhirServiceId: SEED_EXAMPLES.fhirUami, ticket: { system: "servicenow", id: "CHG0012347" } },
  },
  RecoverKeyAccess: {
    summary: "RecoverKeyAccess: re-apply fhir-uami's key and identity once the cause is fixed",
    value: { operation: "RecoverKeyAccess", fhirServiceId: SEED_EXAMPLES.fhirUami, ticket: { system: "servicenow", id: "CHG0012348" } },
  },
} as const satisfies Record<string, NamedExample<{ operation: string; fhirServiceId: string; [field: string]: unknown }>>;

/** The same requests with template `options` (POST /v1/templates). */
export const TEMPLATE_REQUEST_EXAMPLES = {
  SetKey: { summary: "SetKey: the template that gives fhir-sys its key", value: CHANGE_REQUEST_EXAMPLES.SetKey.value },
  CreateService: {
    summary: "CreateService: a new FHIR service, and the identity's role on the key",
    value: { ...CHANGE_REQUEST_EXAMPLES.CreateService.value, options: { createRoleAssignment: true } },
  },
  RotateKey: {
    summary: "RotateKey: move fhir-uami to the newest existing version of its key",
    value: { ...CHANGE_REQUEST_EXAMPLES.RotateKey.value, useLatestExistingVersion: true },
  },
  RecoverKeyAccess: { summary: "RecoverKeyAccess: re-apply fhir-uami's key and identity", value: CHANGE_REQUEST_EXAMPLES.RecoverKeyAccess.value },
} as const satisfies Record<string, NamedExample<{ operation: string; fhirServiceId: string; [field: string]: unknown }>>;

/** A problem the API answers, as its error handler writes it (without `instance`, the request's own path). */
export interface ProblemExample extends NamedExample<ProblemDetails> {
  /** The example's name in the document: the problem code, or the code and what sets this one apart. */
  name: string;
  status: number;
  /** Response headers this problem carries, lower-case as sent (e.g. retry-after). */
  headers: string[];
}

function problemExample(name: string, summary: string, error: Error): ProblemExample {
  const { problem, headers } = toProblem(error, "");
  const { instance: _path, ...value } = problem;
  return { name, summary, status: problem.status, headers: Object.keys(headers), value: value as ProblemDetails };
}

/** Fastify's own refusals (body limit, media type), which the error handler maps by status. */
function fastifyRefusal(statusCode: number, message: string): Error {
  return Object.assign(new Error(message), { statusCode });
}

const JOB_ID = "4b0c2a9e-7d1f-4c3b-9a55-0e6f2d8c1a7b";

/** Examples of every problem the API answers, for `problemResponses` (schemas/common.ts). */
export const PROBLEM_EXAMPLES = {
  bodyInvalid: problemExample(
    "ValidationFailed",
    "ValidationFailed: the body is malformed; `errors` names every bad field.",
    new ValidationFailedError([
      { path: "/body/keyEncryptionKeyUrl", message: "is required" },
      { path: "/body/identity/type", message: 'value "System" is not supported' },
    ]),
  ),
  jobIdInvalid: problemExample(
    "ValidationFailed",
    "ValidationFailed: the job id is not a UUID.",
    new ValidationFailedError([
      { path: "/params/jobId", message: "must NOT have fewer than 36 characters" },
      { path: "/params/jobId", message: "does not have the expected format (see the API documentation)" },
    ]),
  ),
  headerInvalid: problemExample(
    "ValidationFailed",
    "ValidationFailed: a request header is missing or malformed.",
    new ValidationFailedError([{ path: "/headers/webhook-request-origin", message: "is required" }]),
  ),
  queryInvalid: problemExample("ValidationFailed", "ValidationFailed: a query parameter is out of range.", new ValidationFailedError([{ path: "/query/top", message: "must be <= 100" }])),
  pathInvalid: problemExample(
    "ValidationFailed",
    "ValidationFailed: a path segment does not have the expected format.",
    new ValidationFailedError([{ path: "/params/subscriptionId", message: "does not have the expected format (see the API documentation)" }]),
  ),
  unauthorized: problemExample("Unauthorized", "Unauthorized: no credential, or one that is not valid.", new UnauthorizedError()),
  forbidden: problemExample("Forbidden", "Forbidden: the credential's role is too low.", new ForbiddenError("operator")),
  subscriptionNotAllowed: problemExample(
    "ForbiddenSubscription",
    "Forbidden: the subscription is outside the credential's allow-list.",
    new SubscriptionNotAllowedError("33333333-3333-3333-3333-333333333333"),
  ),
  tokenGroupOverage: problemExample(
    "TokenGroupOverage",
    "TokenGroupOverage: CMK_TOKEN_SUBSCRIPTIONS grants by group, and the token's groups were left out (group overage).",
    new TokenGroupOverageError(),
  ),
  jobNotFound: problemExample("NotFound", "NotFound: no such job (or not one of the credential's subscriptions).", new NotFoundError(`Job ${JOB_ID}`)),
  fhirServiceMissing: problemExample("NotFound", "NotFound: ARM does not know this FHIR service.", new NotFoundError(`FHIR service ${SEED_EXAMPLES.fhirNew}`)),
  fhirServiceNotFound: problemExample(
    "FhirServiceNotFound",
    "FhirServiceNotFound: the FHIR service the template would change does not exist.",
    new FhirServiceNotFoundError({ id: SEED_EXAMPLES.fhirNew, fhirService: "fhir-new", workspace: "wssandbox" }),
  ),
  complianceReportNotFound: problemExample(
    "NotFound",
    "NotFound: no compliance scan has finished yet.",
    new NotFoundError("A compliance report (no scan has finished yet: POST /v1/compliance-scans)"),
  ),
  scanInProgress: problemExample("ChangeInProgress", "ChangeInProgress: a compliance scan has not finished; follow activeJobId.", new ChangeInProgressError("compliance-scans", JOB_ID)),
  changeInProgress: problemExample(
    "ChangeInProgress",
    "ChangeInProgress: the FHIR service has an unfinished job; follow activeJobId.",
    new ChangeInProgressError(SEED_EXAMPLES.fhirSys, JOB_ID),
  ),
  requestInProgress: problemExample(
    "RequestInProgress",
    "RequestInProgress: the first request with this Idempotency-Key is still being handled; retry after Retry-After.",
    new RequestInProgressError(),
  ),
  notCancellable: problemExample(
    "NotCancellable",
    "NotCancellable: a step has already sent its write to Azure (or the job has ended).",
    new NotCancellableError(
      JOB_ID,
      "Step StartArmUpdate has already sent its write to Azure: ARM is changing the FHIR service, and stopping now would leave it half-changed. Follow the job to its end.",
      { step: "StartArmUpdate" },
    ),
  ),
  selfApprovalForbidden: problemExample(
    "SelfApprovalForbidden",
    "SelfApprovalForbidden: the job's creator may not approve it (four eyes).",
    new SelfApprovalForbiddenError(JOB_ID),
  ),
  notAwaitingApproval: problemExample(
    "NotAwaitingApproval",
    "NotAwaitingApproval: the job's approval is not Pending (decided, expired, ended, or none was needed).",
    new NotAwaitingApprovalError(JOB_ID, `Job ${JOB_ID}'s approval is Approved (by cab-approver); it was decided already.`, { approvalState: "Approved", jobStatus: "Running" }),
  ),
  notRollbackable: problemExample(
    "NotRollbackable",
    "NotRollbackable: there is nothing the job replaced that can be restored; `reason` says why.",
    new NotRollbackableError(JOB_ID, `Job ${JOB_ID} did not succeed (it is Failed); only a Succeeded change can be rolled back.`, { reasonCode: "NotSucceeded" }),
  ),
  fhirServiceExists: problemExample(
    "FhirServiceExists",
    "FhirServiceExists: CreateService names a FHIR service that exists.",
    new FhirServiceExistsError({ id: SEED_EXAMPLES.fhirSys, fhirService: "fhir-sys" }),
  ),
  templateNotPossible: problemExample(
    "TemplateNotPossible",
    "TemplateNotPossible: only Key Vault's data plane, or no change at all, could do this.",
    new TemplateNotPossibleError("The FHIR service uses a Microsoft-managed key: there is no customer-managed key to rotate. Send a SetKey request instead."),
  ),
  payloadTooLarge: problemExample("PayloadTooLarge", "PayloadTooLarge: the body is over 64 KiB.", fastifyRefusal(413, "Request body is too large")),
  unsupportedMediaType: problemExample("UnsupportedMediaType", "UnsupportedMediaType: the body is not application/json.", fastifyRefusal(415, "Unsupported Media Type")),
  idempotencyKeyReused: problemExample(
    "IdempotencyKeyReused",
    "IdempotencyKeyReused: this Idempotency-Key came first with another body.",
    new IdempotencyKeyReusedError(),
  ),
  tooManyRequests: problemExample(
    "TooManyRequests",
    "TooManyRequests: the credential's (or address's) requests per minute are spent; retry after Retry-After.",
    new TooManyRequestsError(60),
  ),
  tooManyEventStreams: problemExample(
    "TooManyEventStreams",
    "TooManyEventStreams: the credential (or this API process) holds as many open event streams as it may; close one, or poll the job.",
    new TooManyEventStreamsError("credential", 20),
  ),
  queueUnavailable: problemExample("QueueUnavailable", "QueueUnavailable: Redis does not answer; nothing was accepted.", new QueueUnavailableError()),
  azureUnavailable: problemExample(
    "AzureUnavailable",
    "AzureUnavailable: Azure did not answer a read this request needs; nothing was changed.",
    new AzureUnavailableError("the FHIR service"),
  ),
} satisfies Record<string, ProblemExample>;
