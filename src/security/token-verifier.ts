import { createDefaultHttpClient, type HttpClient } from "@azure/core-rest-pipeline";
import { decodeJwt, errors, jwtVerify, type JWTHeaderParameters } from "jose";
import type { Config } from "../config.js";
import { AZURE_PUBLIC_CLOUD } from "../azure/cloud.js";
import { SANDBOX_SIGN_IN } from "../azure/azure-context.js";
import { httpJsonFetcher, IssuerKeys } from "./issuer-keys.js";

/**
 * Caller tokens are checked by `jose` (jwtVerify). Only asymmetric algorithms are accepted: `none` and
 * HS* are refused before any key is looked at, so an HMAC "signed" with a public key cannot pass. Keys
 * come only from the configured issuer's JWKS (`IssuerKeys`); `jku`, `x5u` and `jwk` headers are ignored.
 */

const ACCEPTED_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"];

/** Why a token was refused; mapped to a caller-facing message that never contains the token. */
export type TokenFailure =
  | "malformed"
  | "algorithm"
  | "unknownKey"
  | "signature"
  | "expired"
  | "notYetValid"
  | "issuer"
  | "audience"
  | "lifetime"
  | "noIssuedAt";

export class TokenError extends Error {
  constructor(
    readonly reason: TokenFailure,
    /** Caller-facing detail when the reason alone does not say enough (e.g. the configured bound). */
    readonly detail?: string,
  ) {
    super(`token refused: ${reason}`);
    this.name = "TokenError";
  }
}

/** Checks a caller's bearer token; resolves its claims or throws a TokenError. */
export interface TokenVerifier {
  verify(token: string): Promise<Record<string, unknown>>;
}

export interface TokenVerifierOptions {
  issuer: string;
  /** Any one of these in `aud` will do. */
  audiences: readonly string[];
  keys: Pick<IssuerKeys, "get">;
  /** Tolerated clock difference for `exp` and `nbf`. */
  clockSkewSeconds?: number;
  /** Longest `exp - iat` accepted; a token without `iat` is refused too. Undefined: no bound. */
  maxLifetimeSeconds?: number;
  now?: () => number;
}

/** Entra access tokens with many group claims stay well below this. */
const MAX_TOKEN_LENGTH = 16 * 1024;
const ACCEPTED_TYPES = new Set(["jwt", "at+jwt", "application/at+jwt"]);
const CLAIM_FAILURES: Readonly<Record<string, TokenFailure>> = { iss: "issuer", aud: "audience", nbf: "notYetValid" };

/** What a jose error means for the caller; undefined for an error that is not about the token. */
function failureOf(error: unknown, keyResolved: boolean): TokenFailure | undefined {
  if (error instanceof errors.JOSEAlgNotAllowed) return "algorithm";
  if (error instanceof errors.JWSSignatureVerificationFailed) return "signature";
  if (error instanceof errors.JWTExpired) return "expired";
  // A missing or non-numeric `exp` (or `iat`) makes the token malformed; a non-numeric `nbf` not yet valid.
  if (error instanceof errors.JWTClaimValidationFailed) return CLAIM_FAILURES[error.claim] ?? "malformed";
  // Once it has the key, jose refuses one that cannot check the token's algorithm (an RSA key for ES*,
  // another curve, RSA under 2048 bits) with JOSENotSupported, a TypeError or WebCrypto's DataError.
  if (keyResolved && (error instanceof errors.JOSENotSupported || !(error instanceof errors.JOSEError))) return "signature";
  return error instanceof errors.JOSEError ? "malformed" : undefined;
}

function formatMinutes(minutes: number): string {
  return minutes % 60 === 0 ? `${minutes / 60} h` : `${minutes} min`;
}

function checkLifetime(claims: Record<string, unknown>, maxLifetimeSeconds: number): void {
  // jose has checked that `iat`, when present, and `exp` are numbers.
  if (claims.iat === undefined) throw new TokenError("noIssuedAt");
  if ((claims.exp as number) - (claims.iat as number) > maxLifetimeSeconds) {
    throw new TokenError("lifetime", `The bearer token is valid for longer (exp - iat) than the ${formatMinutes(maxLifetimeSeconds / 60)} this API accepts; get a token with a shorter lifetime.`);
  }
}

/** Sandbox mode's defaults: the emulator's Entra ID tenant and the API the seed portal apps get tokens for. */
export const SANDBOX_AUTH = {
  issuer: `${AZURE_PUBLIC_CLOUD.authorityHost}/${SANDBOX_SIGN_IN.tenantId}/v2.0`,
  audience: "api://cmk-service",
} as const;

export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const verifyOptions = {
    algorithms: ACCEPTED_ALGORITHMS,
    issuer: options.issuer,
    audience: [...options.audiences],
    clockTolerance: options.clockSkewSeconds ?? 60,
    requiredClaims: ["exp"],
  };
  const now = options.now ?? Date.now;
  return {
    async verify(token) {
      if (token.length > MAX_TOKEN_LENGTH) throw new TokenError("malformed");
      let keyResolved = false;
      const keyFor = async (header: JWTHeaderParameters) => {
        if (header.typ !== undefined && (typeof header.typ !== "string" || !ACCEPTED_TYPES.has(header.typ.toLowerCase()))) throw new TokenError("malformed");
        if (typeof header.kid !== "string" || header.kid.length === 0 || header.kid.length > 256) throw new TokenError("unknownKey");
        const key = await options.keys.get(header.kid);
        if (!key) throw new TokenError("unknownKey");
        keyResolved = true;
        return key;
      };
      try {
        // Claims that are not a JSON object make the token malformed, whatever its signature.
        decodeJwt(token);
        const { payload } = await jwtVerify(token, keyFor, { ...verifyOptions, currentDate: new Date(now()) });
        if (options.maxLifetimeSeconds !== undefined) checkLifetime(payload, options.maxLifetimeSeconds);
        return payload;
      } catch (error) {
        if (error instanceof TokenError) throw error;
        const reason = failureOf(error, keyResolved);
        if (reason) throw new TokenError(reason);
        throw error;
      }
    },
  };
}

/** Issuer and audiences from configuration; in sandbox mode the emulator's unless configured. */
export function tokenSettings(config: Config): { issuer: string; audiences: string[] } | undefined {
  const sandbox = config.CMK_MODE === "sandbox";
  const issuer = config.CMK_AUTH_ISSUER ?? (sandbox ? SANDBOX_AUTH.issuer : undefined);
  const audience = config.CMK_AUTH_AUDIENCE ?? (sandbox ? SANDBOX_AUTH.audience : undefined);
  if (!issuer || !audience) return undefined;
  const audiences = audience.split(",").map((value) => value.trim()).filter((value) => value !== "");
  return { issuer, audiences };
}

/**
 * The verifier for callers' tokens, or undefined when bearer tokens are not accepted (azure mode with no
 * issuer). In sandbox mode the emulator's metadata is only reachable through `httpClient` (the sandbox
 * routing client): without one, and without an explicitly configured issuer, nothing is fetched.
 */
export function callerTokenVerifier(config: Config, httpClient: HttpClient | undefined, onRefreshFailed?: (error: Error) => void): TokenVerifier | undefined {
  const settings = tokenSettings(config);
  const client = httpClient ?? (config.CMK_MODE === "azure" || config.CMK_AUTH_ISSUER ? createDefaultHttpClient() : undefined);
  if (!settings || !client) return undefined;
  const keys = new IssuerKeys(settings.issuer, httpJsonFetcher(client), onRefreshFailed ? { onRefreshFailed } : {});
  return createTokenVerifier({ ...settings, keys, maxLifetimeSeconds: config.CMK_TOKEN_MAX_LIFETIME_MINUTES * 60 });
}
