import { identifyCaller, type CallerCheck } from "../caller.js";
import { faultRetryHeaders } from "../faults.js";
import { isRecord, jsonBody, withHeaders } from "../http/responses.js";
import { Router, type RouteDescription } from "../http/router.js";
import type { SandboxRequest, SandboxResponse } from "../http/types.js";
import { newGuid } from "../ids.js";
import { findGrant } from "../rbac.js";
import type { SandboxRuntime } from "../runtime.js";
import { operationKind } from "../throttling.js";
import { armError, defaultArmErrorCode, missingApiVersion } from "./errors.js";
import { isOpenRead, requiredAction } from "./actions.js";
import { registerAuthorization } from "./authorization.js";
import { DeploymentEngine, registerDeployments } from "./deployments.js";
import { registerGenericResources } from "./generic-resources.js";
import { registerHealthcareApis } from "./healthcare-apis.js";
import { registerKeyVaultManagement } from "./key-vault.js";
import { registerManagedIdentity } from "./managed-identity.js";
import { registerProviders } from "./providers.js";
import { armOrigin, type ArmRequest } from "./request.js";
import { registerResourceManager } from "./resources.js";
import { checkSubscription } from "./scope.js";

/**
 * Azure Resource Manager front door: what ARM itself does before and after a resource provider —
 * authentication, fault injection, throttling, api-version, RBAC, common headers — then routing to
 * the emulated providers (one module each).
 */

export const ARM_AUDIENCES = [
  "https://management.azure.com",
  "https://management.azure.com/",
  "https://management.core.windows.net",
  "https://management.core.windows.net/",
];

function formatUtc(seconds: number): string {
  return new Date(seconds * 1000).toLocaleString("en-US", { timeZone: "UTC" }).replace(",", "");
}

/** 401 bodies and `WWW-Authenticate` as ARM sends them (azure-contracts.md 1.11). */
function authenticationFailure(runtime: SandboxRuntime, check: Exclude<CallerCheck, { ok: true }>): SandboxResponse {
  const challenge = (description: string) => ({
    "WWW-Authenticate": `Bearer authorization_uri="https://login.microsoftonline.com/${runtime.world.tenantId}", error="invalid_token", error_description="${description}"`,
  });
  switch (check.reason) {
    case "missing":
      return armError(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.", challenge("The authentication failed because of missing 'Authorization' header."));
    case "expired":
      return armError(
        401,
        "ExpiredAuthenticationToken",
        `The access token expiry UTC time '${formatUtc(Number(check.claims?.exp ?? 0))}' is earlier than current UTC time '${formatUtc(runtime.clock.nowSeconds())}'.`,
        challenge("The access token expiry UTC time is earlier than current UTC time."),
      );
    case "audience":
      return armError(
        401,
        "InvalidAuthenticationTokenAudience",
        `The access token has been obtained for wrong audience or resource '${String(check.claims?.aud)}'. It should exactly match with one of the allowed audiences '${ARM_AUDIENCES.join("','")}'.`,
        challenge("The access token has been obtained from wrong audience or resource."),
      );
    default:
      return armError(401, "InvalidAuthenticationToken", "The access token is invalid.", challenge("The access token is invalid."));
  }
}

const ASSIGN_IDENTITY = "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action";

/** The user-assigned identities a write attaches (`identity.userAssignedIdentities` keys); none when the body is not JSON. */
function linkedIdentities(request: SandboxRequest): string[] {
  if (request.method !== "PUT" && request.method !== "PATCH") return [];
  let body: unknown;
  try {
    body = jsonBody(request);
  } catch {
    return [];
  }
  const identity = isRecord(body) && isRecord(body.identity) ? body.identity : undefined;
  return identity && isRecord(identity.userAssignedIdentities) ? Object.keys(identity.userAssignedIdentities) : [];
}

function routingRequestId(nowMs: number): string {
  const stamp = new Date(nowMs).toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  return `WESTUS3:${stamp}:${newGuid()}`;
}

export interface ArmService {
  handle(request: SandboxRequest): Promise<SandboxResponse>;
  /**
   * Moves unfinished template deployments on as far as the providers' operations allow. The server runs
   * it before every request, right after the operations settle, so deployments move with the clock too.
   */
  advanceDeployments(): Promise<void>;
  /** What the emulated providers serve. */
  routes: readonly RouteDescription[];
}

export function createArmService(runtime: SandboxRuntime): ArmService {
  const router = new Router<ArmRequest>();
  registerHealthcareApis(router, runtime);
  registerKeyVaultManagement(router, runtime);
  registerManagedIdentity(router, runtime);
  registerAuthorization(router, runtime);
  registerResourceManager(router, runtime);
  registerProviders(router, runtime);
  registerDeployments(router, runtime);
  registerGenericResources(router, runtime);

  /** A fault rule's answer, when one fires for the request. */
  function injectedFault(request: SandboxRequest): SandboxResponse | undefined {
    const fault = runtime.faults.fire("arm", request, "response");
    if (!fault) return undefined;
    const code = fault.errorCode ?? defaultArmErrorCode(fault.status);
    return armError(fault.status, code, "The request failed because of a fault injected by the sandbox.", faultRetryHeaders(fault));
  }

  /** What ARM does once a request is authenticated and counted: the gateway's subscription check, RBAC (except the open reads), then the resource provider. */
  async function serve(request: ArmRequest): Promise<SandboxResponse> {
    // ARM's gateway answers for a subscription it does not know before any RBAC or provider sees the request.
    const pathSubscription = /^\/subscriptions\/([^/]+)/i.exec(request.path)?.[1];
    const unknownSubscription = pathSubscription === undefined ? undefined : checkSubscription(runtime.world, pathSubscription);
    if (unknownSubscription) return unknownSubscription;

    const { caller } = request;
    const action = isOpenRead(request.method, request.path) ? undefined : requiredAction(request.method, request.path);
    const granted = action ? findGrant(runtime.world, caller.objectId, request.path, { action }) !== undefined : true;
    if (action) runtime.requestLog.recordCheck({ principalId: caller.objectId, kind: "action", permission: action, scope: request.path, granted });
    if (!granted) {
      return armError(
        403,
        "AuthorizationFailed",
        `The client '${caller.appId}' with object id '${caller.objectId}' does not have authorization to perform action '${action}' over scope '${request.path}' or the scope is invalid. If access was recently granted, please refresh your credentials.`,
      );
    }
    // Attaching a user-assigned identity also needs `assign/action` on the identity: ARM's linked access check.
    const unassignable = (action ? linkedIdentities(request) : []).filter((identityId) => {
      const linkedGranted = findGrant(runtime.world, caller.objectId, identityId, { action: ASSIGN_IDENTITY }) !== undefined;
      runtime.requestLog.recordCheck({ principalId: caller.objectId, kind: "action", permission: ASSIGN_IDENTITY, scope: identityId, granted: linkedGranted });
      return !linkedGranted;
    });
    if (action && unassignable.length > 0) {
      return armError(
        403,
        "LinkedAuthorizationFailed",
        `The client '${caller.appId}' with object id '${caller.objectId}' has permission to perform action '${action}' on scope '${request.path}'; however, it does not have permission to perform action(s) '${ASSIGN_IDENTITY}' on the linked scope(s) '${unassignable.join(",")}' (respectively) or the linked scope(s) are invalid.`,
      );
    }

    const match = router.match(request.method, request.path);
    if (!match) return armError(404, "InvalidResourceType", `The resource type could not be found for path '${request.path}' and api version '${request.apiVersion}'.`);
    if ("methodNotAllowed" in match) return armError(405, "MethodNotAllowed", `The requested resource does not support http method '${request.method}'.`);
    return match.handler(request, match.params);
  }

  async function dispatch(request: SandboxRequest): Promise<{ response: SandboxResponse; rateLimitHeaders?: Record<string, string> }> {
    const check = identifyCaller(runtime, request, ARM_AUDIENCES);
    if (!check.ok) return { response: authenticationFailure(runtime, check) };
    const { caller } = check;

    const fault = injectedFault(request);
    if (fault) return { response: fault };

    const kind = operationKind(request.method);
    const subscriptionId = /^\/subscriptions\/([^/]+)/i.exec(request.path)?.[1];
    const decision = runtime.throttling.take({ ...(subscriptionId ? { subscriptionId } : {}), tenantId: runtime.world.tenantId }, caller.objectId, kind);
    const rateLimitHeaders = decision.headers;
    if (!decision.allowed) {
      const scope = subscriptionId ? `subscription '${subscriptionId}'` : `tenant '${runtime.world.tenantId}'`;
      return {
        response: armError(
          429,
          subscriptionId ? "SubscriptionRequestsThrottled" : "TenantRequestsThrottled",
          `Number of '${kind.slice(0, -1)}' requests for ${scope} actor '${caller.objectId}' exceeded. Please try again after '${decision.retryAfterSeconds}' seconds after the first request. The throttled requests are counted.`,
          { "Retry-After": String(decision.retryAfterSeconds) },
        ),
        rateLimitHeaders,
      };
    }

    const apiVersion = request.query.get("api-version");
    if (!apiVersion) return { response: missingApiVersion(), rateLimitHeaders };
    return { response: await serve({ ...request, caller, apiVersion, armOrigin: armOrigin(request) }), rateLimitHeaders };
  }

  // A deployment's own requests meet the fault rules too, then the same checks; they are not counted.
  const deployments = new DeploymentEngine(runtime, async (request) => injectedFault(request) ?? serve(request));

  async function handle(request: SandboxRequest): Promise<SandboxResponse> {
    // SDKs that take a scope with a leading slash produce `//subscriptions/...`; ARM tolerates it.
    const { response, rateLimitHeaders } = await dispatch({ ...request, path: request.path.replace(/\/{2,}/g, "/") });
    const headers: Record<string, string> = {
      "Cache-Control": "no-cache",
      Pragma: "no-cache",
      Expires: "-1",
      "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
      "X-Content-Type-Options": "nosniff",
      "x-ms-correlation-request-id": newGuid(),
      "x-ms-routing-request-id": routingRequestId(runtime.clock.now()),
      ...rateLimitHeaders,
    };
    return withHeaders(response, headers);
  }

  return { handle, advanceDeployments: () => deployments.advance(), routes: router.describe() };
}
