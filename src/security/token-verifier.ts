import { createDefaultHttpClient, type HttpClient } from "@azure/core-rest-pipeline";
import type { Config } from "../config.js";
import { AZURE_PUBLIC_CLOUD } from "../azure/cloud.js";
import { SANDBOX_SIGN_IN } from "../azure/azure-context.js";
import { httpJsonFetcher, IssuerKeys } from "./issuer-keys.js";
import { decodeToken, signatureValid, TokenError } from "./jwt.js";

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
  now?: () => number;
}

/** Sandbox mode's defaults: the emulator's Entra ID tenant and the API the seed portal apps get tokens for. */
export const SANDBOX_AUTH = {
  issuer: `${AZURE_PUBLIC_CLOUD.authorityHost}/${SANDBOX_SIGN_IN.tenantId}/v2.0`,
  audience: "api://cmk-service",
} as const;

export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const skew = options.clockSkewSeconds ?? 60;
  const now = options.now ?? Date.now;
  return {
    async verify(token) {
      const decoded = decodeToken(token);
      const key = await options.keys.get(decoded.kid);
      if (!key) throw new TokenError("unknownKey");
      // Claims are looked at only once the signature proves who wrote them.
      if (!signatureValid(decoded, key)) throw new TokenError("signature");
      const { claims } = decoded;
      const nowSeconds = now() / 1000;
      if (claims.iss !== options.issuer) throw new TokenError("issuer");
      const audiences = typeof claims.aud === "string" ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud : [];
      if (!audiences.some((audience) => options.audiences.includes(audience as string))) throw new TokenError("audience");
      if (typeof claims.exp !== "number") throw new TokenError("malformed");
      if (nowSeconds >= claims.exp + skew) throw new TokenError("expired");
      if (claims.nbf !== undefined && (typeof claims.nbf !== "number" || nowSeconds + skew < claims.nbf)) throw new TokenError("notYetValid");
      return claims;
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
  return createTokenVerifier({ ...settings, keys });
}
