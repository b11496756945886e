import { Type, type Static, type StringOptions, type TSchema } from "@sinclair/typebox";
import { FHIR_SERVICE_ID_PATTERN, USER_ASSIGNED_IDENTITY_ID_PATTERN } from "../domain/arm-ids.js";
import { PROBLEM_EXAMPLES, SEED_EXAMPLES, type ProblemExample } from "./examples.js";
import { NOT_PLAIN } from "./plain-text.js";

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
  description:
    "Versioned key identifier, exactly as Key Vault shows it: https://{vault}.vault.azure.net/keys/{name}/{version} or " +
    "https://{hsm}.managedhsm.azure.net/keys/{name}/{version} (with CMK_CLOUD=AzureUSGovernment or AzureChinaCloud, that cloud's " +
    "Key Vault and Managed HSM host names), host in lower case, version 32 lower-case hex characters. " +
    "Any other spelling (port, user, query, fragment, percent-encoding, dot segments, spaces, control characters) is refused.",
  example: SEED_EXAMPLES.keyUrl,
});


/** A free-text string (after a literal `prefix`, if any) without control or bidirectional formatting characters. */
export const PlainText = ({ prefix = "", ...options }: StringOptions & { description: string; prefix?: string }) =>
  Type.String({ ...options, pattern: `^${prefix.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}[^${NOT_PLAIN}]*$`, description: `${options.description} No control or bidirectional formatting characters.` });

export const Ticket = Type.Object(
  {
    system: PlainText({ minLength: 1, maxLength: 50, description: "Ticketing system, e.g. servicenow.", example: "servicenow" }),
    id: PlainText({ minLength: 1, maxLength: 100, description: "Ticket or change id.", example: "CHG0012345" }),
    url: Type.Optional(PlainText({ format: "uri", prefix: "https://", maxLength: 2000, description: "Link to the ticket." })),
  },
  { additionalProperties: false, $id: "Ticket", description: "The change ticket this request belongs to; echoed on every record." },
);
export type Ticket = Static<typeof Ticket>;

/** The change window (api-contract v1.1 "Change governance"): the job writes nothing before notBefore or after notAfter. */
export const Schedule = Type.Object(
  {
    notBefore: Type.Optional(DateTime("The change starts no earlier than this (RFC 3339). Absent: as soon as it may (approved, service free).")),
    notAfter: Type.Optional(
      DateTime("The change must start before this; a job that cannot (still awaiting approval, or the service busy) ends Canceled with ChangeWindowMissed, having written nothing."),
    ),
  },
  {
    $id: "Schedule",
    additionalProperties: false,
    description: "Change window. notAfter must be after notBefore and in the future; neither more than 90 days ahead.",
  },
);
export type Schedule = Static<typeof Schedule>;

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

/**
 * Response headers the service sends, declared once. A response entry names the ones it carries (see
 * `responseHeaders`), with a description of its own where the header means something more there.
 */
const RESPONSE_HEADERS = {
  "Operation-Location": Type.String({ description: "The job's status monitor to poll, relative: /v1/jobs/{jobId}.", example: "/v1/jobs/4b0c2a9e-7d1f-4c3b-9a55-0e6f2d8c1a7b" }),
  "Retry-After": Type.Integer({ minimum: 1, description: "Seconds to wait before asking again." }),
  "Idempotent-Replayed": Type.String({ enum: ["true"], description: "Sent when this is the stored answer to an earlier request with the same Idempotency-Key: nothing new was started." }),
  "WWW-Authenticate": Type.String({ description: "The credentials this API accepts: a bearer token or an API key in x-api-key." }),
  "X-RateLimit-Limit": Type.Integer({
    minimum: 1,
    description:
      "Requests allowed per minute to this credential (to the client address without a valid credential). The X-RateLimit headers are absent only when the limiter could not reach Redis (it then lets the request through).",
  }),
  "X-RateLimit-Remaining": Type.Integer({ minimum: 0, description: "Requests left in the current minute." }),
  "X-RateLimit-Reset": Type.Integer({ minimum: 0, description: "Seconds until the current minute's allowance is renewed." }),
};
export type ResponseHeaderName = keyof typeof RESPONSE_HEADERS;

/** The rate limiter's headers: on every answer of a rate-limited route (all but the probes), errors included. */
export const RATE_LIMIT_HEADERS = {
  "X-RateLimit-Limit": true,
  "X-RateLimit-Remaining": true,
  "X-RateLimit-Reset": true,
} as const satisfies Partial<Record<ResponseHeaderName, true>>;

/** Header schemas for a response entry (@fastify/swagger turns them into Header Objects): `true` keeps the shared description. */
export function responseHeaders(headers: Partial<Record<ResponseHeaderName, string | true>>): Record<string, TSchema> {
  const entries: Record<string, TSchema> = {};
  for (const [name, description] of Object.entries(headers) as Array<[ResponseHeaderName, string | true]>) {
    entries[name] = description === true ? RESPONSE_HEADERS[name] : { ...RESPONSE_HEADERS[name], description };
  }
  return entries;
}

/**
 * The success entry of a rate-limited route: a registered schema, what the answer means and the headers
 * sent with it besides the rate limiter's. Sent as application/json.
 */
export function jsonResponse<T extends TSchema>(schema: T, description: string, headers: Partial<Record<ResponseHeaderName, string | true>> = {}) {
  return Type.Ref(schema, { description, headers: responseHeaders({ ...RATE_LIMIT_HEADERS, ...headers }) });
}

/** Every /v1 route: the credential is checked, and the caller's rate limit counted, before anything else. */
export const ANY_V1_ROUTE = [PROBLEM_EXAMPLES.unauthorized, PROBLEM_EXAMPLES.forbidden, PROBLEM_EXAMPLES.tokenGroupOverage, PROBLEM_EXAMPLES.tooManyRequests];
/** Routes that take a body (every POST: Fastify reads one before the route sees it, declared or not). */
export const WITH_BODY = [PROBLEM_EXAMPLES.payloadTooLarge, PROBLEM_EXAMPLES.unsupportedMediaType];

/**
 * Response entries for the problems a rate-limited route can answer, one per status: RFC 9457 problem
 * details as application/problem+json (as the error handler sends them), a named example per problem,
 * and the headers sent with them: the rate limiter's and those the problems carry (a header only some of
 * a status's problems carry says which).
 */
export function problemResponses(...problems: ProblemExample[]): Record<number, ProblemResponse> {
  const byStatus = new Map<number, ProblemExample[]>();
  for (const problem of problems) byStatus.set(problem.status, [...(byStatus.get(problem.status) ?? []), problem]);
  const responses: Record<number, ProblemResponse> = {};
  for (const [status, examples] of [...byStatus].sort(([a], [b]) => a - b)) {
    const headers: Partial<Record<ResponseHeaderName, string | true>> = { ...RATE_LIMIT_HEADERS };
    for (const name of new Set(examples.flatMap((example) => example.headers))) {
      const header = headerName(name);
      const carriers = examples.filter((example) => example.headers.includes(name));
      const codes = [...new Set(carriers.map((example) => example.value.code))];
      headers[header] = carriers.length === examples.length ? true : `${RESPONSE_HEADERS[header].description} Sent with ${codes.join(", ")}.`;
    }
    const named: Record<string, { summary: string; value: ProblemExample["value"] }> = {};
    for (const example of examples) {
      if (named[example.name]) throw new Error(`two ${status} examples named ${example.name}`);
      named[example.name] = { summary: example.summary, value: example.value };
    }
    responses[status] = {
      description: [...new Set(examples.map((example) => example.summary))].join(" "),
      headers: responseHeaders(headers),
      content: { "application/problem+json": { schema: Type.Ref(Problem), examples: named } },
    };
  }
  return responses;
}

export interface ProblemResponse {
  description: string;
  headers: Record<string, TSchema>;
  content: { "application/problem+json": { schema: TSchema; examples: Record<string, { summary: string; value: unknown }> } };
}

function headerName(sent: string): ResponseHeaderName {
  const name = (Object.keys(RESPONSE_HEADERS) as ResponseHeaderName[]).find((declared) => declared.toLowerCase() === sent.toLowerCase());
  if (!name) throw new Error(`response header ${sent} is sent but not declared in RESPONSE_HEADERS`);
  return name;
}

/** Schemas registered once with Fastify (referenced by $ref in routes and the OpenAPI document). */
export const sharedSchemas = [FieldError, Problem, Ticket, Schedule];
