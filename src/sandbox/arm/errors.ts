import { json } from "../http/responses.js";
import type { SandboxResponse } from "../http/types.js";

/** ARM error bodies: `{"error":{"code","message"}}` (azure-contracts.md 1.11). One helper, many texts. */

export function armError(status: number, code: string, message: string, headers: Record<string, string> = {}): SandboxResponse {
  return json(status, { error: { code, message } }, headers);
}

/** `resourcePath` is e.g. `Microsoft.HealthcareApis/workspaces/ws/fhirservices/svc`. */
export function resourceNotFound(resourcePath: string, resourceGroup: string): SandboxResponse {
  return armError(
    404,
    "ResourceNotFound",
    `The Resource '${resourcePath}' under resource group '${resourceGroup}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`,
    { "x-ms-failure-cause": "gateway" },
  );
}

export function parentResourceNotFound(parentName: string): SandboxResponse {
  return armError(404, "ParentResourceNotFound", `Can not perform requested operation on nested resource. Parent resource '${parentName}' not found.`);
}

export function resourceGroupNotFound(resourceGroup: string): SandboxResponse {
  return armError(404, "ResourceGroupNotFound", `Resource group '${resourceGroup}' could not be found.`, { "x-ms-failure-cause": "gateway" });
}

export function subscriptionNotFound(subscriptionId: string): SandboxResponse {
  return armError(404, "SubscriptionNotFound", `The subscription '${subscriptionId}' could not be found.`, { "x-ms-failure-cause": "gateway" });
}

export function invalidRequestContent(message: string): SandboxResponse {
  return armError(400, "InvalidRequestContent", message);
}

export function missingApiVersion(): SandboxResponse {
  return armError(400, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.");
}

export function unsupportedApiVersion(apiVersion: string, resourceType: string, supported: readonly string[]): SandboxResponse {
  return armError(
    400,
    "NoRegisteredProviderFound",
    `No registered resource provider found for location 'westus3' and API version '${apiVersion}' for type '${resourceType}'. The supported api-versions are '${supported.join(", ")}'.`,
  );
}

/** Typical `error.code` for a status, used by fault injection when the rule names none. */
export function defaultArmErrorCode(status: number): string {
  const codes: Record<number, string> = {
    400: "BadRequest",
    401: "AuthenticationFailed",
    403: "AuthorizationFailed",
    404: "NotFound",
    409: "Conflict",
    429: "SubscriptionRequestsThrottled",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
  };
  return codes[status] ?? (status >= 500 ? "InternalServerError" : "BadRequest");
}
