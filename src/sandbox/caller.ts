import type { AccessTokenClaims } from "./entra/tokens.js";
import type { SandboxRequest } from "./http/types.js";
import type { SandboxRuntime } from "./runtime.js";

/** Who sent a request, from a token this sandbox issued. Shared by ARM and Key Vault. */
export interface Caller {
  objectId: string;
  appId: string;
  tenantId: string;
  issuer: string;
}

export type CallerCheck =
  | { ok: true; caller: Caller }
  | { ok: false; reason: "missing" | "malformed" | "signature" | "expired" | "notYetValid" | "audience"; claims?: AccessTokenClaims };

export function bearerToken(request: SandboxRequest): string | undefined {
  const header = request.headers.authorization;
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match ? match[1] : "";
}

/** Verifies the bearer token and its audience (one of `audiences`, compared without trailing slashes). */
export function identifyCaller(runtime: SandboxRuntime, request: SandboxRequest, audiences: readonly string[]): CallerCheck {
  const token = bearerToken(request);
  if (token === undefined) return { ok: false, reason: "missing" };
  if (token === "") return { ok: false, reason: "malformed" };
  const check = runtime.tokens.verify(token, runtime.clock.nowSeconds());
  if (!check.ok) return check.claims ? { ok: false, reason: check.reason, claims: check.claims } : { ok: false, reason: check.reason };
  const trim = (value: string) => value.replace(/\/+$/, "").toLowerCase();
  if (!audiences.some((audience) => trim(audience) === trim(String(check.claims.aud)))) {
    return { ok: false, reason: "audience", claims: check.claims };
  }
  const { claims } = check;
  return { ok: true, caller: { objectId: claims.oid, appId: claims.appid, tenantId: claims.tid, issuer: claims.iss } };
}
