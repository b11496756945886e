import { createHash, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import { processRsaKey } from "../process-keys.js";

/**
 * RS256 access tokens and their verification. Every emulated service accepts only tokens signed with
 * the sandbox's signing key (one per process, see process-keys.ts).
 */

export interface AccessTokenClaims {
  aud: string;
  iss: string;
  iat: number;
  nbf: number;
  exp: number;
  oid: string;
  tid: string;
  sub: string;
  appid: string;
  azp: string;
  roles?: string[];
  [claim: string]: unknown;
}

export type TokenCheck =
  | { ok: true; claims: AccessTokenClaims }
  | { ok: false; reason: "malformed" | "signature" | "expired" | "notYetValid"; claims?: AccessTokenClaims };

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString("base64url");
}

function decodeSegment(segment: string | undefined): unknown {
  if (!segment) return undefined;
  try {
    return JSON.parse(Buffer.from(segment, "base64url").toString("utf8")) as unknown;
  } catch {
    return undefined;
  }
}

export class TokenService {
  private constructor(
    private readonly privateKey: KeyObject,
    private readonly publicKey: KeyObject,
    readonly kid: string,
  ) {}

  static async create(): Promise<TokenService> {
    const { privateKey, publicKey } = await processRsaKey("token-signing");
    const kid = createHash("sha256").update(publicKey.export({ type: "spki", format: "der" })).digest("base64url").slice(0, 27);
    return new TokenService(privateKey, publicKey, kid);
  }

  /** The JWKS document Entra publishes at `/{tenant}/discovery/v2.0/keys`. */
  jwks(issuer: string): { keys: Record<string, unknown>[] } {
    const jwk = createPublicKey(this.privateKey).export({ format: "jwk" });
    return { keys: [{ kty: "RSA", use: "sig", kid: this.kid, n: jwk.n, e: jwk.e, issuer }] };
  }

  sign(claims: AccessTokenClaims): string {
    const header = base64url(JSON.stringify({ typ: "JWT", alg: "RS256", kid: this.kid }));
    const payload = base64url(JSON.stringify(claims));
    const signature = sign("sha256", Buffer.from(`${header}.${payload}`), this.privateKey);
    return `${header}.${payload}.${base64url(signature)}`;
  }

  /** `nowSeconds`: the emulator clock. */
  verify(token: string, nowSeconds: number): TokenCheck {
    const [header, payload, signature, ...extra] = token.split(".");
    const parsedHeader = decodeSegment(header) as { alg?: string; kid?: string } | undefined;
    const claims = decodeSegment(payload) as AccessTokenClaims | undefined;
    if (extra.length > 0 || !parsedHeader || !claims || typeof claims !== "object" || !signature) return { ok: false, reason: "malformed" };
    if (parsedHeader.alg !== "RS256" || parsedHeader.kid !== this.kid) return { ok: false, reason: "signature", claims };
    const valid = verify("sha256", Buffer.from(`${header}.${payload}`), this.publicKey, Buffer.from(signature, "base64url"));
    if (!valid) return { ok: false, reason: "signature", claims };
    if (typeof claims.exp !== "number" || claims.exp <= nowSeconds) return { ok: false, reason: "expired", claims };
    if (typeof claims.nbf === "number" && claims.nbf > nowSeconds + 300) return { ok: false, reason: "notYetValid", claims };
    return { ok: true, claims };
  }
}
