import { JobError } from "../errors.js";

interface SdkErrorShape {
  name?: string;
  message?: string;
  code?: string;
  statusCode?: number;
}

/**
 * The permission a 403 names and, where the wording has it, the scope it was asked at: ARM's
 * AuthorizationFailed ("does not have authorization to perform action 'X' over scope 'S'"),
 * LinkedAuthorizationFailed ("permission to perform action(s) 'X' on the linked scope(s) 'S'") and Key
 * Vault's ForbiddenByRbac ("Action: 'X'", "Resource: 'S'"). Undefined when the message names no action.
 */
export function missingAuthorization(message: string | undefined): { action: string; scope?: string } | undefined {
  if (!message) return undefined;
  const found =
    /does not have permission to perform action\(s\) '([^']+)'(?: on the linked scope\(s\) '([^']+)')?/.exec(message) ??
    /authorization to perform action '([^']+)'(?: over scope '([^']+)')?/.exec(message) ??
    /Action: '([^']+)'(?:[\s\S]*?Resource: '([^']+)')?/.exec(message);
  if (!found) return undefined;
  return { action: found[1]!, ...(found[2] ? { scope: found[2] } : {}) };
}

/** The permission a 403 names (missingAuthorization's action). */
export function missingPermission(message: string | undefined): string | undefined {
  return missingAuthorization(message)?.action;
}

/**
 * Why Azure refused a read, for a message: "no access: the service's identity lacks 'X' at S
 * (AuthorizationFailed)" when the 403 names the action, else the code and HTTP status.
 */
export function refusalReason(error: unknown): string {
  const sdk = (error ?? {}) as SdkErrorShape;
  const status = sdk.statusCode ? `HTTP ${sdk.statusCode}` : undefined;
  const codes = [sdk.code, status].filter(Boolean).join(", ") || "error";
  const missing = sdk.statusCode === 403 ? missingAuthorization(sdk.message) : undefined;
  if (missing) return `no access: the service's identity lacks '${missing.action}'${missing.scope ? ` at ${missing.scope}` : ""} (${sdk.code ?? status})`;
  if (sdk.statusCode === 403) return `no access (${codes})`;
  if (sdk.statusCode === 404) return `not found (${codes})`;
  return codes;
}

const LRO_FAILURE = /^The long-running operation has failed(?:\. ([^.]+)\. ([\s\S]*))?$/;
const TRANSIENT_NETWORK_CODES = new Set(["ECONNRESET", "ECONNREFUSED", "ETIMEDOUT", "ENOTFOUND", "EAI_AGAIN", "EPIPE", "REQUEST_SEND_ERROR"]);

/**
 * Turns what an Azure SDK call threw into a JobError with a stable code: transient trouble (429, 5xx,
 * 409 from a concurrent operation, network and token-endpoint hiccups) is retryable; what Azure refused
 * (400, 401, 403, 404, a failed long-running operation) is not.
 */
export function toJobError(error: unknown, context: { action: string; target: string }): JobError {
  if (error instanceof JobError) return error;
  const sdk = (error ?? {}) as SdkErrorShape;
  const message = sdk.message ?? String(error);
  const detail = (code: string) => [{ code, message }];

  const lro = LRO_FAILURE.exec(message);
  if (lro) {
    return new JobError({
      code: "ArmOperationFailed",
      message: `Azure ended the operation to ${context.action} as Failed${lro[1] ? `: ${lro[1]}: ${lro[2]}` : "."}`,
      target: context.target,
      details: detail(lro[1] ?? "Failed"),
    });
  }
  if (message === "Operation was canceled") {
    return new JobError({ code: "ArmOperationCanceled", message: `Azure canceled the operation to ${context.action}.`, target: context.target });
  }

  const status = sdk.statusCode;
  const azureCode = sdk.code ?? (status ? `Http${status}` : "Unknown");
  if (status === 429 || status === 408 || (status !== undefined && status >= 500) || status === 409) {
    return new JobError(
      { code: status === 409 ? "ArmConflict" : "AzureUnavailable", message: `Could not ${context.action}: ${azureCode}: ${message}`, target: context.target, details: detail(azureCode) },
      true,
    );
  }
  if (status === 401 || status === 403) {
    return new JobError({
      code: "AzureAuthorizationFailed",
      message: `The service's identity may not ${context.action}: ${azureCode}: ${message}`,
      target: context.target,
      details: detail(azureCode),
    });
  }
  if (status !== undefined) {
    return new JobError({ code: "AzureRequestRejected", message: `Azure refused to ${context.action}: ${azureCode}: ${message}`, target: context.target, details: detail(azureCode) });
  }
  if (sdk.name === "AuthenticationError" || sdk.name === "CredentialUnavailableError" || sdk.name === "AuthenticationRequiredError") {
    // A wrong secret is as permanent as it gets, but the token endpoint also fails transiently; retry a few times.
    return new JobError({ code: "AzureSignInFailed", message: `Could not sign in to Azure to ${context.action}: ${message}`, target: context.target }, true);
  }
  if (sdk.code && TRANSIENT_NETWORK_CODES.has(sdk.code)) {
    return new JobError({ code: "AzureUnavailable", message: `Could not reach Azure to ${context.action}: ${sdk.code}`, target: context.target }, true);
  }
  return new JobError({ code: "InternalError", message: `Unexpected failure while trying to ${context.action}: ${message}`, target: context.target }, true);
}
