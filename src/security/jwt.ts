import { constants, verify as cryptoVerify, type KeyObject } from "node:crypto";

/**
 * Compact JWS parsing and signature checks with node:crypto. Only asymmetric algorithms are accepted:
 * `none` and HS* never get as far as a key lookup, so an HMAC "signed" with a public key is refused.
 * Keys come only from the configured issuer's JWKS; `jku`, `x5u` and `jwk` headers are ignored.
 */

export const ACCEPTED_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"] as const;
export type JwsAlgorithm = (typeof ACCEPTED_ALGORITHMS)[number];

/** Why a token was refused; mapped to a caller-facing message that never contains the token. */
export type TokenFailure = "malformed" | "algorithm" | "unknownKey" | "signature" | "expired" | "notYetValid" | "issuer" | "audience";

export class TokenError extends Error {
  constructor(readonly reason: TokenFailure) {
    super(`token refused: ${reason}`);
    this.name = "TokenError";
  }
}

export interface DecodedToken {
  alg: JwsAlgorithm;
  kid: string;
  claims: Record<string, unknown>;
  signingInput: Buffer;
  signature: Buffer;
}

/** Entra access tokens with many group claims stay well below this. */
export const MAX_TOKEN_LENGTH = 16 * 1024;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const ACCEPTED_TYPES = new Set(["jwt", "at+jwt", "application/at+jwt"]);

function jsonSegment(segment: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(segment, "base64url").toString("utf8"));
  } catch {
    throw new TokenError("malformed");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new TokenError("malformed");
  return value as Record<string, unknown>;
}

/** Splits and decodes a compact JWS; refuses anything but an asymmetric algorithm with a `kid`. */
export function decodeToken(token: string): DecodedToken {
  if (token.length > MAX_TOKEN_LENGTH) throw new TokenError("malformed");
  const segments = token.split(".");
  if (segments.length !== 3 || !segments.every((segment) => BASE64URL.test(segment))) throw new TokenError("malformed");
  const [headerSegment, payloadSegment, signatureSegment] = segments as [string, string, string];
  const header = jsonSegment(headerSegment);
  const claims = jsonSegment(payloadSegment);
  if (!ACCEPTED_ALGORITHMS.includes(header.alg as JwsAlgorithm)) throw new TokenError("algorithm");
  // Critical extensions this verifier does not understand must make the token invalid (RFC 7515 4.1.11).
  if (header.crit !== undefined) throw new TokenError("malformed");
  if (header.typ !== undefined && (typeof header.typ !== "string" || !ACCEPTED_TYPES.has(header.typ.toLowerCase()))) throw new TokenError("malformed");
  if (typeof header.kid !== "string" || header.kid.length === 0 || header.kid.length > 256) throw new TokenError("unknownKey");
  return {
    alg: header.alg as JwsAlgorithm,
    kid: header.kid,
    claims,
    signingInput: Buffer.from(`${headerSegment}.${payloadSegment}`, "ascii"),
    signature: Buffer.from(signatureSegment, "base64url"),
  };
}

const EC_CURVES: Record<string, string> = { ES256: "prime256v1", ES384: "secp384r1", ES512: "secp521r1" };

/** A key may only verify the algorithm family it belongs to (no RSA key for ES*, no small RSA keys). */
export function keyFitsAlgorithm(key: KeyObject, alg: JwsAlgorithm): boolean {
  if (alg.startsWith("ES")) return key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === EC_CURVES[alg];
  return key.asymmetricKeyType === "rsa" && (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048;
}

export function signatureValid(token: DecodedToken, key: KeyObject): boolean {
  if (!keyFitsAlgorithm(key, token.alg)) return false;
  const hash = `sha${token.alg.slice(2)}`;
  try {
    switch (token.alg.slice(0, 2)) {
      case "RS":
        return cryptoVerify(hash, token.signingInput, key, token.signature);
      case "PS":
        return cryptoVerify(hash, token.signingInput, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, token.signature);
      default:
        return cryptoVerify(hash, token.signingInput, { key, dsaEncoding: "ieee-p1363" }, token.signature);
    }
  } catch {
    // A signature of the wrong length or shape is just an invalid signature.
    return false;
  }
}
