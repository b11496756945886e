import { authorityOrigin, issueAccessToken, issuerFor } from "../entra/index.js";
import { issueServiceAccountToken } from "../entra/workload-identity.js";
import { FaultValidationError, parseFaultConfiguration } from "../faults.js";
import { BodyParseError, isRecord, json, jsonBody, empty } from "../http/responses.js";
import { Router } from "../http/router.js";
import type { SandboxRequest, SandboxResponse } from "../http/types.js";
import type { SandboxRuntime } from "../runtime.js";
import { parseThrottleOptions, ThrottleValidationError } from "../throttling.js";
import { parseSubscriptions, SubscriptionValidationError } from "../events/subscriptions.js";
import { APPS } from "../seed.js";
import { ScenarioError } from "./scenario-error.js";
import { runScenario } from "./scenarios.js";
import { worldSnapshot } from "./state.js";

/**
 * The admin API on the emulator's own address (api-contract.md, "Sandbox"), for tests and demos.
 * Not authenticated: the sandbox is a local development tool.
 */

function adminError(status: number, code: string, message: string): SandboxResponse {
  return json(status, { error: { code, message } });
}

/** Parses the JSON body for `handler`; malformed JSON is a 400. */
function withJson(handler: (input: unknown, request: SandboxRequest) => SandboxResponse): (request: SandboxRequest) => SandboxResponse {
  return (request) => {
    let input: unknown;
    try {
      input = jsonBody(request);
    } catch (error) {
      if (error instanceof BodyParseError) return adminError(400, "InvalidJson", `The body is not valid JSON: ${error.message}`);
      throw error;
    }
    return handler(input, request);
  };
}

/** `{ now }` (api-contract v1.1), plus how far the emulator runs ahead of the wall clock. */
function clockBody(runtime: SandboxRuntime): Record<string, unknown> {
  return { now: new Date(runtime.clock.now()).toISOString(), advancedSeconds: runtime.clock.advancedMs / 1000 };
}

/** A PUT that replaces a setting: parsed and checked by `parse` (its error class answers 400 `code`), applied, then shown. */
function configure<T>(
  target: { configure(value: T): void; snapshot(): unknown },
  parse: (input: unknown) => T,
  invalid: new (message: string) => Error,
  code: string,
): (request: SandboxRequest) => SandboxResponse {
  return withJson((input) => {
    try {
      target.configure(parse(input));
    } catch (error) {
      if (error instanceof invalid) return adminError(400, code, error.message);
      throw error;
    }
    return json(200, target.snapshot());
  });
}

export function createAdminHandler(runtime: SandboxRuntime): (request: SandboxRequest) => Promise<SandboxResponse> {
  const router = new Router()
    .on("GET", "/_sandbox/state", () => json(200, worldSnapshot(runtime)))
    .on("GET", "/_sandbox/requests", (request) => {
      const since = Number(request.query.get("since") ?? 0);
      if (!Number.isInteger(since) || since < 0) return adminError(400, "InvalidQuery", "'since' must be a non-negative integer.");
      return json(200, runtime.requestLog.since(since));
    })
    // Extension: every Azure RBAC decision so far (principal, action or data action, scope, granted).
    .on("GET", "/_sandbox/authorization-checks", () => json(200, runtime.requestLog.authorizationChecks()))
    .on("GET", "/_sandbox/faults", () => json(200, runtime.faults.snapshot()))
    .on("PUT", "/_sandbox/faults", configure(runtime.faults, parseFaultConfiguration, FaultValidationError, "InvalidFaults"))
    .on("GET", "/_sandbox/throttling", () => json(200, runtime.throttling.snapshot()))
    .on("PUT", "/_sandbox/throttling", configure(runtime.throttling, parseThrottleOptions, ThrottleValidationError, "InvalidThrottling"))
    .on("POST", "/_sandbox/scenarios", withJson((input) => {
      try {
        return json(200, runScenario(runtime.world, input, runtime.clock.now()));
      } catch (error) {
        if (error instanceof ScenarioError) return adminError(error.status, error.code, error.message);
        throw error;
      }
    }))
    .on("GET", "/_sandbox/clock", () => json(200, clockBody(runtime)))
    .on("POST", "/_sandbox/clock", withJson((input) => {
      const seconds = isRecord(input) ? input.advanceSeconds : undefined;
      if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds < 0) {
        return adminError(400, "InvalidClock", "'advanceSeconds' must be a non-negative number: the clock only moves forward.");
      }
      runtime.clock.advance(seconds);
      // Key dates crossed and retries now due go out at once, not at the next tick.
      runtime.events.tick();
      return json(200, clockBody(runtime));
    }))
    .on("GET", "/_sandbox/event-subscriptions", () => json(200, runtime.events.snapshot()))
    // Replaces the subscriptions once every new one passed Event Grid's validation handshake; any
    // handshake failing changes nothing (400 ValidationHandshakeFailed naming the endpoints).
    .on("PUT", "/_sandbox/event-subscriptions", async (request) => {
      let specs;
      try {
        specs = parseSubscriptions(jsonBody(request));
      } catch (error) {
        if (error instanceof BodyParseError) return adminError(400, "InvalidJson", `The body is not valid JSON: ${error.message}`);
        if (error instanceof SubscriptionValidationError) return adminError(400, "InvalidEventSubscriptions", error.message);
        throw error;
      }
      const outcome = await runtime.events.configure(specs);
      if (!outcome.ok) {
        const message = outcome.failures.map((failure) => `Webhook validation handshake failed for ${failure.endpointUrl} (${failure.name}): ${failure.reason}.`).join(" ");
        return json(400, { error: { code: "ValidationHandshakeFailed", message, details: outcome.failures } });
      }
      return json(200, runtime.events.snapshot());
    })
    .on("POST", "/_sandbox/reset", () => {
      runtime.reset();
      return empty(204);
    })
    // Extension for tests: mint a token without the OAuth dance, e.g. an expired one
    // (`{"clientId": "...", "audience": "https://management.azure.com", "expiresInSeconds": -60}`), or one
    // with claims Entra sends in special cases (`"claims": {"_claim_names": {...}, "iat": null}`).
    .on("POST", "/_sandbox/tokens", withJson((input, request) => {
      if (!isRecord(input) || typeof input.clientId !== "string") return adminError(400, "InvalidToken", "'clientId' is required.");
      if (input.claims !== undefined && !isRecord(input.claims)) return adminError(400, "InvalidToken", "'claims' must be an object of claim names and values (null removes a claim).");
      const app = APPS.find((candidate) => candidate.clientId === String(input.clientId).toLowerCase());
      if (!app) return adminError(404, "UnknownClient", `No seed application has client id '${input.clientId}'.`);
      const audience = typeof input.audience === "string" ? input.audience : "https://management.azure.com";
      const lifetimeSeconds = typeof input.expiresInSeconds === "number" ? input.expiresInSeconds : 3599;
      const issuer = issuerFor(authorityOrigin(request), runtime.world.tenantId);
      const overrides = isRecord(input.claims) ? { overrides: input.claims } : {};
      const { token, claims } = issueAccessToken(runtime, { app, audience, issuer, lifetimeSeconds, ...overrides });
      return json(200, { access_token: token, claims });
    }))
    // Extension for tests: the service account token AKS projects into a pod for workload identity
    // (`{"subject": "system:serviceaccount:cmk:cmk-service"}`; `audience`, `issuer` and `expiresInSeconds` optional).
    .on("POST", "/_sandbox/service-account-tokens", withJson((input) => {
      if (!isRecord(input) || typeof input.subject !== "string") return adminError(400, "InvalidToken", "'subject' is required, e.g. system:serviceaccount:<namespace>:<name>.");
      const token = issueServiceAccountToken(runtime, {
        subject: input.subject,
        ...(typeof input.audience === "string" ? { audience: input.audience } : {}),
        ...(typeof input.issuer === "string" ? { issuer: input.issuer } : {}),
        ...(typeof input.expiresInSeconds === "number" ? { lifetimeSeconds: input.expiresInSeconds } : {}),
      });
      return json(200, { token });
    }));

  return async (request) => {
    const match = router.match(request.method, request.path);
    if (!match) return adminError(404, "NotFound", `No admin endpoint at '${request.path}'.`);
    if ("methodNotAllowed" in match) return adminError(405, "MethodNotAllowed", `'${request.method}' is not supported on '${request.path}'.`);
    return match.handler(request, match.params);
  };
}
