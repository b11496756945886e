import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { FHIR_SERVICE_ID_PATTERN, USER_ASSIGNED_IDENTITY_ID_PATTERN } from "../domain/arm-ids.js";
import { SEED_EXAMPLES } from "./examples.js";

export const DateTime = (description: string) => Type.String({ format: "date-time", description });

export const FhirServiceId = Type.String({
  pattern: FHIR_SERVICE_ID_PATTERN,
  maxLength: 400,
  description: "ARM id of a FHIR service in an Azure Health Data Services workspace.",
  example: SEED_EXAMPLES.fhirSys,
});

export const UserAssignedIdentityId = Type.String({
  pattern: USER_ASSIGNED_IDENTITY_ID_PATTERN,
  maxLength: 400,
  description: "ARM id of a user-assigned managed identity.",
  example: SEED_EXAMPLES.uamiSandbox,
});

export const KeyUrl = Type.String({
  minLength: 1,
  maxLength: 400,
  description: "Versioned key identifier: https://{vault}.vault.azure.net/keys/{name}/{version} (or a Managed HSM key).",
  example: SEED_EXAMPLES.keyUrl,
});

export const Ticket = Type.Object(
  {
    system: Type.String({ minLength: 1, maxLength: 50, description: "Ticketing system, e.g. servicenow.", example: "servicenow" }),
    id: Type.String({ minLength: 1, maxLength: 100, description: "Ticket or change id.", example: "CHG0012345" }),
    url: Type.Optional(Type.String({ format: "uri", pattern: "^https://", maxLength: 2000, description: "Link to the ticket." })),
  },
  { additionalProperties: false, $id: "Ticket", description: "The change ticket this request belongs to; echoed on every record." },
);
export type Ticket = Static<typeof Ticket>;

export const FieldError = Type.Object(
  {
    path: Type.String({ description: "Where the bad value is: /body/..., /query/..., /params/... or /headers/..." }),
    message: Type.String({ description: "What is wrong and how to fix it." }),
  },
  { $id: "FieldError" },
);

export const Problem = Type.Object(
  {
    type: Type.String({ description: "URI naming the problem type." }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    instance: Type.Optional(Type.String()),
    code: Type.String({ description: "Stable PascalCase code, e.g. ValidationFailed, ChangeInProgress, Unauthorized." }),
    errors: Type.Optional(Type.Array(Type.Ref(FieldError))),
    activeJobId: Type.Optional(Type.String()),
    requiredRole: Type.Optional(Type.String()),
    subscriptionId: Type.Optional(Type.String({ description: "Forbidden: the subscription outside the credential's allow-list." })),
  },
  { $id: "Problem", additionalProperties: true, description: "RFC 9457 problem details (application/problem+json)." },
);

/** Response entries for the problems every /v1 route can answer. */
export function problemResponses<Codes extends number>(...statuses: Codes[]): Record<Codes, TSchema> {
  const responses = {} as Record<Codes, TSchema>;
  for (const status of statuses) responses[status] = Type.Ref(Problem, { description: PROBLEM_DESCRIPTIONS[status] ?? "Problem" });
  return responses;
}

const PROBLEM_DESCRIPTIONS: Record<number, string> = {
  400: "ValidationFailed: the request is malformed; `errors` names each bad field.",
  401: "Unauthorized: no or bad credential.",
  403: "Forbidden: the credential's role is too low, or the subscription is outside its allow-list.",
  404: "NotFound.",
  409: "Conflict, e.g. ChangeInProgress with activeJobId.",
  422: "IdempotencyKeyReused.",
  429: "TooManyRequests: the credential's (or address's) rate limit is spent; see Retry-After.",
  503: "QueueUnavailable (Redis does not answer) or AzureUnavailable (Azure did not answer a read this route needs); Retry-After says when to try again.",
};

/** Schemas registered once with Fastify (referenced by $ref in routes and the OpenAPI document). */
export const sharedSchemas = [FieldError, Problem, Ticket];
