import { createHash, timingSafeEqual } from "node:crypto";
import fp from "fastify-plugin";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { ApiKeyEntry } from "../../config.js";
import { ForbiddenError, UnauthorizedError } from "../../errors.js";

export type Role = "reader" | "operator" | "admin";

/** Each role includes the ones before it. */
const ROLE_RANK: Record<Role, number> = { reader: 1, operator: 2, admin: 3 };

export interface Principal {
  /** API key name or token subject; recorded as `createdBy`. */
  name: string;
  kind: "apiKey" | "token";
  role: Role;
}

declare module "fastify" {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    /** The lowest role that may call the route; every /v1 route has one. */
    role?: Role;
  }
  interface FastifyInstance {
    authenticate(request: FastifyRequest): Promise<void>;
  }
}

export function sha256Hex(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

function highestRole(roles: readonly Role[]): Role {
  return roles.reduce<Role>((best, role) => (ROLE_RANK[role] > ROLE_RANK[best] ? role : best), "reader");
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

export interface AuthenticationOptions {
  apiKeys: readonly ApiKeyEntry[];
}

/**
 * Authenticates /v1 callers (x-api-key now; Entra ID bearer tokens plug in here) and enforces the
 * route's `config.role`. Routes register `fastify.authenticate` as an onRequest hook.
 */
export default fp<AuthenticationOptions>(
  async function authentication(fastify: FastifyInstance, options) {
    fastify.decorateRequest("principal", null);
    fastify.decorate("authenticate", async function authenticate(request: FastifyRequest) {
      const presented = request.headers["x-api-key"];
      if (typeof presented !== "string" || presented.length === 0 || presented.length > 512) throw new UnauthorizedError();
      const entry = matchApiKey(options.apiKeys, presented);
      if (!entry) throw new UnauthorizedError("The API key is not valid.");
      request.principal = { name: entry.name, kind: "apiKey", role: highestRole(entry.roles) };

      const required = request.routeOptions.config.role ?? "admin";
      if (ROLE_RANK[request.principal.role] < ROLE_RANK[required]) throw new ForbiddenError(required);
    });
  },
  { name: "authentication" },
);
