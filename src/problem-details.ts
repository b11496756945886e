import type { FastifyError } from "fastify";
import { ApiError, ValidationFailedError, problemType, type FieldError, type ProblemDetails } from "./errors.js";
import { RESOURCE_GROUP_PATTERN } from "./domain/arm-ids.js";
import { isPlainTextPattern } from "./schemas/plain-text.js";

/**
 * Errors as RFC 9457 problem details with a stable code: the one mapping the error handler
 * (plugins/app/error-handler.ts) answers with and the OpenAPI document's problem examples are made from.
 * Pure: no I/O.
 */

interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

const STATUS_CODES: Record<number, { code: string; title: string }> = {
  400: { code: "BadRequest", title: "The request is not valid" },
  404: { code: "NotFound", title: "Not found" },
  405: { code: "MethodNotAllowed", title: "Method not allowed" },
  406: { code: "NotAcceptable", title: "Not acceptable" },
  413: { code: "PayloadTooLarge", title: "The request body is too large" },
  414: { code: "UriTooLong", title: "The URL is too long" },
  415: { code: "UnsupportedMediaType", title: "Send application/json" },
  429: { code: "TooManyRequests", title: "Too many requests" },
};

/** Fastify errors whose message repeats the URL, query string included (a credential may be there): told without it. */
const URL_ECHOING_DETAILS: Record<string, string> = {
  FST_ERR_BAD_URL: "The URL's path is not valid: it holds a malformed percent-encoded sequence.",
  FST_ERR_MAX_PARAM_LENGTH: "A path segment of the URL is longer than the API accepts.",
};

/** Where a Fastify validation context lives in the request, as the first segment of a problem path. */
const CONTEXT_SEGMENT: Record<string, string> = { body: "body", querystring: "query", params: "params", headers: "headers" };

/** One readable entry per bad field, naming it and saying what would be accepted. */
export function fieldErrorsFromAjv(errors: AjvError[], context: string): FieldError[] {
  const base = `/${CONTEXT_SEGMENT[context] ?? context}`;
  const seen = new Set<string>();
  const result: FieldError[] = [];
  for (const error of errors) {
    // oneOf/anyOf summaries repeat what the discriminated branch already said.
    if (error.keyword === "oneOf" || error.keyword === "anyOf" || error.keyword === "if") continue;
    let path = base + error.instancePath;
    let message = error.message ?? "is not valid";
    switch (error.keyword) {
      case "required":
        path += `/${String(error.params.missingProperty)}`;
        message = "is required";
        break;
      case "additionalProperties":
        path += `/${String(error.params.additionalProperty)}`;
        message = "is not a known property; remove it";
        break;
      case "discriminator":
        path += `/${String(error.params.tag)}`;
        message =
          error.params.tagValue === undefined
            ? "is required"
            : `value ${JSON.stringify(error.params.tagValue)} is not supported`;
        break;
      case "pattern":
        message = `does not have the expected format (${describePattern(path, String(error.params.pattern))})`;
        break;
      case "const":
        message = `must be ${JSON.stringify(error.params.allowedValue)}`;
        break;
      case "enum":
        message = `must be one of ${(error.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")}`;
        break;
    }
    const key = `${path} ${message}`;
    if (!seen.has(key)) {
      seen.add(key);
      result.push({ path, message });
    }
  }
  return result;
}

function describePattern(path: string, pattern: string): string {
  if (pattern === RESOURCE_GROUP_PATTERN) return "1-90 letters, digits, _ - ( ) and periods, not ending in a period";
  if (isPlainTextPattern(pattern)) {
    return `${pattern.startsWith("^https") ? "an https URL " : ""}without control characters (C0, DEL, C1) or bidirectional formatting characters (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069)`;
  }
  if (path.endsWith("fhirServiceId")) return "/subscriptions/{guid}/resourceGroups/{rg}/providers/Microsoft.HealthcareApis/workspaces/{ws}/fhirservices/{name}";
  if (path.endsWith("userAssignedIdentityId")) return "/subscriptions/{guid}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}";
  if (path.endsWith("callbackUrl") || path.endsWith("url")) return "an https URL";
  return "see the API documentation";
}

export function toProblem(error: FastifyError | ApiError | Error, instance: string): { problem: ProblemDetails; headers: Record<string, string> } {
  if (error instanceof ApiError) {
    return {
      problem: { type: problemType(error.code), title: error.title, status: error.statusCode, detail: error.message, instance, code: error.code, ...error.extensions },
      headers: error.headers,
    };
  }
  const fastifyError = error as FastifyError & { validationContext?: string };
  if (fastifyError.validation) {
    return toProblem(new ValidationFailedError(fieldErrorsFromAjv(fastifyError.validation as AjvError[], fastifyError.validationContext ?? "body")), instance);
  }
  if (fastifyError.code === "FST_ERR_CTP_INVALID_JSON_BODY" || error instanceof SyntaxError || fastifyError.code === "FST_ERR_CTP_EMPTY_JSON_BODY") {
    return toProblem(new ValidationFailedError([{ path: "/body", message: "is not valid JSON" }]), instance);
  }
  const status = fastifyError.statusCode && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500 ? fastifyError.statusCode : 500;
  const known = STATUS_CODES[status];
  if (status < 500) {
    return {
      problem: {
        type: problemType(known?.code ?? "BadRequest"),
        title: known?.title ?? "The request cannot be served",
        status,
        detail: URL_ECHOING_DETAILS[fastifyError.code] ?? error.message,
        instance,
        code: known?.code ?? "BadRequest",
      },
      headers: {},
    };
  }
  return {
    problem: {
      type: problemType("InternalError"),
      title: "Internal error",
      status: 500,
      detail: "The service failed to handle the request; it has been logged.",
      instance,
      code: "InternalError",
    },
    headers: {},
  };
}
