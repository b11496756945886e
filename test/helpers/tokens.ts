import { createHmac, sign, type KeyObject } from "node:crypto";
import type { RunningSandbox } from "../../src/sandbox/index.js";
import { processRsaKey } from "../../src/sandbox/process-keys.js";
import { ADMIN_APP, OPERATOR_APP, READER_APP, SERVICE_API_AUDIENCE, SERVICE_APP, type SeedApp } from "../../src/sandbox/seed.js";
import { SANDBOX_AUTH } from "../../src/security/token-verifier.js";
import { sandboxCredential, sandboxRequest } from "./sandbox.js";

/** The API's token scope (api-contract: Seed). */
export const API_SCOPE = "api://cmk-service/.default";

/** A real access token for the API from the sandbox's Entra ID, through the Azure SDK. */
export async function callerToken(sandbox: RunningSandbox, app: SeedApp): Promise<string> {
  return (await sandboxCredential(sandbox, app).getToken(API_SCOPE)).token;
}

/**
 * A token for the API minted by the sandbox's admin API (`POST /_sandbox/tokens`), signed by its real
 * key, with `claims` set over the issued ones (`null` removes one), e.g. Entra's group-overage claims.
 */
export async function mintedToken(sandbox: RunningSandbox, app: SeedApp, claims: Record<string, unknown> = {}): Promise<string> {
  const body = { clientId: app.clientId, audience: SERVICE_API_AUDIENCE, claims: { iss: SANDBOX_AUTH.issuer, ...claims } };
  const response = await sandboxRequest(sandbox, { method: "POST", path: "/_sandbox/tokens", body });
  if (response.status !== 200) throw new Error(`minting a token answered ${response.status}: ${response.text}`);
  return (response.json as { access_token: string }).access_token;
}

export function decodeJwt(token: string): { header: Record<string, unknown>; claims: Record<string, unknown> } {
  const [header, claims] = token.split(".").slice(0, 2).map((part) => JSON.parse(Buffer.from(part, "base64url").toString("utf8")));
  return { header, claims };
}

const segment = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

/** Signs a JWT with node:crypto: RS256 with a key, HS256 with a secret, or `none` with nothing. */
export function forgeJwt(header: Record<string, unknown>, claims: Record<string, unknown>, key?: KeyObject | string | Buffer): string {
  const input = `${segment(header)}.${segment(claims)}`;
  if (header.alg === "none") return `${input}.`;
  if (typeof header.alg === "string" && header.alg.startsWith("HS")) return `${input}.${createHmac("sha256", key as string | Buffer).update(input).digest("base64url")}`;
  return `${input}.${sign("sha256", Buffer.from(input), key as KeyObject).toString("base64url")}`;
}

/**
 * The sandbox's token signing key (one per process, shared by every in-process sandbox): lets a test
 * make tokens whose signature is right and whose claims are wrong.
 */
export async function sandboxSigningKey(): Promise<{ privateKey: KeyObject; publicKey: KeyObject }> {
  return processRsaKey("token-signing");
}

/** One real token per seed caller app: the three roles, and the service's own app (no app role). */
export async function callerTokens(sandbox: RunningSandbox): Promise<{ reader: string; operator: string; admin: string; noRole: string }> {
  const [reader, operator, admin, noRole] = await Promise.all([READER_APP, OPERATOR_APP, ADMIN_APP, SERVICE_APP].map((app) => callerToken(sandbox, app)));
  return { reader: reader!, operator: operator!, admin: admin!, noRole: noRole! };
}
