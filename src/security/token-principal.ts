import type { TokenSubscriptions } from "../config.js";
import { TokenGroupOverageError } from "../errors.js";
import { resolveGrants, type Grant, type Principal } from "./principal.js";

/** Entra app-role values (api-contract: Authentication) and the service role each grants. */
export const APP_ROLES: ReadonlyMap<string, Grant> = new Map<string, Grant>([
  ["CMK.Reader", "reader"],
  ["CMK.Operator", "operator"],
  ["CMK.Admin", "admin"],
  // api-contract v1.1 "Roles": a capability beside the ordered roles.
  ["CMK.Approver", "approver"],
]);

function text(value: unknown, max = 100): string | undefined {
  if (typeof value !== "string") return undefined;
  // Claims end up in logs and the audit trail: no control characters, bounded length.
  const cleaned = value.replace(/[\p{Cc}\p{Cf}]/gu, "").trim().slice(0, max);
  return cleaned === "" ? undefined : cleaned;
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === "string") : [];
}

/**
 * Who a verified token speaks for: an application (app-only token: its client id) or a user (delegated
 * token: the user's object id), with a display name when the token has one.
 */
function subjectOf(claims: Record<string, unknown>): string {
  const appOnly = claims.idtyp === "app" || claims.scp === undefined;
  const candidates = appOnly ? [claims.azp, claims.appid, claims.oid, claims.sub] : [claims.oid, claims.sub, claims.azp];
  return candidates.map((candidate) => text(candidate)).find((candidate) => candidate !== undefined) ?? "unknown-subject";
}

/** Entra's group-overage form: the token points at Microsoft Graph (`_claim_names.groups`, `hasgroups`) instead of listing groups. */
function groupsLeftOut(claims: Record<string, unknown>): boolean {
  if (Array.isArray(claims.groups)) return false;
  const names = claims._claim_names;
  return claims.hasgroups === true || (typeof names === "object" && names !== null && Object.hasOwn(names, "groups"));
}

/**
 * Union of the allow-lists configured for the token's application, object id and groups; undefined:
 * none configured. When lists are configured, a token no entry names gets none (fails closed), and one
 * whose groups Entra left out is refused unless its application or object id is listed.
 */
function allowedSubscriptions(claims: Record<string, unknown>, configured: TokenSubscriptions | undefined): string[] | undefined {
  if (!configured) return undefined;
  const byId = new Map(Object.entries(configured).map(([id, subscriptions]) => [id.toLowerCase(), subscriptions]));
  const listsOf = (ids: unknown[]) => ids.flatMap((id) => (typeof id === "string" ? (byId.get(id.toLowerCase()) ?? []) : []));
  const own = listsOf([claims.azp, claims.appid, claims.oid]);
  if (own.length === 0 && groupsLeftOut(claims)) throw new TokenGroupOverageError();
  return [...new Set([...own, ...listsOf(strings(claims.groups))].map((id) => id.toLowerCase()))];
}

/** The principal of a verified token; `role` is undefined when it carries none of the service's app roles. */
export function tokenPrincipal(claims: Record<string, unknown>, configured?: TokenSubscriptions): Principal {
  const grants = strings(claims.roles).flatMap((value) => {
    const grant = APP_ROLES.get(value);
    return grant ? [grant] : [];
  });
  const subject = subjectOf(claims);
  const display = text(claims.name) ?? text(claims.preferred_username) ?? text(claims.app_displayname);
  const subscriptions = allowedSubscriptions(claims, configured);
  return {
    id: `token:${subject}`,
    name: display ? `${display} (${subject})` : subject,
    kind: "token",
    ...resolveGrants(grants),
    ...(subscriptions ? { subscriptions } : {}),
  };
}
