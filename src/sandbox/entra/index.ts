import { randomUUID } from "node:crypto";
import { faultRetryHeaders } from "../faults.js";
import { json } from "../http/responses.js";
import { Router } from "../http/router.js";
import type { SandboxRequest, SandboxResponse } from "../http/types.js";
import type { SandboxRuntime } from "../runtime.js";
import { APPS, SERVICE_API_AUDIENCE, type SeedApp } from "../seed.js";
import type { AccessTokenClaims } from "./tokens.js";
import { clientAssertionProblem, JWT_BEARER_ASSERTION, principalByClientId } from "./workload-identity.js";

/**
 * Microsoft Entra ID as `ClientSecretCredential` uses it (azure-contracts.md 8): OpenID metadata,
 * JWKS, instance discovery and the client-credentials token endpoint, with a client secret or, as
 * `WorkloadIdentityCredential` sends it, a federated token (workload-identity.ts).
 */

export const PRODUCTION_AUTHORITY_HOST = "login.microsoftonline.com";
const TOKEN_LIFETIME_SECONDS = 3599;

/** The authority origin the caller used: the production name, or the emulator's own address. */
export function authorityOrigin(request: SandboxRequest): string {
  return request.host === PRODUCTION_AUTHORITY_HOST ? `https://${PRODUCTION_AUTHORITY_HOST}` : request.origin;
}

export function issuerFor(origin: string, tenantId: string): string {
  return `${origin}/${tenantId}/v2.0`;
}

/** Entra's error body: `{error, error_description: "AADSTSnnn: ...", error_codes, timestamp, trace_id, correlation_id}`. */
/** `nowMs`: the emulator clock, for the error's timestamp. */
export function entraError(nowMs: number, status: number, error: string, code: number, description: string, headers: Record<string, string> = {}): SandboxResponse {
  const traceId = randomUUID();
  const correlationId = randomUUID();
  const timestamp = new Date(nowMs).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
  return json(
    status,
    {
      error,
      error_description: `AADSTS${code}: ${description} Trace ID: ${traceId} Correlation ID: ${correlationId} Timestamp: ${timestamp}`,
      error_codes: [code],
      timestamp,
      trace_id: traceId,
      correlation_id: correlationId,
      error_uri: `https://${PRODUCTION_AUTHORITY_HOST}/error?code=${code}`,
    },
    headers,
  );
}

export interface TokenRequest {
  app: SeedApp;
  /** The resource: the requested scope without `/.default`. */
  audience: string;
  issuer: string;
  lifetimeSeconds?: number;
  /** Admin API only: claims set over the issued ones; `null` removes a claim (e.g. a token without `iat`). */
  overrides?: Record<string, unknown>;
}

/** Claims of an app-only token as Entra v2 issues them; app roles only for the service's own API. */
export function issueAccessToken(runtime: SandboxRuntime, request: TokenRequest): { token: string; claims: AccessTokenClaims } {
  const now = runtime.clock.nowSeconds();
  const { app } = request;
  const claims: AccessTokenClaims = {
    aud: request.audience,
    iss: request.issuer,
    iat: now,
    nbf: now,
    exp: now + (request.lifetimeSeconds ?? TOKEN_LIFETIME_SECONDS),
    aio: randomUUID(),
    appid: app.clientId,
    appidacr: "1",
    azp: app.clientId,
    azpacr: "1",
    idp: `https://sts.windows.net/${runtime.world.tenantId}/`,
    idtyp: "app",
    oid: app.objectId,
    sub: app.objectId,
    tid: runtime.world.tenantId,
    uti: randomUUID().replace(/-/g, "").slice(0, 22),
    ver: "2.0",
  };
  if (request.audience === SERVICE_API_AUDIENCE && app.roles.length > 0) claims.roles = [...app.roles];
  for (const [name, value] of Object.entries(request.overrides ?? {})) {
    if (value === null) delete claims[name];
    else claims[name] = value;
  }
  return { token: runtime.tokens.sign(claims), claims };
}

function unknownTenant(runtime: SandboxRuntime, tenant: string): SandboxResponse {
  return entraError(
    runtime.clock.now(),
    400,
    "invalid_tenant",
    90002,
    `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`,
  );
}

async function tokenEndpoint(runtime: SandboxRuntime, request: SandboxRequest): Promise<SandboxResponse> {
  const form = new URLSearchParams(request.body.toString("utf8"));
  const grantType = form.get("grant_type") ?? "";
  if (grantType !== "client_credentials") {
    return entraError(runtime.clock.now(), 400, "unsupported_grant_type", 70003, `The app requested an unsupported grant type '${grantType}'.`);
  }
  const clientId = form.get("client_id") ?? "";
  const assertion = form.get("client_assertion");
  // A client assertion (workload identity's federated token) signs in apps and user-assigned identities; a secret, apps only.
  const app = assertion !== null ? principalByClientId(clientId) : APPS.find((candidate) => candidate.clientId === clientId.toLowerCase());
  if (!app) {
    return entraError(
      runtime.clock.now(),
      400,
      "unauthorized_client",
      700016,
      `Application with identifier '${clientId}' was not found in the directory '${runtime.world.tenantId}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`,
    );
  }
  if (assertion !== null) {
    if (form.get("client_assertion_type") !== JWT_BEARER_ASSERTION) {
      return entraError(runtime.clock.now(), 400, "invalid_request", 50027, `The client_assertion_type must be '${JWT_BEARER_ASSERTION}'.`);
    }
    const problem = clientAssertionProblem(runtime, app.clientId, assertion);
    if (problem) return entraError(runtime.clock.now(), 400, "invalid_client", problem.code, problem.description);
  } else if (form.get("client_secret") !== app.clientSecret) {
    return entraError(
      runtime.clock.now(),
      401,
      "invalid_client",
      7000215,
      `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${app.clientId}'.`,
    );
  }
  const scopes = (form.get("scope") ?? "").split(" ").filter((scope) => scope !== "");
  if (scopes.length === 0) return entraError(runtime.clock.now(), 400, "invalid_request", 900144, "The request body must contain the following parameter: 'scope'.");
  const scope = scopes.find((candidate) => candidate.endsWith("/.default"));
  if (!scope) {
    return entraError(
      runtime.clock.now(),
      400,
      "invalid_scope",
      1002012,
      `The provided value for scope ${scopes.join(" ")} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`,
    );
  }
  const audience = scope.slice(0, -"/.default".length);
  const issuer = issuerFor(authorityOrigin(request), runtime.world.tenantId);
  const lifetimeSeconds = runtime.entra.tokenLifetimeSeconds?.[audience] ?? TOKEN_LIFETIME_SECONDS;
  const { token, claims } = issueAccessToken(runtime, { app, audience, issuer, lifetimeSeconds });
  await runtime.entra.onTokenIssued?.({ token, claims });
  return json(200, { token_type: "Bearer", expires_in: lifetimeSeconds, ext_expires_in: lifetimeSeconds, access_token: token });
}

function openIdConfiguration(runtime: SandboxRuntime, request: SandboxRequest): SandboxResponse {
  const origin = authorityOrigin(request);
  const tenant = runtime.world.tenantId;
  return json(200, {
    token_endpoint: `${origin}/${tenant}/oauth2/v2.0/token`,
    token_endpoint_auth_methods_supported: ["client_secret_post", "private_key_jwt", "client_secret_basic"],
    jwks_uri: `${origin}/${tenant}/discovery/v2.0/keys`,
    response_modes_supported: ["query", "fragment", "form_post"],
    subject_types_supported: ["pairwise"],
    id_token_signing_alg_values_supported: ["RS256"],
    response_types_supported: ["code", "id_token", "code id_token", "id_token token"],
    scopes_supported: ["openid", "profile", "email", "offline_access"],
    issuer: issuerFor(origin, tenant),
    request_uri_parameter_supported: false,
    userinfo_endpoint: "https://graph.microsoft.com/oidc/userinfo",
    authorization_endpoint: `${origin}/${tenant}/oauth2/v2.0/authorize`,
    device_authorization_endpoint: `${origin}/${tenant}/oauth2/v2.0/devicecode`,
    http_logout_supported: true,
    frontchannel_logout_supported: true,
    end_session_endpoint: `${origin}/${tenant}/oauth2/v2.0/logout`,
    claims_supported: ["sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce", "tid", "ver", "oid", "roles"],
    tenant_region_scope: "NA",
    cloud_instance_name: "microsoftonline.com",
    cloud_graph_host_name: "graph.windows.net",
    msgraph_host: "graph.microsoft.com",
    rbac_url: "https://pas.windows.net",
  });
}

/** MSAL's instance discovery, in case a client forgets `disableInstanceDiscovery`. */
function instanceDiscovery(runtime: SandboxRuntime, request: SandboxRequest): SandboxResponse {
  const origin = authorityOrigin(request);
  const host = new URL(origin).host;
  return json(200, {
    tenant_discovery_endpoint: `${origin}/${runtime.world.tenantId}/v2.0/.well-known/openid-configuration`,
    "api-version": "1.1",
    metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
  });
}

export function createEntraHandler(runtime: SandboxRuntime): (request: SandboxRequest) => Promise<SandboxResponse> {
  const withTenant =
    (handler: (runtime: SandboxRuntime, request: SandboxRequest) => SandboxResponse | Promise<SandboxResponse>) =>
    (request: SandboxRequest, params: Record<string, string>): SandboxResponse | Promise<SandboxResponse> =>
      params.tenant?.toLowerCase() === runtime.world.tenantId ? handler(runtime, request) : unknownTenant(runtime, params.tenant ?? "");

  const router = new Router()
    .on("GET", "/{tenant}/v2.0/.well-known/openid-configuration", withTenant(openIdConfiguration))
    .on("GET", "/{tenant}/discovery/v2.0/keys", withTenant((rt, request) => json(200, rt.tokens.jwks(issuerFor(authorityOrigin(request), rt.world.tenantId)))))
    .on("POST", "/{tenant}/oauth2/v2.0/token", withTenant(tokenEndpoint))
    .on("GET", "/common/discovery/instance", (request) => instanceDiscovery(runtime, request));

  return async (request) => {
    const fault = runtime.faults.fire("entra", request, "response");
    let response: SandboxResponse;
    if (fault) {
      const code = fault.errorCode ?? (fault.status >= 500 ? "temporarily_unavailable" : "invalid_request");
      response = entraError(runtime.clock.now(), fault.status, code, 50196, "The request failed because of a fault injected by the sandbox.", faultRetryHeaders(fault));
    } else {
      const match = router.match(request.method, request.path);
      if (!match) response = entraError(runtime.clock.now(), 404, "not_found", 90027, `The endpoint '${request.path}' does not exist.`);
      else if ("methodNotAllowed" in match) response = entraError(runtime.clock.now(), 405, "invalid_request", 900561, "The endpoint only accepts POST, OPTIONS requests.");
      else response = await match.handler(request, match.params);
    }
    return {
      ...response,
      headers: { "Cache-Control": "no-store, no-cache", Pragma: "no-cache", "x-ms-ests-server": "2.1.0 - SANDBOX", ...response.headers },
    };
  };
}
