import { randomUUID } from "node:crypto";
import type { SandboxRuntime } from "../runtime.js";
import { AKS_OIDC_ISSUER, APPS, FEDERATED_CREDENTIALS, SEED_IDENTITIES, TOKEN_EXCHANGE_AUDIENCE, type SeedApp } from "../seed.js";
import type { AccessTokenClaims } from "./tokens.js";

/**
 * Workload identity federation (AKS): the pod presents its projected service account token as
 * `client_assertion` (type jwt-bearer) at the token endpoint, and Entra accepts it when a federated
 * identity credential of the app or user-assigned identity names the token's issuer, subject and audience.
 * The sandbox plays the cluster's OIDC issuer too: it signs service account tokens with its token key.
 */

export const JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/** A seed app registration, or a seed user-assigned identity as a token subject (no secret, no app roles). */
export function principalByClientId(clientId: string): SeedApp | undefined {
  const id = clientId.toLowerCase();
  const app = APPS.find((candidate) => candidate.clientId === id);
  if (app) return app;
  const identity = SEED_IDENTITIES.find((candidate) => candidate.clientId === id);
  return identity ? { name: identity.name, clientId: identity.clientId, clientSecret: "", objectId: identity.principalId, roles: [] } : undefined;
}

/** A Kubernetes service account token as AKS projects it for workload identity (`azure-identity-token`). */
export function issueServiceAccountToken(runtime: SandboxRuntime, request: { subject: string; audience?: string; issuer?: string; lifetimeSeconds?: number }): string {
  const now = runtime.clock.nowSeconds();
  const [, , namespace = "", name = ""] = request.subject.split(":");
  const claims = {
    aud: [request.audience ?? TOKEN_EXCHANGE_AUDIENCE],
    exp: now + (request.lifetimeSeconds ?? 3600),
    iat: now,
    nbf: now,
    iss: request.issuer ?? AKS_OIDC_ISSUER,
    sub: request.subject,
    "kubernetes.io": { namespace, serviceaccount: { name, uid: randomUUID() } },
  };
  return runtime.tokens.sign(claims as unknown as AccessTokenClaims);
}

export interface AssertionProblem {
  code: number;
  description: string;
}

/** Why Entra would refuse `assertion` for `clientId` (AADSTS code and text), or undefined when a federated credential matches. */
export function clientAssertionProblem(runtime: SandboxRuntime, clientId: string, assertion: string): AssertionProblem | undefined {
  const check = runtime.tokens.verify(assertion, runtime.clock.nowSeconds());
  if (!check.ok && check.reason === "expired") {
    return { code: 700024, description: "Client assertion is not within its valid time range." };
  }
  if (!check.ok) return { code: 700027, description: "Client assertion failed signature validation." };
  const { iss, sub } = check.claims;
  const audiences = (Array.isArray(check.claims.aud) ? check.claims.aud : [check.claims.aud]) as unknown[];
  const match = FEDERATED_CREDENTIALS.find(
    (credential) => credential.clientId === clientId.toLowerCase() && credential.issuer === iss && credential.subject === sub && audiences.some((audience) => credential.audiences.includes(String(audience))),
  );
  if (match) return undefined;
  return {
    code: 70021,
    description: `No matching federated identity record found for presented assertion. Assertion Issuer: '${iss}'. Assertion Subject: '${sub}'. Assertion Audience: '${audiences.join(",")}'.`,
  };
}
