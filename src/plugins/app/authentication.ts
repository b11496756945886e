import { createHash, timingSafeEqual } from "node:crypto";
import fp from "fastify-plugin";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { ApiKeyEntry, TokenSubscriptions } from "../../config.js";
import { ForbiddenError, UnauthorizedError } from "../../errors.js";
import { hasGrant, resolveGrants, type Grant, type Principal } from "../../security/principal.js";
import { tokenPrincipal } from "../../security/token-principal.js";
import { TokenError, type TokenFailure, type TokenVerifier } from "../../security/token-verifier.js";

export type { Grant, Principal, Role } from "../../security/principal.js";

declare module "fastify" {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    /** The lowest role that may call the route (or the approver capability); every /v1 route has one. */
    role?: Grant;
  }
  interface FastifyInstance {
    /** Who the request's credential speaks for (checked once per request); throws 401, or 403 for a token with no role. */
    identify(request: FastifyRequest): Promise<Principal>;
    /** `identify` plus the route's `config.role`: the onRequest hook of every /v1 route. */
    authenticate(request: FastifyRequest): Promise<void>;
  }
}

export function sha256Hex(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

/**
 * Finds the API key entry whose hash matches. Every entry is compared in constant time, so the time
 * taken says nothing about which entry (or how much of a hash) matched.
 */
export function matchApiKey(entries: readonly ApiKeyEntry[], presented: string): ApiKeyEntry | undefined {
  const digest = Buffer.from(sha256Hex(presented), "hex");
  let match: ApiKeyEntry | undefined;
  for (const entry of entries) {
    if (timingSafeEqual(digest, Buffer.from(entry.sha256, "hex")) && !match) match = entry;
  }
  return match;
}

/** What a caller is told about a refused token: enough to fix it, never the token itself. */
const TOKEN_FAILURES: Record<TokenFailure, string> = {
  malformed: "The bearer token is not a well-formed JWT.",
  algorithm: "The bearer token's signing algorithm is not accepted (RS*, PS* or ES* only).",
  unknownKey: "The bearer token is signed with a key the issuer does not publish.",
  signature: "The bearer token's signature is not valid.",
  expired: "The bearer token has expired; get a new one.",
  notYetValid: "The bearer token is not valid yet.",
  issuer: "The bearer token comes from another issuer.",
  audience: "The bearer token is for another audience; request a token for this API.",
  lifetime: "The bearer token is valid for longer (exp - iat) than this API accepts; get a token with a shorter lifetime.",
  noIssuedAt: "The bearer token has no iat (issued at) claim, so its lifetime cannot be checked; get a token from an issuer that sets it.",
};

const BEARER = /^Bearer +([^\s]+) *$/i;

export interface AuthenticationOptions {
  apiKeys: readonly ApiKeyEntry[];
  /** Undefined: bearer tokens are refused (no issuer configured). */
  tokenVerifier?: TokenVerifier | undefined;
  tokenSubscriptions?: TokenSubscriptions | undefined;
}

/**
 * Authenticates /v1 callers (x-api-key or an Entra ID bearer token) and enforces the route's
 * `config.role`. Routes register `fastify.authenticate` as an onRequest hook; the rate limiter calls
 * `identify` earlier to key its buckets, and both share one check per request.
 */
export default fp<AuthenticationOptions>(
  async function authentication(fastify: FastifyInstance, options) {
    const identities = new WeakMap<FastifyRequest, Promise<Principal>>();

    const apiKeyPrincipal = (presented: unknown): Principal => {
      if (typeof presented !== "string" || presented.length === 0 || presented.length > 512) throw new UnauthorizedError();
      const entry = matchApiKey(options.apiKeys, presented);
      if (!entry) throw new UnauthorizedError("The API key is not valid.");
      return {
        id: `apiKey:${entry.name}`,
        name: entry.name,
        kind: "apiKey",
        ...resolveGrants(entry.roles),
        ...(entry.subscriptions ? { subscriptions: entry.subscriptions.map((id) => id.toLowerCase()) } : {}),
      };
    };

    const tokenPrincipalOf = async (authorization: string): Promise<Principal> => {
      const token = BEARER.exec(authorization)?.[1];
      if (!token) throw new UnauthorizedError("Only Bearer tokens are accepted in the Authorization header.");
      if (!options.tokenVerifier) throw new UnauthorizedError("Bearer tokens are not accepted here: no token issuer is configured (CMK_AUTH_ISSUER). Use an API key.");
      try {
        return tokenPrincipal(await options.tokenVerifier.verify(token), options.tokenSubscriptions);
      } catch (error) {
        if (error instanceof TokenError) throw new UnauthorizedError(error.detail ?? TOKEN_FAILURES[error.reason]);
        throw error;
      }
    };

    const check = async (request: FastifyRequest): Promise<Principal> => {
      const { authorization } = request.headers;
      const apiKey = request.headers["x-api-key"];
      if (authorization !== undefined && apiKey !== undefined) throw new UnauthorizedError("Send one credential, x-api-key or Authorization: Bearer, not both.");
      const principal = authorization !== undefined ? await tokenPrincipalOf(authorization) : apiKeyPrincipal(apiKey);
      request.principal = principal;
      return principal;
    };

    fastify.decorateRequest("principal", null);
    fastify.decorate("identify", function identify(request: FastifyRequest) {
      let identity = identities.get(request);
      if (!identity) {
        identity = check(request);
        identities.set(request, identity);
      }
      return identity;
    });
    fastify.decorate("authenticate", async function authenticate(request: FastifyRequest) {
      const principal = await fastify.identify(request);
      const required = request.routeOptions.config.role ?? "admin";
      if (principal.role === undefined) {
        throw new ForbiddenError(required, "The token carries none of this API's app roles (CMK.Reader, CMK.Operator, CMK.Admin, CMK.Approver); ask an administrator to assign one.");
      }
      if (!hasGrant(principal, required)) {
        throw new ForbiddenError(
          required,
          required === "approver" ? "This operation needs the approver capability (app role CMK.Approver, \"approver\" in the API key's roles, or admin)." : undefined,
        );
      }
    });
  },
  { name: "authentication" },
);
